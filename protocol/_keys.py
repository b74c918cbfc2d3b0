"""JWK (RFC 7517/7518/8037) to ``cryptography`` key objects, and the two signature algorithms.

Only EdDSA with Ed25519 (RFC 8037) and PS256 (RFC 7518 section 3.5, required by the NL GOV
signing module) exist here; there is no way to ask for anything else.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from protocol.errors import InvalidKey

__all__ = [
    "ALGORITHMS",
    "PRIVATE_MEMBERS",
    "Algorithm",
    "PrivateKey",
    "PublicKey",
    "algorithm_for_key",
    "b64url_decode",
    "b64url_encode",
    "check_public_members",
    "private_key_from_jwk",
    "public_key_from_jwk",
    "raw_sign",
    "raw_verify",
    "thumbprint",
]

Algorithm: TypeAlias = Literal["EdDSA", "PS256"]
ALGORITHMS: frozenset[str] = frozenset({"EdDSA", "PS256"})
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MINIMUM_RSA_BITS = 2048
PublicKey: TypeAlias = ed25519.Ed25519PublicKey | rsa.RSAPublicKey
PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
# RFC 7638 section 3.2: the required members per key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {"OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}
# RFC 7518 section 3.5: PS256 uses MGF1 with SHA-256 and a salt as long as the hash.
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode strict unpadded base64url; ``ValueError`` on anything else."""
    if "=" in text or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not base64url") from exc
    if b64url_encode(data) != text:  # non-zero trailing bits: not the canonical encoding
        raise ValueError("not canonical base64url")
    return data


def _member(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidKey(f"JWK member {name!r} is missing or not a string")
    try:
        return b64url_decode(value)
    except ValueError as exc:
        raise InvalidKey(f"JWK member {name!r} is not base64url") from exc


def _integer(jwk: Mapping[str, Any], name: str) -> int:
    return int.from_bytes(_member(jwk, name), "big")


def _key_type(jwk: Mapping[str, Any]) -> Literal["OKP", "RSA"]:
    kty = jwk.get("kty")
    if kty == "OKP":
        if jwk.get("crv") != "Ed25519":
            raise InvalidKey("OKP keys must use curve Ed25519 (RFC 8037)")
        return "OKP"
    if kty == "RSA":
        return "RSA"
    raise InvalidKey(f"key type {kty!r} is not supported; use OKP/Ed25519 or RSA")


def algorithm_for_key(jwk: Mapping[str, Any]) -> Algorithm:
    """The one algorithm a key may be used with; a conflicting ``alg`` member is refused."""
    algorithm: Algorithm = "EdDSA" if _key_type(jwk) == "OKP" else "PS256"
    declared = jwk.get("alg")
    if declared is not None and declared != algorithm:
        raise InvalidKey(f"key declares alg {declared!r}, but this key type signs {algorithm}")
    return algorithm


def check_public_members(jwk: Mapping[str, Any]) -> None:
    """Refuse a JWK that carries private key material."""
    present = sorted(PRIVATE_MEMBERS & set(jwk))
    if present:
        raise InvalidKey(f"public key carries private members {present}")


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint with SHA-256, base64url."""
    members = _THUMBPRINT_MEMBERS[_key_type(jwk)]
    values = tuple(jwk.get(name) for name in members)
    if not all(isinstance(value, str) for value in values):
        raise InvalidKey("JWK lacks a member that its thumbprint needs")
    return _thumbprint(members, values)


@functools.lru_cache(maxsize=256)
def _thumbprint(members: tuple[str, ...], values: tuple[Any, ...]) -> str:
    # A signer computes this for every message; the key seldom changes.
    text = json.dumps(
        dict(zip(members, values, strict=True)),
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
    )
    return b64url_encode(hashlib.sha256(text.encode("utf-8")).digest())


def _frozen(jwk: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, v) for k, v in jwk.items() if isinstance(v, str)))


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """Build (and cache) the public key object for a public JWK; ``InvalidKey`` otherwise."""
    check_public_members(jwk)
    return _public_key(_frozen(jwk))


@functools.lru_cache(maxsize=256)
def _public_key(members: tuple[tuple[str, Any], ...]) -> PublicKey:
    jwk = dict(members)
    if _key_type(jwk) == "OKP":
        x = _member(jwk, "x")
        if len(x) != 32:
            raise InvalidKey("Ed25519 public key must be 32 bytes")
        return ed25519.Ed25519PublicKey.from_public_bytes(x)
    n, e = _integer(jwk, "n"), _integer(jwk, "e")
    if n.bit_length() < MINIMUM_RSA_BITS:
        raise InvalidKey(f"RSA keys need at least {MINIMUM_RSA_BITS} bits")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise InvalidKey(f"RSA public key is invalid: {exc}") from exc


def private_key_from_jwk(jwk: Mapping[str, Any]) -> PrivateKey:
    """Build (and cache) the private key object for a private JWK."""
    return _private_key(_frozen(jwk))


@functools.lru_cache(maxsize=64)
def _private_key(members: tuple[tuple[str, Any], ...]) -> PrivateKey:
    jwk = dict(members)
    if _key_type(jwk) == "OKP":
        return _ed25519_private_key(jwk)
    return _rsa_private_key(jwk)


def _ed25519_private_key(jwk: Mapping[str, Any]) -> PrivateKey:
    d = _member(jwk, "d")
    if len(d) != 32:
        raise InvalidKey("Ed25519 private key must be 32 bytes")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(d)
    if "x" in jwk and key.public_key().public_bytes_raw() != _member(jwk, "x"):
        raise InvalidKey("Ed25519 'x' does not belong to 'd'")
    return key


def _rsa_private_key(jwk: Mapping[str, Any]) -> PrivateKey:
    if "oth" in jwk:
        raise InvalidKey("multi-prime RSA keys are not supported")
    public = rsa.RSAPublicNumbers(_integer(jwk, "e"), _integer(jwk, "n"))
    if public.n.bit_length() < MINIMUM_RSA_BITS:
        raise InvalidKey(f"RSA keys need at least {MINIMUM_RSA_BITS} bits")
    names = ("p", "q", "d", "dp", "dq", "qi")
    p, q, d, dmp1, dmq1, iqmp = (_integer(jwk, name) for name in names)
    try:
        return rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, public).private_key()
    except ValueError as exc:
        raise InvalidKey(f"RSA private key is invalid: {exc}") from exc


def raw_sign(key: PrivateKey, data: bytes) -> bytes:
    """Sign with the key's one algorithm."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, _PSS, hashes.SHA256())


def raw_verify(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is valid for ``data``; never raises for a bad signature."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, _PSS, hashes.SHA256())
    except InvalidSignature:
        return False
    return True

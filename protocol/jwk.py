"""JSON Web Keys (RFC 7517) for EdDSA/Ed25519 (RFC 8037) and PS256 (RSA, RFC 7518).

Keys are plain dicts. Generated and loaded keys carry ``kid`` (the RFC 7638 thumbprint) and
``alg``. Public keys that arrive from elsewhere go through :func:`validate_public_jwk`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from protocol._keys import (
    MINIMUM_RSA_BITS,
    PRIVATE_MEMBERS,
    algorithm_for_key,
    b64url_encode,
    private_key_from_jwk,
    public_key_from_jwk,
    thumbprint,
)
from protocol.errors import InvalidKey

__all__ = [
    "generate_private_jwk",
    "load_private_jwk_from_pem",
    "private_jwk_to_pem",
    "public_jwk",
    "public_jwks",
    "thumbprint",
    "validate_public_jwk",
]

RSA_BITS = 3072
_PUBLIC_EXPONENT = 65537


def _integer_member(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def _with_identity(jwk: dict[str, Any]) -> dict[str, Any]:
    jwk["kid"] = thumbprint(jwk)
    jwk["alg"] = algorithm_for_key(jwk)
    return jwk


def _jwk_from_private_key(key: object) -> dict[str, Any]:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        d = key.private_bytes_raw()
        x = key.public_key().public_bytes_raw()
        return _with_identity(
            {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(x), "d": b64url_encode(d)}
        )
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MINIMUM_RSA_BITS:
            raise InvalidKey(f"RSA keys need at least {MINIMUM_RSA_BITS} bits")
        numbers = key.private_numbers()
        members = {
            "n": numbers.public_numbers.n,
            "e": numbers.public_numbers.e,
            "d": numbers.d,
            "p": numbers.p,
            "q": numbers.q,
            "dp": numbers.dmp1,
            "dq": numbers.dmq1,
            "qi": numbers.iqmp,
        }
        jwk = {"kty": "RSA"} | {name: _integer_member(value) for name, value in members.items()}
        return _with_identity(jwk)
    raise InvalidKey(f"{type(key).__name__} keys are not supported; use Ed25519 or RSA")


def generate_private_jwk(algorithm: Literal["EdDSA", "PS256"]) -> dict[str, Any]:
    """A new private key for ``algorithm`` (Ed25519, or RSA 3072 for PS256)."""
    if algorithm == "EdDSA":
        return _jwk_from_private_key(ed25519.Ed25519PrivateKey.generate())
    if algorithm == "PS256":
        key = rsa.generate_private_key(public_exponent=_PUBLIC_EXPONENT, key_size=RSA_BITS)
        return _jwk_from_private_key(key)
    raise InvalidKey(f"algorithm {algorithm!r} is not supported")


def public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """The public half of a JWK: every member except the private ones, ``kid`` and ``alg`` set."""
    public = {name: value for name, value in jwk.items() if name not in PRIVATE_MEMBERS}
    public.setdefault("kid", thumbprint(public))
    public.setdefault("alg", algorithm_for_key(public))
    return validate_public_jwk(public)


def public_jwks(jwks: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A JWK Set (RFC 7517 section 5) with the public halves of ``jwks``."""
    return {"keys": [public_jwk(jwk) for jwk in jwks]}


def validate_public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a well-formed public Ed25519 or RSA (>= 2048 bit) JWK; else InvalidKey."""
    if not isinstance(jwk, Mapping):
        raise InvalidKey("a JWK must be a JSON object")
    public_key_from_jwk(jwk)
    algorithm_for_key(jwk)
    kid = jwk.get("kid")
    if kid is not None and kid != thumbprint(jwk):
        raise InvalidKey("'kid' must be the RFC 7638 thumbprint of the key")
    return dict(jwk)


def load_private_jwk_from_pem(pem: bytes, *, password: bytes | None = None) -> dict[str, Any]:
    """Read a PEM private key (PKCS #8 or traditional) as a private JWK."""
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"not a readable PEM private key: {exc}") from exc
    return _jwk_from_private_key(key)


def private_jwk_to_pem(jwk: Mapping[str, Any]) -> bytes:
    """Write a private JWK as an unencrypted PKCS #8 PEM."""
    return private_key_from_jwk(jwk).private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )

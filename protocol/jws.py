"""Compact JSON Web Signatures (RFC 7515) with EdDSA (RFC 8037) and PS256 only.

Verification is safe by default: the token size is limited before parsing, ``alg`` is allow-listed
and must fit the key, ``crit`` may only name parameters understood here (``b64`` of RFC 7797 and
the JAdES ``sigT``/``sigD``), and the comparison of signatures is done by the primitive itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol._jcs import canonicalize
from protocol._json import read_json
from protocol._keys import (
    ALGORITHMS,
    PublicKey,
    algorithm_for_key,
    b64url_decode,
    b64url_encode,
    private_key_from_jwk,
    public_key_from_jwk,
    raw_sign,
    raw_verify,
    thumbprint,
)
from protocol.errors import (
    AlgorithmNotAllowed,
    BadSignature,
    MalformedSignature,
    ProtocolError,
    UnknownCriticalHeader,
)

__all__ = [
    "MAX_HEADER_LENGTH",
    "MAX_TOKEN_LENGTH",
    "UNDERSTOOD_CRITICAL",
    "read_protected_header",
    "sign_compact",
    "verify_compact",
]

MAX_HEADER_LENGTH = 4096
MAX_TOKEN_LENGTH = 2 * 1024 * 1024
UNDERSTOOD_CRITICAL = frozenset({"b64", "sigD", "sigT"})
_MAX_SIGNATURE_LENGTH = 1024  # base64url of an RSA 4096 signature is 683 characters


def sign_compact(
    payload: bytes,
    private_jwk: Mapping[str, Any],
    *,
    protected: Mapping[str, Any] | None = None,
    detached: bool = False,
) -> str:
    """Sign ``payload``; the protected header is used as given (else ``alg`` and ``kid``).

    The header is serialized with RFC 8785, so ``{"alg":"EdDSA"}`` reproduces RFC 8037 A.4.
    With ``detached`` the payload part is left empty (RFC 7515 appendix F).
    """
    algorithm = algorithm_for_key(private_jwk)
    header: dict[str, Any] = dict(protected) if protected is not None else {"alg": algorithm}
    if protected is None:
        header["kid"] = thumbprint(private_jwk)
    _check_header(header)
    if header["alg"] != algorithm:
        raise AlgorithmNotAllowed(f"header alg {header['alg']!r} does not fit a {algorithm} key")
    encoded_header = b64url_encode(canonicalize(header))
    unencoded = header.get("b64") is False
    if unencoded and not detached:
        raise MalformedSignature("an unencoded (b64=false) payload must be detached")
    encoded_payload = payload if unencoded else b64url_encode(payload).encode("ascii")
    signing_input = encoded_header.encode("ascii") + b"." + encoded_payload
    signature = b64url_encode(raw_sign(private_key_from_jwk(private_jwk), signing_input))
    middle = "" if detached else encoded_payload.decode("ascii")
    return f"{encoded_header}.{middle}.{signature}"


def verify_compact(
    token: str, public_jwk: Mapping[str, Any], *, payload: bytes | None = None
) -> bytes:
    """Verify ``token`` with ``public_jwk`` and return the payload (``payload`` if detached)."""
    encoded_header, encoded_payload, encoded_signature = _split(token)
    header = _decode_header(encoded_header)
    key = public_key_from_jwk(public_jwk)
    algorithm = algorithm_for_key(public_jwk)
    return _verify_decoded(
        encoded_header, header, encoded_payload, encoded_signature, key, algorithm, payload
    )


def _verify_decoded(
    encoded_header: str,
    header: Mapping[str, Any],
    encoded_payload: str,
    encoded_signature: str,
    key: PublicKey,
    key_algorithm: str,
    payload: bytes | None,
) -> bytes:
    """``verify_compact`` after its parsing: ``header`` must come from ``read_protected_header``.

    Not exported: for ``protocol.signing``, which has decoded the header already and caches the
    key object per verification key.
    """
    if header["alg"] != key_algorithm:
        raise AlgorithmNotAllowed(f"alg {header['alg']!r} does not fit the verification key")
    unencoded = header.get("b64") is False
    content = _payload(encoded_payload, payload, unencoded=unencoded)
    signed = content if unencoded else b64url_encode(content).encode("ascii")
    signing_input = encoded_header.encode("ascii") + b"." + signed
    if not raw_verify(key, _decode_part(encoded_signature, "signature"), signing_input):
        raise BadSignature("signature does not verify with the given key")
    return content


def read_protected_header(token: str) -> dict[str, Any]:
    """The protected header of ``token``, checked for form but NOT verified (to find ``kid``)."""
    encoded_header, _, _ = _split(token)
    return _decode_header(encoded_header)


def _split(token: str) -> tuple[str, str, str]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise MalformedSignature(f"token is not a string of at most {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedSignature("compact JWS must have exactly three parts")
    header, payload, signature = parts
    if len(header) > MAX_HEADER_LENGTH or len(signature) > _MAX_SIGNATURE_LENGTH:
        raise MalformedSignature("protected header or signature is too long")
    if not token.isascii():
        raise MalformedSignature("compact JWS must be ASCII")
    return header, payload, signature


def _decode_part(part: str, name: str) -> bytes:
    try:
        return b64url_decode(part)
    except ValueError as exc:
        raise MalformedSignature(f"JWS {name} is not base64url") from exc


def _decode_header(encoded_header: str) -> dict[str, Any]:
    raw = _decode_part(encoded_header, "protected header")
    try:
        header = read_json(raw, max_bytes=MAX_HEADER_LENGTH)
    except ProtocolError as exc:
        raise MalformedSignature(f"protected header is not strict JSON: {exc.detail}") from exc
    if not isinstance(header, dict):
        raise MalformedSignature("protected header is not a JSON object")
    _check_header(header)
    return header


def _check_header(header: Mapping[str, Any]) -> None:
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise AlgorithmNotAllowed(f"alg {algorithm!r} is not allowed; use EdDSA or PS256")
    _check_critical(header)
    if "b64" in header and not isinstance(header["b64"], bool):
        raise MalformedSignature("b64 must be a boolean (RFC 7797 section 3)")


def _check_critical(header: Mapping[str, Any]) -> None:
    # RFC 7515 section 4.1.11: crit is a non-empty list of names present in the header.
    critical = header.get("crit", [])
    if "crit" in header and (
        not isinstance(critical, list)
        or not critical
        or not all(isinstance(name, str) for name in critical)
        or len(set(critical)) != len(critical)
    ):
        raise MalformedSignature("crit must be a non-empty list of distinct names")
    unknown = sorted(set(critical) - UNDERSTOOD_CRITICAL)
    if unknown:
        raise UnknownCriticalHeader(f"critical header parameters not understood: {unknown}")
    missing = sorted(name for name in critical if name not in header)
    if missing:
        raise MalformedSignature(f"crit names parameters that are absent: {missing}")
    if "b64" in header and "b64" not in critical:
        raise MalformedSignature("b64 must be listed in crit (RFC 7797 section 6)")


def _payload(encoded: str, detached: bytes | None, *, unencoded: bool) -> bytes:
    if detached is not None:
        if encoded:
            raise MalformedSignature("payload given twice: in the token and detached")
        return detached
    if unencoded:
        raise MalformedSignature("an unencoded (b64=false) payload must be given detached")
    return _decode_part(encoded, "payload")

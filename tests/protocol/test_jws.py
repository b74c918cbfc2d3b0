"""Compact JWS: RFC 8037 appendix A byte for byte, interop with joserfc, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jws as joserfc_jws
from joserfc.jwk import import_key

from protocol import canonicalize
from protocol._keys import b64url_encode
from protocol.errors import (
    AlgorithmNotAllowed,
    BadSignature,
    InvalidKey,
    MalformedSignature,
    ProtocolError,
    UnknownCriticalHeader,
)
from protocol.jwk import generate_private_jwk, public_jwk, thumbprint
from protocol.jws import MAX_TOKEN_LENGTH, read_protected_header, sign_compact, verify_compact
from tests.conftest import load_vector

VECTORS = load_vector("rfc8037_ed25519.json")
RFC = VECTORS["rfc8037_ed25519"]


@pytest.fixture(scope="module")
def rsa_key() -> dict[str, Any]:
    return generate_private_jwk("PS256")


@pytest.fixture(scope="module")
def ed_key() -> dict[str, Any]:
    return generate_private_jwk("EdDSA")


@pytest.fixture(params=["EdDSA", "PS256"])
def algorithm(request: pytest.FixtureRequest) -> str:
    """Each algorithm of the allow-list in turn."""
    return str(request.param)


@pytest.fixture
def signing_key(algorithm: str, ed_key: dict[str, Any], rsa_key: dict[str, Any]) -> dict[str, Any]:
    """The private key for ``algorithm``."""
    return ed_key if algorithm == "EdDSA" else rsa_key


def test_rfc8037_a4_reproduced_byte_for_byte() -> None:
    token = sign_compact(
        RFC["payload_text"].encode(), RFC["private_jwk"], protected={"alg": "EdDSA"}
    )
    assert token == RFC["compact_jws"]
    assert token.rsplit(".", 1)[0] == RFC["signing_input"]


def test_rfc8037_a5_verifies() -> None:
    assert verify_compact(RFC["compact_jws"], RFC["public_jwk"]) == RFC["payload_text"].encode()


def test_rfc8037_thumbprint() -> None:
    assert thumbprint(RFC["public_jwk"]) == RFC["jwk_thumbprint_b64url"]


@pytest.mark.parametrize("name", ["ed25519_tampered_payload", "ed25519_flipped_signature_bit"])
def test_derived_negative_cases(name: str) -> None:
    with pytest.raises(BadSignature) as caught:
        verify_compact(VECTORS["derived_negative_cases"][name], RFC["public_jwk"])
    assert caught.value.code == "bad_signature"


def test_default_header_has_alg_and_kid(ed_key: dict[str, Any]) -> None:
    token = sign_compact(b"x", ed_key)
    assert read_protected_header(token) == {"alg": "EdDSA", "kid": ed_key["kid"]}


def test_detached_round_trip(signing_key: dict[str, Any]) -> None:
    token = sign_compact(b"body", signing_key, detached=True)
    assert token.split(".")[1] == ""
    assert verify_compact(token, public_jwk(signing_key), payload=b"body") == b"body"
    with pytest.raises(BadSignature):
        verify_compact(token, public_jwk(signing_key), payload=b"bodY")


def test_unencoded_detached_payload(ed_key: dict[str, Any]) -> None:
    header = {"alg": "EdDSA", "b64": False, "crit": ["b64"]}
    token = sign_compact(b"a.b", ed_key, protected=header, detached=True)
    assert verify_compact(token, public_jwk(ed_key), payload=b"a.b") == b"a.b"
    with pytest.raises(MalformedSignature):
        sign_compact(b"a.b", ed_key, protected=header)
    with pytest.raises(MalformedSignature):
        verify_compact(token, public_jwk(ed_key))


# Interop with joserfc (an independent implementation), both directions, both algorithms.
# joserfc warns that RFC 9864 deprecates the polymorphic "EdDSA"; RFC 8037 and the issue use it.
interop = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")


@interop
def test_ours_verify_with_joserfc(algorithm: str, signing_key: dict[str, Any]) -> None:
    token = sign_compact(b'{"hello":"world"}', signing_key)
    theirs = import_key(public_jwk(signing_key))
    result = joserfc_jws.deserialize_compact(token, theirs, algorithms=[algorithm])
    assert result.payload == b'{"hello":"world"}'
    assert result.protected == {"alg": algorithm, "kid": signing_key["kid"]}


@interop
def test_joserfc_verify_with_ours(algorithm: str, signing_key: dict[str, Any]) -> None:
    header = {"alg": algorithm, "kid": signing_key["kid"]}
    theirs = import_key(signing_key)
    token = joserfc_jws.serialize_compact(header, b"payload", theirs, algorithms=[algorithm])
    assert verify_compact(token, public_jwk(signing_key)) == b"payload"


# Refusals, each with its own error class and code.


def _token(header: dict[str, Any], payload: bytes = b"p", signature: bytes = b"s" * 64) -> str:
    return ".".join(
        [b64url_encode(canonicalize(header)), b64url_encode(payload), b64url_encode(signature)]
    )


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES256", "Ed25519", None, 1])
def test_algorithm_not_allowed(alg: Any, ed_key: dict[str, Any]) -> None:
    with pytest.raises(AlgorithmNotAllowed) as caught:
        verify_compact(_token({"alg": alg}), public_jwk(ed_key))
    assert caught.value.code == "algorithm_not_allowed"


def test_algorithm_must_fit_key(ed_key: dict[str, Any], rsa_key: dict[str, Any]) -> None:
    token = sign_compact(b"x", ed_key)
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(token, public_jwk(rsa_key))
    with pytest.raises(AlgorithmNotAllowed):
        sign_compact(b"x", ed_key, protected={"alg": "PS256"})


def test_unknown_critical_header(ed_key: dict[str, Any]) -> None:
    header = {"alg": "EdDSA", "crit": ["exp"], "exp": 1}
    with pytest.raises(UnknownCriticalHeader) as caught:
        verify_compact(_token(header), public_jwk(ed_key))
    assert caught.value.code == "unknown_critical_header"
    with pytest.raises(UnknownCriticalHeader):
        sign_compact(b"x", ed_key, protected=header)


def _b64(text: str) -> str:
    return b64url_encode(text.encode())


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "a.b.c.d",
        "!!!.cA.cw",
        _b64('{"alg":"EdDSA","alg":"EdDSA"}') + ".cA.cw",
        _b64('["alg"]') + ".cA.cw",
        _b64("{") + ".cA.cw",
        _token({"alg": "EdDSA", "crit": []}),
        _token({"alg": "EdDSA", "crit": "sigT"}),
        _token({"alg": "EdDSA", "crit": ["sigT"]}),
        _token({"alg": "EdDSA", "b64": False}),
        _token({"alg": "EdDSA", "b64": "no", "crit": ["b64"]}),
        _b64('{"alg":"EdDSA"}') + ".cA.c=",
        "x" * (MAX_TOKEN_LENGTH + 1),
        _b64('{"alg":"EdDSA","x":"' + "a" * 5000 + '"}') + ".cA.cw",
    ],
)
def test_malformed_tokens(token: str, ed_key: dict[str, Any]) -> None:
    with pytest.raises(MalformedSignature) as caught:
        verify_compact(token, public_jwk(ed_key))
    assert caught.value.code == "malformed_signature"


def test_payload_given_twice(ed_key: dict[str, Any]) -> None:
    with pytest.raises(MalformedSignature):
        verify_compact(sign_compact(b"x", ed_key), public_jwk(ed_key), payload=b"x")


def test_private_key_refused_for_verification(ed_key: dict[str, Any]) -> None:
    with pytest.raises(InvalidKey) as caught:
        verify_compact(sign_compact(b"x", ed_key), ed_key)
    assert caught.value.code == "invalid_key"


def test_read_protected_header_checks_form_only(ed_key: dict[str, Any]) -> None:
    token = sign_compact(b"x", ed_key)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert read_protected_header(forged)["kid"] == ed_key["kid"]
    with pytest.raises(ProtocolError):
        read_protected_header("nonsense")

"""JWK helpers: generation, thumbprints, PEM round trips and validation of public keys."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from protocol._keys import b64url_encode
from protocol.errors import InvalidKey
from protocol.jwk import (
    generate_private_jwk,
    load_private_jwk_from_pem,
    private_jwk_to_pem,
    public_jwk,
    public_jwks,
    thumbprint,
    validate_public_jwk,
)
from tests.conftest import load_vector

RFC = load_vector("rfc8037_ed25519.json")["rfc8037_ed25519"]
PRIVATE = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]


@pytest.fixture(scope="module", params=["EdDSA", "PS256"])
def private_key(request: pytest.FixtureRequest) -> dict[str, Any]:
    return generate_private_jwk(request.param)


def test_generated_key_has_kid_and_alg(private_key: dict[str, Any]) -> None:
    assert private_key["kid"] == thumbprint(private_key)
    assert private_key["alg"] in {"EdDSA", "PS256"}
    if private_key["alg"] == "PS256":
        assert private_key["kty"] == "RSA"
        n = int.from_bytes(base64.urlsafe_b64decode(private_key["n"] + "=="), "big")
        assert n.bit_length() == 3072
    else:
        assert (private_key["kty"], private_key["crv"]) == ("OKP", "Ed25519")


def test_public_half(private_key: dict[str, Any]) -> None:
    public = public_jwk(private_key)
    assert not set(PRIVATE) & set(public)
    assert public["kid"] == private_key["kid"]
    assert validate_public_jwk(public) == public
    assert public_jwks([private_key]) == {"keys": [public]}


def test_thumbprint_rfc8037_a3() -> None:
    assert thumbprint(RFC["public_jwk"]) == RFC["jwk_thumbprint_b64url"]
    assert thumbprint(RFC["private_jwk"]) == RFC["jwk_thumbprint_b64url"]


def test_thumbprint_rfc7638_rsa_example() -> None:
    # RFC 7638 section 3.1.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
        "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI"
        "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    assert thumbprint({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}) == (
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    )


def test_pem_round_trip(private_key: dict[str, Any]) -> None:
    assert load_private_jwk_from_pem(private_jwk_to_pem(private_key)) == private_key


def test_encrypted_pem() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert load_private_jwk_from_pem(pem, password=b"secret")["alg"] == "PS256"
    with pytest.raises(InvalidKey):
        load_private_jwk_from_pem(pem, password=b"wrong")


@pytest.mark.parametrize(
    "make",
    [
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505 - must be refused
    ],
)
def test_unsupported_pem_keys(make: Any) -> None:
    pem = make().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidKey):
        load_private_jwk_from_pem(pem)


def test_garbage_pem() -> None:
    with pytest.raises(InvalidKey):
        load_private_jwk_from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def _small_rsa() -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    public = private.public_key().public_numbers()
    return {
        "kty": "RSA",
        "n": b64url_encode(public.n.to_bytes(128, "big")),
        "e": b64url_encode(public.e.to_bytes(3, "big")),
    }


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "oct", "k": "AAAA"},
        {"kty": "OKP", "crv": "X25519", "x": RFC["public_jwk"]["x"]},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC["public_jwk"]["x"] + "="},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC["public_jwk"]["x"], "alg": "PS256"},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC["public_jwk"]["x"], "kid": "other"},
        {"kty": "RSA", "e": "AQAB"},
        _small_rsa(),
        [],
    ],
)
def test_invalid_public_keys(jwk: Any) -> None:
    with pytest.raises(InvalidKey) as caught:
        validate_public_jwk(jwk)
    assert caught.value.code == "invalid_key"


@pytest.mark.parametrize("member", PRIVATE)
def test_private_members_refused(member: str) -> None:
    with pytest.raises(InvalidKey):
        validate_public_jwk({**RFC["public_jwk"], member: "AAAA"})

"""Protocol signing cost against the raw ``cryptography`` primitives, measured in one run.

Run: ``.venv/bin/python bench/bench_signing.py`` from the repository root. Per algorithm, for a
dossier offer with five devices, median time per message of:

- canon: ``canonicalize`` of the message document;
- protocol: canonicalize + ``sign_body`` (sender) + ``read_signed_message`` + the checks 10-14 of
  ``verify_message`` (receiver: key, signature, receiver OIN, freshness), i.e. everything the agent
  runs for a message except the pydantic model;
- raw: the ``cryptography`` sign + verify of the same body bytes; ratio = protocol / raw
  (target EdDSA <= 1.5x);
- agent: what the agent runs end to end, ``sign_message`` from the model + ``read_signed_message``
  + ``verify_message`` (including ``parse_message``), with its ratio to raw.
"""

from __future__ import annotations

import copy
import json
import statistics
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

from protocol import canonicalize, message_to_json, parse_message
from protocol._keys import private_key_from_jwk
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.signing import (
    VerificationKey,
    VerificationPolicy,
    _verify_envelope,  # checks 10-14 of verify_message, without the model (check 15)
    read_signed_message,
    sign_body,
    sign_message,
    verify_message,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "dossier-offer.json"
SIGNING_TIME = datetime(2025, 2, 10, 10, 15, 30, tzinfo=UTC)
DEVICES = 5
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def dossier_offer() -> dict[str, Any]:
    """The documented dossier offer, grown to five devices (all covered by the consent)."""
    document: dict[str, Any] = json.loads(EXAMPLE.read_text("utf-8"))
    body = document["body"]
    devices = body["devices"]
    while len(devices) < DEVICES:
        device = copy.deepcopy(devices[len(devices) % 2])
        device["deviceId"] = f"AMS-HM-2024-{len(devices):05d}"
        device["serialNumber"] = f"SN-{len(devices):08d}"
        devices.append(device)
    body["consent"]["deviceIds"] = [device["deviceId"] for device in devices]
    parse_message(document)  # the benchmark input is a valid message
    return document


def per_call(function: Callable[[], object], *, repeat: int = 7, number: int = 200) -> float:
    """Median seconds per call."""
    timings = timeit.repeat(function, repeat=repeat, number=number)
    return statistics.median(timings) / number


def measure(algorithm: str, document: dict[str, Any]) -> dict[str, float]:
    private = generate_private_jwk(algorithm)  # type: ignore[arg-type]
    keys = [VerificationKey(public_jwk(private))]
    policy = VerificationPolicy(receiver_oin=document["receiver"]["oin"])
    key = private_key_from_jwk(private)
    public = key.public_key()
    body = canonicalize(document)
    model = parse_message(document)
    assert canonicalize(message_to_json(model)) == body  # both rounds sign the same bytes

    def protocol_round() -> None:
        signed = sign_body(canonicalize(document), private, signing_time=SIGNING_TIME)
        unverified = read_signed_message(signed.body, signed.headers().items(), policy=policy)
        _verify_envelope(unverified, keys, policy=policy, now=SIGNING_TIME)

    def agent_round() -> None:
        signed = sign_message(model, private, signing_time=SIGNING_TIME)
        unverified = read_signed_message(signed.body, signed.headers().items(), policy=policy)
        verify_message(unverified, keys, policy=policy, now=SIGNING_TIME)

    def raw_round() -> None:
        if isinstance(key, ed25519.Ed25519PrivateKey):
            public.verify(key.sign(body), body)  # type: ignore[call-arg]
        else:
            public.verify(key.sign(body, PSS, hashes.SHA256()), body, PSS, hashes.SHA256())  # type: ignore[call-arg]

    number = 200 if algorithm == "EdDSA" else 20
    return {
        "bytes": float(len(body)),
        "canonicalize": per_call(lambda: canonicalize(document), number=number),
        "protocol": per_call(protocol_round, number=number),
        "raw": per_call(raw_round, number=number),
        "agent": per_call(agent_round, number=number),
    }


def main() -> None:
    document = dossier_offer()
    print(f"dossier offer, {DEVICES} devices")
    print(
        f"{'algorithm':<9} {'body B':>7} {'canon us':>9} {'protocol us':>12} {'raw us':>9} "
        f"{'ratio':>6} {'agent us':>9} {'ratio':>6}"
    )
    for algorithm in ("EdDSA", "PS256"):
        result = measure(algorithm, document)
        print(
            f"{algorithm:<9} {int(result['bytes']):>7} {result['canonicalize'] * 1e6:>9.1f} "
            f"{result['protocol'] * 1e6:>12.1f} {result['raw'] * 1e6:>9.1f} "
            f"{result['protocol'] / result['raw']:>5.2f}x {result['agent'] * 1e6:>9.1f} "
            f"{result['agent'] / result['raw']:>5.2f}x"
        )


if __name__ == "__main__":
    main()

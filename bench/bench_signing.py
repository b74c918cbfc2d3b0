"""Protocol signing cost against the raw ``cryptography`` primitives, measured in one run.

Run: ``.venv/bin/python bench/bench_signing.py`` from the repository root. Prints, per algorithm,
the time per message of canonicalize + sign_body + verify_body for a dossier offer with five
devices, the raw sign + verify of the same body bytes, and their ratio (target EdDSA <= 1.5x).
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

from protocol import canonicalize, parse_message
from protocol._keys import private_key_from_jwk
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.signing import (
    VerificationKey,
    VerificationPolicy,
    read_signed_message,
    sign_body,
    verify_body,
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

    def protocol_round() -> None:
        signed = sign_body(canonicalize(document), private, signing_time=SIGNING_TIME)
        verify_body(signed.body, signed.headers().items(), keys, policy=policy, now=SIGNING_TIME)

    def full_round() -> None:
        signed = sign_body(canonicalize(document), private, signing_time=SIGNING_TIME)
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
        "with_model": per_call(full_round, number=number),
    }


def main() -> None:
    document = dossier_offer()
    print(f"dossier offer, {DEVICES} devices")
    print(
        f"{'algorithm':<9} {'body B':>7} {'canon us':>9} {'protocol us':>12} {'raw us':>9} "
        f"{'ratio':>6} {'+model us':>10}"
    )
    for algorithm in ("EdDSA", "PS256"):
        result = measure(algorithm, document)
        ratio = result["protocol"] / result["raw"]
        print(
            f"{algorithm:<9} {int(result['bytes']):>7} {result['canonicalize'] * 1e6:>9.1f} "
            f"{result['protocol'] * 1e6:>12.1f} {result['raw'] * 1e6:>9.1f} {ratio:>5.2f}x "
            f"{result['with_model'] * 1e6:>10.1f}"
        )


if __name__ == "__main__":
    main()

"""Inbound messages: verification, every rejection as problem+json, duplicates and conflicts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from agent.storage.tables import InboundMessageRow, OutboxRow
from protocol import canonicalize
from protocol.jwk import generate_private_jwk
from protocol.signing import sign_body
from tests.agent.conftest import UTRECHT_OIN, Agents

RECEIVER = "http://amsterdam.test/v1/messages"


async def _offer_body(agents: Agents) -> bytes:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    async with agents.departing.database.reading() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.kind == "message"))
    assert row is not None
    return row.body


def _signed(agents: Agents, body: bytes, **options: timedelta) -> dict[str, str]:
    moment = agents.clock.now() + options.get("shift", timedelta(0))
    return sign_body(body, agents.keys[UTRECHT_OIN], signing_time=moment).headers()


async def _stored(agents: Agents) -> int:
    async with agents.receiving.database.reading() as session:
        count = await session.scalar(select(func.count()).select_from(InboundMessageRow))
    return int(count or 0)


async def test_offer_is_answered_with_a_signed_receipt(agents: Agents) -> None:
    body = await _offer_body(agents)
    answer = await agents.http.post(RECEIVER, content=body, headers=_signed(agents, body))
    assert answer.status_code == 200, answer.text
    receipt = answer.json()
    assert receipt["messageType"] == "receipt"
    assert receipt["body"]["receivedMessageId"] == json.loads(body)["messageId"]
    assert answer.headers["Digest"].startswith("SHA-256=")
    assert receipt["body"]["bodyDigest"] == _signed(agents, body)["Digest"]
    assert await _stored(agents) == 1


def _tampered_signature(agents: Agents, body: bytes) -> dict[str, str]:
    headers = _signed(agents, body)
    head, payload, signature = headers["nlgov-adr-payload-sig"].split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    return headers | {"nlgov-adr-payload-sig": f"{head}.{payload}.{flipped}"}


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no-signature", 401, "signature-missing"),
        ("digest-mismatch", 400, "digest-mismatch"),
        ("bad-signature", 401, "bad-signature"),
        ("unknown-key", 401, "key-unknown"),
        ("unknown-sender", 401, "sender-unknown"),
        ("old-signature", 400, "clock-skew"),
        ("malformed-json", 400, "malformed-json"),
        ("invalid-message", 400, "invalid-message"),
        ("too-large", 413, "body-too-large"),
        ("wrong-receiver", 421, "receiver-mismatch"),
    ],
)
async def test_rejections_are_problems_and_store_nothing(
    agents: Agents, case: str, status: int, code: str
) -> None:
    body = await _offer_body(agents)
    url = RECEIVER
    headers = _signed(agents, body)
    if case == "no-signature":
        headers = {"Content-Type": "application/json"}
    elif case == "digest-mismatch":
        body = body.replace(b'"urgent":false', b'"urgent":true ')
    elif case == "bad-signature":
        headers = _tampered_signature(agents, body)
    elif case == "unknown-key":
        headers = sign_body(
            body, generate_private_jwk("EdDSA"), signing_time=agents.clock.now()
        ).headers()
    elif case == "unknown-sender":
        del agents.directory.entries[UTRECHT_OIN]
    elif case == "old-signature":
        headers = _signed(agents, body, shift=timedelta(hours=-1))
    elif case == "malformed-json":
        body = body[:-1]
        headers = _signed(agents, body)
    elif case == "invalid-message":
        document = json.loads(body)
        document["body"]["urgent"] = "yes"
        body = canonicalize(document)
        headers = _signed(agents, body)
    elif case == "too-large":
        body = b" " * 2_000_000 + body
        headers = _signed(agents, body)
    elif case == "wrong-receiver":
        url = "http://utrecht.test/v1/messages"
    answer = await agents.http.post(url, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["type"] == f"urn:meeverhuizen:problem:{code}"
    assert await _stored(agents) == 0


async def test_duplicate_gets_the_same_receipt_and_no_second_effect(agents: Agents) -> None:
    body = await _offer_body(agents)
    first = await agents.http.post(RECEIVER, content=body, headers=_signed(agents, body))
    agents.clock.advance(timedelta(minutes=10))
    second = await agents.http.post(RECEIVER, content=body, headers=_signed(agents, body))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.headers["nlgov-adr-payload-sig"] != second.headers["nlgov-adr-payload-sig"]
    dossier_id = json.loads(body)["dossierId"]
    dossier = await agents.receiving.dossier(dossier_id)
    assert [t.to_state for t in dossier.timeline] == ["offer-received", "decided"]
    decisions = [e for e in await agents.receiving.outbox.list() if e.kind == "message"]
    assert len(decisions) == 1
    assert await _stored(agents) == 1


async def test_same_id_other_content_is_a_conflict(agents: Agents) -> None:
    body = await _offer_body(agents)
    assert (
        await agents.http.post(RECEIVER, content=body, headers=_signed(agents, body))
    ).is_success
    document = json.loads(body)
    document["body"]["urgent"] = True
    document["body"]["urgencyReason"] = "Kan niet zonder scootmobiel."
    other = canonicalize(document)
    answer = await agents.http.post(RECEIVER, content=other, headers=_signed(agents, other))
    assert answer.status_code == 409
    assert answer.json()["type"] == "urn:meeverhuizen:problem:conflict"
    assert await _stored(agents) == 1


async def test_unreachable_registry_is_a_503(
    agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(oin: str, *, refresh: bool = False) -> None:
        from registry.errors import RegistryUnavailable

        raise RegistryUnavailable("down")

    body = await _offer_body(agents)
    monkeypatch.setattr(agents.directory, "key_history", down)
    answer = await agents.http.post(RECEIVER, content=body, headers=_signed(agents, body))
    assert answer.status_code == 503
    assert answer.json()["type"] == "urn:meeverhuizen:problem:registry-unavailable"

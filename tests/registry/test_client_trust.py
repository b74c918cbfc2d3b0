"""The verifying, caching client: forged and replayed answers, staleness, 304, no I/O in cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from protocol.clock import FrozenClock
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.signing import sign_body
from registry.client import Participant, RegistryClient
from registry.errors import (
    InvalidRegistryInput,
    ParticipantNotEnrolled,
    RegistryClockSkew,
    RegistryUnavailable,
    UntrustedAnswer,
)
from tests.registry.conftest import (
    BASE_URL,
    UTRECHT_OIN,
    Registry,
    SwitchableTransport,
    enrol_gemeente,
)

Switchable = tuple[SwitchableTransport, RegistryClient]
Alteration = Callable[[httpx.Response, bytes], httpx.Response]
PAST_MAX_AGE = timedelta(seconds=301)


def _rebuilt(response: httpx.Response, body: bytes, headers: dict[str, str]) -> httpx.Response:
    merged = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    merged.update(headers)
    return httpx.Response(response.status_code, headers=merged, content=body)


async def _assert_untrusted(switchable: Switchable, alteration: Alteration) -> None:
    """With every answer altered on the way, the client refuses Utrecht's entry."""
    transport, client = switchable
    transport.alter = alteration
    with pytest.raises(UntrustedAnswer):
        await client.gemeente("0344")


@pytest.fixture
async def cached_entry(registry: Registry, switchable: Switchable) -> Participant:
    """Utrecht enrolled, and its entry fetched once: verified and in the client's cache."""
    await enrol_gemeente(registry)
    _, client = switchable
    return await client.gemeente("0344")


async def test_answers_within_max_age_need_no_request(
    switchable: Switchable, cached_entry: Participant
) -> None:
    transport, client = switchable
    transport.down = True  # any I/O would now fail
    for _ in range(100):
        assert await client.gemeente("0344") is cached_entry
    assert len(transport.requests) == 1


async def test_forged_answer_is_rejected(registry: Registry, switchable: Switchable) -> None:
    await enrol_gemeente(registry)

    def redirect_endpoint(response: httpx.Response, body: bytes) -> httpx.Response:
        forged = body.replace(b"http://agent-0344.test", b"http://attacker.test")
        return _rebuilt(response, forged, {})

    await _assert_untrusted(switchable, redirect_endpoint)


async def test_answer_signed_by_another_key_is_rejected(
    registry: Registry, switchable: Switchable
) -> None:
    await enrol_gemeente(registry)
    attacker = generate_private_jwk("EdDSA")

    def resign(response: httpx.Response, body: bytes) -> httpx.Response:
        forged = body.replace(b"http://agent-0344.test", b"http://attacker.test")
        signed = sign_body(forged, attacker, signing_time=registry.clock.now())
        return _rebuilt(response, forged, signed.headers())

    await _assert_untrusted(switchable, resign)


async def test_unsigned_answer_is_rejected(registry: Registry, switchable: Switchable) -> None:
    await enrol_gemeente(registry)

    def strip(response: httpx.Response, body: bytes) -> httpx.Response:
        signature = "nlgov-adr-payload-sig"
        headers = {k: v for k, v in response.headers.items() if k.lower() != signature}
        return httpx.Response(response.status_code, headers=headers, content=body)

    await _assert_untrusted(switchable, strip)


async def test_old_answer_replayed_later_is_rejected(
    registry: Registry, switchable: Switchable
) -> None:
    await enrol_gemeente(registry)
    captured = await registry.http.get("/v1/gemeenten/0344")
    registry.clock.advance(timedelta(hours=2))
    await _assert_untrusted(
        switchable,
        lambda response, body: _rebuilt(captured, captured.content, dict(captured.headers)),
    )


async def test_answer_for_another_question_is_rejected(
    registry: Registry, switchable: Switchable
) -> None:
    await enrol_gemeente(registry)
    await enrol_gemeente(registry, "0363", "00000001002564440000")
    other = await registry.http.get("/v1/gemeenten/0363")
    await _assert_untrusted(
        switchable, lambda response, body: _rebuilt(other, other.content, dict(other.headers))
    )


async def test_signed_problem_is_trusted_and_forged_problem_is_not(
    registry: Registry, switchable: Switchable
) -> None:
    _, client = switchable
    with pytest.raises(ParticipantNotEnrolled):
        await client.gemeente("0344")

    def fake_problem(response: httpx.Response, body: bytes) -> httpx.Response:
        problem = {"type": "urn:meeverhuizen:problem:participant-unknown", "status": 404}
        return httpx.Response(
            404, json=problem, headers={"Content-Type": "application/problem+json"}
        )

    await _assert_untrusted(switchable, fake_problem)


async def test_stale_cache_serves_while_registry_is_down_then_gives_up(
    registry: Registry, switchable: Switchable
) -> None:
    enrolled = await enrol_gemeente(registry)
    transport, client = switchable
    fresh = await client.gemeente("0344")
    transport.down = True
    registry.clock.advance(PAST_MAX_AGE)
    stale = await client.gemeente("0344")
    assert stale == fresh
    keys = await client.verification_keys(UTRECHT_OIN)
    assert [key.kid for key in keys] == [enrolled.private_jwk["kid"]]

    registry.clock.advance(timedelta(hours=1))
    with pytest.raises(RegistryUnavailable):
        await client.gemeente("0344")
    transport.down = False
    assert await client.gemeente("0344") == fresh


async def test_unreachable_without_cache_is_unavailable(
    registry: Registry, switchable: Switchable
) -> None:
    transport, client = switchable
    transport.down = True
    with pytest.raises(RegistryUnavailable) as caught:
        await client.gemeente("0344")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_server_error_falls_back_to_verified_cache(
    registry: Registry, switchable: Switchable, cached_entry: Participant
) -> None:
    transport, client = switchable
    registry.clock.advance(PAST_MAX_AGE)
    transport.alter = lambda response, body: httpx.Response(502, text="bad gateway")
    assert await client.gemeente("0344") == cached_entry


async def test_revalidation_uses_signed_304(
    registry: Registry, switchable: Switchable, cached_entry: Participant
) -> None:
    transport, client = switchable
    registry.clock.advance(PAST_MAX_AGE)
    assert await client.gemeente("0344") is cached_entry
    revalidation = transport.requests[-1]
    assert revalidation.headers["if-none-match"]
    # Renewed for another max-age: no request until it passes.
    registry.clock.advance(timedelta(seconds=200))
    await client.gemeente("0344")
    assert len(transport.requests) == 2


@pytest.mark.usefixtures("cached_entry")
async def test_304_without_freshness_statement_is_not_trusted(
    registry: Registry, switchable: Switchable
) -> None:
    registry.clock.advance(PAST_MAX_AGE)

    def unsigned_304(response: httpx.Response, body: bytes) -> httpx.Response:
        return httpx.Response(304, headers={"ETag": response.headers.get("etag", "")})

    await _assert_untrusted(switchable, unsigned_304)


async def test_old_freshness_statement_cannot_extend_the_cache(
    registry: Registry, switchable: Switchable, cached_entry: Participant
) -> None:
    etag = (await registry.http.get("/v1/gemeenten/0344")).headers["etag"]
    old_304 = await registry.http.get("/v1/gemeenten/0344", headers={"If-None-Match": etag})
    assert old_304.status_code == 304
    registry.clock.advance(timedelta(hours=2))
    await _assert_untrusted(
        switchable, lambda response, body: httpx.Response(304, headers=dict(old_304.headers))
    )
    assert cached_entry.oin == UTRECHT_OIN


def test_trust_anchor_must_be_a_public_key(registry: Registry) -> None:
    with pytest.raises(InvalidRegistryInput):
        RegistryClient(BASE_URL, registry.signing_jwk, http=registry.http)
    with pytest.raises(InvalidRegistryInput):
        RegistryClient(BASE_URL, {"keys": []}, http=registry.http)
    rotating: dict[str, Any] = {
        "keys": [registry.trust_anchor, public_jwk(generate_private_jwk("EdDSA"))]
    }
    assert RegistryClient(BASE_URL, rotating, http=registry.http)


async def test_answers_are_signed_with_cache_headers(registry: Registry) -> None:
    await enrol_gemeente(registry)
    response = await registry.http.get("/v1/gemeenten/0344")
    assert response.headers["cache-control"] == "max-age=300"
    assert response.headers["etag"].startswith('"')
    assert response.headers["digest"].startswith("SHA-256=")
    assert response.headers["nlgov-adr-payload-sig"].count(".") == 2
    document = json.loads(response.content)
    assert document["issuedAt"] == "2025-03-03T09:00:00Z"
    assert document["resource"] == "/v1/gemeenten/0344"
    problem = await registry.http.get("/v1/gemeenten/9999")
    assert "nlgov-adr-payload-sig" in problem.headers
    assert problem.json()["issuedAt"] == "2025-03-03T09:00:00Z"


async def test_writes_convert_transport_errors(registry: Registry, switchable: Switchable) -> None:
    enrolled = await enrol_gemeente(registry)
    transport, client = switchable
    transport.down = True
    with pytest.raises(RegistryUnavailable) as caught:
        await client.update_own_entry(
            oin=UTRECHT_OIN, private_jwk=enrolled.private_jwk, endpoint="http://new.test"
        )
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("minutes", [7, -7])
async def test_a_clock_minutes_off_is_told_apart_from_an_unreachable_registry(
    registry: Registry, caplog: pytest.LogCaptureFixture, minutes: int
) -> None:
    await enrol_gemeente(registry)
    skewed = FrozenClock(registry.clock.now() + timedelta(minutes=minutes))
    transport = httpx.ASGITransport(app=registry.app)
    async with httpx.AsyncClient(transport=transport) as http:
        client = RegistryClient(BASE_URL, registry.trust_anchor, http=http, clock=skewed)
        with pytest.raises(RegistryClockSkew, match=f"by {-minutes * 60} s") as caught:
            await client.gemeente("0344")
    assert not isinstance(caught.value, RegistryUnavailable)
    assert caught.value.status == 503
    assert client.clock_offset == timedelta(minutes=-minutes)
    assert "registry_clock_skew" in [record.getMessage() for record in caplog.records]


async def test_a_clock_within_the_skew_records_its_offset(
    registry: Registry, switchable: Switchable
) -> None:
    await enrol_gemeente(registry)
    _, client = switchable
    await client.gemeente("0344")
    assert client.clock_offset == timedelta(0)

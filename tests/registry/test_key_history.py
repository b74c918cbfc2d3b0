"""The client's key history: revoked keys kept, at most a minute old, asked again for a new kid;
and verified answers taken back after a restart, verified again."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta

import httpx
import pytest

from protocol.errors import KeyNotValid, KeyUnknown
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.signing import VerificationPolicy, sign_body, verify_body
from registry.client import RegistryClient, StoredAnswer
from registry.errors import RegistryUnavailable
from tests.registry.conftest import (
    BASE_URL,
    UTRECHT_OIN,
    Registry,
    SwitchableTransport,
    change_own_entry,
    enrol_gemeente,
)

Switchable = tuple[SwitchableTransport, RegistryClient]
KEYS = f"/v1/participants/{UTRECHT_OIN}/keys"


def _key_requests(transport: SwitchableTransport) -> int:
    return sum(1 for request in transport.requests if request.url.path == KEYS)


async def test_a_revoked_key_stays_in_the_history_and_is_not_valid_after_revocation(
    registry: Registry, switchable: Switchable
) -> None:
    _, client = switchable
    utrecht = await enrol_gemeente(registry)
    before = registry.clock.now() - timedelta(seconds=1)
    signed = sign_body(b"{}", utrecht.private_jwk, signing_time=before)
    await registry.operator.revoke_key(
        oin=UTRECHT_OIN, kid=utrecht.private_jwk["kid"], reason="compromised"
    )
    registry.clock.advance(timedelta(seconds=1))
    keys = await client.key_history(UTRECHT_OIN)
    assert [key.kid for key in keys] == [utrecht.private_jwk["kid"]]
    policy = VerificationPolicy()
    # Signed before the revocation: still valid at its signing time (an archived message).
    verify_body(signed.body, signed.headers().items(), keys, policy=policy, now=None)
    later = sign_body(b"{}", utrecht.private_jwk, signing_time=registry.clock.now())
    with pytest.raises(KeyNotValid):
        verify_body(later.body, later.headers().items(), keys, policy=policy, now=None)
    stranger = sign_body(b"{}", generate_private_jwk("EdDSA"), signing_time=registry.clock.now())
    with pytest.raises(KeyUnknown):
        verify_body(stranger.body, stranger.headers().items(), keys, policy=policy, now=None)


async def test_key_answers_are_kept_a_minute_and_asked_again_for_a_new_kid(
    registry: Registry, switchable: Switchable
) -> None:
    transport, client = switchable
    utrecht = await enrol_gemeente(registry)
    await client.key_history(UTRECHT_OIN)
    registry.clock.advance(timedelta(seconds=59))
    await client.key_history(UTRECHT_OIN)
    assert _key_requests(transport) == 1  # within the minute: from memory

    new_key = generate_private_jwk("EdDSA")
    await change_own_entry(registry, utrecht, add_keys=[public_jwk(new_key)])
    # An unknown kid: asked again at once, but not more often than every 5 seconds.
    kids = {key.kid for key in await client.key_history(UTRECHT_OIN, refresh=True)}
    assert new_key["kid"] in kids
    await client.key_history(UTRECHT_OIN, refresh=True)
    assert _key_requests(transport) == 2
    registry.clock.advance(timedelta(seconds=5))
    await client.key_history(UTRECHT_OIN, refresh=True)
    assert _key_requests(transport) == 3


@dataclasses.dataclass
class Kept:
    """An answer store in memory: what a client kept, for a new client to take back."""

    answers: dict[str, StoredAnswer] = dataclasses.field(default_factory=dict)
    saves: int = 0

    async def load(self) -> Sequence[StoredAnswer]:
        return list(self.answers.values())

    async def save(self, answer: StoredAnswer) -> None:
        self.saves += 1
        self.answers[answer.resource] = answer


def _client(registry: Registry, http: httpx.AsyncClient, kept: Kept) -> RegistryClient:
    return RegistryClient(
        BASE_URL,
        registry.trust_anchor,
        http=http,
        clock=registry.clock,
        max_staleness=timedelta(hours=1),
        answers=kept,
    )


async def test_kept_answers_serve_a_new_client_while_the_registry_is_down(
    registry: Registry,
) -> None:
    await enrol_gemeente(registry)
    kept = Kept()
    transport = SwitchableTransport(httpx.ASGITransport(app=registry.app))
    async with httpx.AsyncClient(transport=transport) as http:
        await _client(registry, http, kept).participant(UTRECHT_OIN)
        await _client(registry, http, kept).key_history(UTRECHT_OIN)
        transport.down = True
        registry.clock.advance(timedelta(minutes=30))
        restarted = _client(registry, http, kept)
        assert await restarted.restore() == 2
        assert (await restarted.participant(UTRECHT_OIN)).oin == UTRECHT_OIN
        assert len(await restarted.key_history(UTRECHT_OIN)) == 1

        registry.clock.advance(timedelta(hours=1))
        too_late = _client(registry, http, kept)
        assert await too_late.restore() == 0
        with pytest.raises(RegistryUnavailable):
            await too_late.participant(UTRECHT_OIN)


async def test_a_kept_answer_that_was_altered_is_not_taken_back(registry: Registry) -> None:
    await enrol_gemeente(registry)
    kept = Kept()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.app)) as http:
        await _client(registry, http, kept).participant(UTRECHT_OIN)
        resource = f"/v1/participants/{UTRECHT_OIN}"
        original = kept.answers[resource]
        forged = original.body.replace(b"http://agent-0344.test", b"http://attacker.test")
        assert forged != original.body
        kept.answers[resource] = dataclasses.replace(original, body=forged)
        assert await _client(registry, http, kept).restore() == 0


async def test_an_answer_is_kept_when_fetched_or_extended_and_not_on_a_cache_hit(
    registry: Registry,
) -> None:
    await enrol_gemeente(registry)
    kept = Kept()
    resource = f"/v1/participants/{UTRECHT_OIN}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.app)) as http:
        client = _client(registry, http, kept)
        await client.participant(UTRECHT_OIN)
        assert kept.saves == 1
        first = kept.answers[resource]
        for _ in range(3):
            await client.participant(UTRECHT_OIN)
        assert kept.saves == 1  # answered from memory: nothing written

        registry.clock.advance(timedelta(minutes=6))
        await client.participant(UTRECHT_OIN)  # asked again: kept with its later bound
        assert kept.saves == 2
        assert kept.answers[resource].stale_until > first.stale_until


async def test_an_answer_found_by_gemeentecode_and_renewed_by_oin_is_taken_back(
    registry: Registry,
) -> None:
    await enrol_gemeente(registry)
    kept = Kept()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.app)) as http:
        client = _client(registry, http, kept)
        await client.gemeente("0344")
        registry.clock.advance(timedelta(minutes=6))
        await client.participant(UTRECHT_OIN)  # renews the answer it knows by gemeentecode
        restarted = _client(registry, http, kept)
        assert await restarted.restore() == len(kept.answers)

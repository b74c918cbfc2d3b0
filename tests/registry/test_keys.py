"""Keys: rotation with overlap, history at a time, revocation reaching a caching client."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from protocol.jwk import generate_private_jwk, public_jwk
from registry.app import create_app
from registry.errors import InvalidRegistryInput, RegistryKeyUnknown
from registry.operator import OperatorClient
from registry.settings import RegistrySettings
from tests.registry.conftest import (
    BASE_URL,
    OPERATOR_TOKEN,
    START,
    UTRECHT_OIN,
    Registry,
    change_own_entry,
    enrol_gemeente,
)

MAX_AGE = timedelta(seconds=300)


async def test_rotation_keeps_old_and_new_key_valid_during_the_overlap(registry: Registry) -> None:
    enrolled = await enrol_gemeente(registry)
    old_kid = enrolled.private_jwk["kid"]
    new_key = generate_private_jwk("EdDSA")
    overlap_end = START + timedelta(days=7)
    client = registry.client()
    await client.update_own_entry(
        oin=UTRECHT_OIN,
        private_jwk=enrolled.private_jwk,
        add_keys=[public_jwk(new_key)],
        retire_keys={old_kid: overlap_end},
    )
    during = {key.kid for key in await client.verification_keys(UTRECHT_OIN)}
    assert during == {old_kid, new_key["kid"]}

    registry.clock.set(overlap_end + timedelta(seconds=1))
    after = {key.kid for key in await client.verification_keys(UTRECHT_OIN)}
    assert after == {new_key["kid"]}
    # History: a message signed during the overlap can still be verified later.
    at_overlap = await client.verification_keys(UTRECHT_OIN, at=START + timedelta(days=1))
    assert {key.kid for key in at_overlap} == {old_kid, new_key["kid"]}


async def test_new_key_signs_changes_after_rotation(registry: Registry) -> None:
    enrolled = await enrol_gemeente(registry)
    new_key = generate_private_jwk("EdDSA")
    client = registry.client()
    await client.update_own_entry(
        oin=UTRECHT_OIN,
        private_jwk=enrolled.private_jwk,
        add_keys=[public_jwk(new_key)],
        retire_keys={enrolled.private_jwk["kid"]: START + timedelta(minutes=10)},
    )
    registry.clock.advance(timedelta(minutes=11))
    changed = await client.update_own_entry(
        oin=UTRECHT_OIN, private_jwk=new_key, endpoint="http://new-agent.test"
    )
    assert changed.endpoint == "http://new-agent.test"


async def test_revocation_takes_effect_in_a_caching_client_within_max_age(
    registry: Registry,
) -> None:
    enrolled = await enrol_gemeente(registry)
    spare = generate_private_jwk("EdDSA")
    client = registry.client()
    await client.update_own_entry(
        oin=UTRECHT_OIN, private_jwk=enrolled.private_jwk, add_keys=[public_jwk(spare)]
    )
    assert len(await client.verification_keys(UTRECHT_OIN)) == 2

    revoked_at = registry.clock.now()
    await registry.operator.revoke_key(
        oin=UTRECHT_OIN, kid=enrolled.private_jwk["kid"], reason="key compromised"
    )
    # Within max-age the verified cache answers without asking (documented bound).
    assert len(await client.verification_keys(UTRECHT_OIN)) == 2
    registry.clock.advance(MAX_AGE + timedelta(seconds=1))
    keys = await client.verification_keys(UTRECHT_OIN)
    assert [key.kid for key in keys] == [spare["kid"]]
    # The revoked key stays in the history: valid before the revocation, not after.
    before = await client.verification_keys(UTRECHT_OIN, at=revoked_at - timedelta(minutes=1))
    assert enrolled.private_jwk["kid"] in {key.kid for key in before}
    later = await client.verification_keys(UTRECHT_OIN, at=revoked_at + timedelta(seconds=1))
    assert enrolled.private_jwk["kid"] not in {key.kid for key in later}


async def test_key_history_lists_revocation_time_and_reason(registry: Registry) -> None:
    enrolled = await enrol_gemeente(registry)
    spare = generate_private_jwk("EdDSA")
    await change_own_entry(registry, enrolled, add_keys=[public_jwk(spare)])
    await registry.operator.revoke_key(
        oin=UTRECHT_OIN, kid=spare["kid"], reason="lost laptop", at=START + timedelta(hours=1)
    )
    history = (await registry.http.get(f"/v1/participants/{UTRECHT_OIN}/keys")).json()["data"]
    revoked = next(item for item in history if item["jwk"]["kid"] == spare["kid"])
    assert revoked["revokedAt"] == "2025-03-03T10:00:00Z"
    assert revoked["revocationReason"] == "lost laptop"
    assert await registry.audit_actions() == [
        "key_revoked",
        "entry_changed",
        "enrolled",
        "enrolment_code_issued",
        "gemeenten_seeded",
    ]


async def test_revoking_an_unknown_key_is_refused(registry: Registry) -> None:
    await enrol_gemeente(registry)
    with pytest.raises(RegistryKeyUnknown):
        await registry.operator.revoke_key(oin=UTRECHT_OIN, kid="unknown-kid", reason="x")


async def test_a_change_that_leaves_no_valid_key_is_refused(registry: Registry) -> None:
    enrolled = await enrol_gemeente(registry)
    with pytest.raises(InvalidRegistryInput):
        await change_own_entry(
            registry, enrolled, revoke_keys={enrolled.private_jwk["kid"]: "rotating"}
        )
    keys = await registry.client().verification_keys(UTRECHT_OIN)
    assert [key.kid for key in keys] == [enrolled.private_jwk["kid"]]


async def test_write_by_another_registry_replica_shows_at_once(
    registry: Registry, settings: RegistrySettings
) -> None:
    enrolled = await enrol_gemeente(registry)
    spare = generate_private_jwk("EdDSA")
    await change_own_entry(registry, enrolled, add_keys=[public_jwk(spare)])
    path = f"/v1/participants/{UTRECHT_OIN}"
    assert len((await registry.http.get(path)).json()["data"]["keys"]) == 2
    other = create_app(settings, clock=registry.clock)
    transport = httpx.ASGITransport(app=other)
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http,
    ):
        operator = OperatorClient(BASE_URL, OPERATOR_TOKEN, http=http)
        await operator.revoke_key(oin=UTRECHT_OIN, kid=spare["kid"], reason="compromised")
        # Every lookup reads the shared database: the first replica sees the revocation at once.
        keys = (await registry.http.get(path)).json()["data"]["keys"]
        assert [key["jwk"]["kid"] for key in keys] == [enrolled.private_jwk["kid"]]

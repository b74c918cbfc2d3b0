"""The departing -> receiving handover between two in-process agents (registry stand-in)."""

from __future__ import annotations

from sqlalchemy import func, select

from agent.storage.tables import InboundMessageRow
from tests.agent.conftest import (
    AMSTERDAM_OIN,
    DEPARTING_HAPPY_PATH,
    RECEIVING_HAPPY_PATH,
    UTRECHT_OIN,
    Agents,
)


async def test_happy_path_completes_both_dossiers_once(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    await agents.settle()

    departing = await agents.departing.dossier(dossier_id)
    receiving = await agents.receiving.dossier(dossier_id)
    assert departing.state == "completed"
    assert receiving.state == "completed"
    assert [t.to_state for t in departing.timeline] == DEPARTING_HAPPY_PATH
    assert [t.to_state for t in receiving.timeline] == RECEIVING_HAPPY_PATH
    assert departing.partner_oin == AMSTERDAM_OIN
    assert receiving.partner_oin == UTRECHT_OIN
    outcomes = {d.device_id: (d.outcome, d.reason_code) for d in receiving.decisions}
    assert outcomes == {
        "dev-1": ("take-over", None),
        "dev-2": ("take-over", None),
        "dev-3": ("exception", "not-movable"),
    }
    async with agents.receiving.database.reading() as session:
        # The offer, and the transfer of the bruikleen bed's ownership.
        assert await session.scalar(select(func.count()).select_from(InboundMessageRow)) == 2


async def test_scheduler_delivers_without_manual_passes(
    database_url: str, second_database_url: str
) -> None:
    """The lifespan runs the APScheduler job; woken after the commit, it delivers the offer."""
    import asyncio

    import httpx

    from agent.app import create_app
    from protocol.jwk import public_jwk
    from protocol.signing import VerificationKey
    from tests.agent.conftest import (
        Entry,
        FakeDirectory,
        Network,
        agent_settings,
    )

    network = Network()
    directory = FakeDirectory()
    settings = [
        agent_settings(database_url, gemeente="utrecht", scheduler_enabled=True),
        agent_settings(second_database_url, gemeente="amsterdam", scheduler_enabled=True),
    ]
    for s in settings:
        key = VerificationKey(public_jwk(s.private_jwk()))
        directory.entries[s.oin] = Entry(s.oin, s.public_base_url, s.gemeentecode, (key,))
    async with httpx.AsyncClient(transport=network) as http:
        apps = [create_app(s, http=http, registry=directory) for s in settings]
        network.routes["utrecht.test"] = httpx.ASGITransport(app=apps[0])
        network.routes["amsterdam.test"] = httpx.ASGITransport(app=apps[1])
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
        ):
            agents = Agents.__new__(Agents)
            agents.departing = apps[0].state.service
            dossier_id = await agents.start_dossier()
            await agents.give_consent(dossier_id)
            # Up to 30 s: on a busy machine the scheduler's passes come late, never not at all.
            for _ in range(1500):
                if (await agents.departing.dossier(dossier_id)).state == "completed":
                    break
                await asyncio.sleep(0.02)
            assert (await agents.departing.dossier(dossier_id)).state == "completed"

"""The departing -> receiving handover between two in-process agents (registry stand-in)."""

from __future__ import annotations

from sqlalchemy import func, select

from agent._db import InboundMessageRow
from tests.agent.conftest import AMSTERDAM_OIN, UTRECHT_OIN, Agents


async def test_happy_path_completes_both_dossiers_once(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    await agents.settle()

    departing = await agents.departing.dossier(dossier_id)
    receiving = await agents.receiving.dossier(dossier_id)
    assert departing.state == "completed"
    assert receiving.state == "completed"
    assert [t.to_state for t in departing.timeline] == [
        "started",
        "waiting-for-consent",
        "consent-given",
        "offer-sent",
        "decided",
        "completed",
    ]
    assert [t.to_state for t in receiving.timeline] == ["offer-received", "decided", "completed"]
    assert departing.partner_oin == AMSTERDAM_OIN
    assert receiving.partner_oin == UTRECHT_OIN
    outcomes = {d.device_id: (d.outcome, d.reason_code) for d in receiving.decisions}
    assert outcomes == {
        "dev-1": ("take-over", None),
        "dev-2": ("take-over", None),
        "dev-3": ("exception", "not-movable"),
    }
    async with agents.receiving.database.reading() as session:
        assert await session.scalar(select(func.count()).select_from(InboundMessageRow)) == 1

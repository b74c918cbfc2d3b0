"""A case worker's actions on a dossier: urgency, a Wlz institution, and consent for a child."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from agent.consent.flow import ConsentInput
from agent.core.views import DossierStart
from agent.errors import ConsentByWrongPerson
from agent.storage.tables import DossierRow, TaskRow
from tests.agent.conftest import (
    AUTH,
    CLIENT_BSN,
    DATA,
    MOVE_DATE,
    NEW_ADDRESS,
    START,
    Agents,
    RecordingChannel,
)


async def test_a_case_worker_marks_a_dossier_urgent_and_the_offer_carries_it(
    agents: Agents,
) -> None:
    dossier_id = await agents.start_dossier()
    answer = await agents.http.post(
        f"http://utrecht.test/v1/dossiers/{dossier_id}/urgency",
        json={"reason": "Mevrouw kan zonder tillift niet uit bed."},
        headers=AUTH,
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["urgent"], answer.json()["urgencyReason"]) == (
        True,
        "Mevrouw kan zonder tillift niet uit bed.",
    )
    await agents.give_consent(dossier_id)
    await agents.settle()
    offers = [r for r in agents.network.requests if r.url.host == "amsterdam.test"]
    assert '"urgent":true' in offers[0].content.decode()
    assert (await agents.receiving.dossier(dossier_id)).urgent is True
    # Once the offer has gone, the departing side can no longer change it.
    late = await agents.http.post(
        f"http://utrecht.test/v1/dossiers/{dossier_id}/urgency",
        json={"reason": "Nog dringender."},
        headers=AUTH,
    )
    assert late.status_code == 409
    assert late.json()["type"].endswith("illegal-transition")


async def test_an_empty_reason_is_refused_with_a_problem(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    answer = await agents.http.post(
        f"http://utrecht.test/v1/dossiers/{dossier_id}/urgency", json={"reason": ""}, headers=AUTH
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await agents.departing.dossier(dossier_id)).urgent is False


async def test_tasks_of_urgent_dossiers_come_first(agents: Agents) -> None:
    async with agents.departing.database.transaction() as session:
        for urgent in (False, True):
            dossier = DossierRow(
                id=str(uuid.uuid4()),
                side="departing",
                state="waiting-for-consent",
                urgent=urgent,
                created_at=START,
                updated_at=START,
            )
            session.add(dossier)
            await session.flush()
            session.add(
                TaskRow(
                    id=str(uuid.uuid4()),
                    dossier_id=dossier.id,
                    kind="manual-check",
                    state="open",
                    description="dringend" if urgent else "gewoon",
                    # The ordinary task is older: only the urgency puts the other first.
                    created_at=START + timedelta(minutes=1 if urgent else 0),
                )
            )
    answer = await agents.http.get("http://utrecht.test/v1/tasks?state=open", headers=AUTH)
    assert [task["description"] for task in answer.json()] == ["dringend", "gewoon"]


async def test_a_case_worker_stops_the_takeover_for_a_wlz_institution(
    agents: Agents, letters: RecordingChannel
) -> None:
    dossier_id = await agents.start_dossier()
    answer = await agents.http.post(
        f"http://utrecht.test/v1/dossiers/{dossier_id}/wlz-institution",
        json={"reason": "Verhuist naar verpleeghuis De Linde."},
        headers=AUTH,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "wlz-institution"
    tasks = await agents.departing.tasks.list("open", dossier_id=dossier_id)
    assert [task.kind for task in tasks] == ["wlz-institution"]
    assert "J. Jansen gaat wonen in een Wlz-instelling" in tasks[0].description
    assert "zorgkantoor" in tasks[0].description
    assert [notice.kind for notice in letters.notices] == ["invitation", "wlz"]
    # Nothing was sent to the receiving gemeente.
    assert not [r for r in agents.network.requests if r.url.host == "amsterdam.test"]


async def test_a_client_under_16_cannot_consent_alone(
    agents: Agents, letters: RecordingChannel
) -> None:
    clients = json.loads((DATA / "clients.json").read_text("utf-8"))
    child = clients[0] | {
        "birthDate": (START.date() - timedelta(days=10 * 365)).isoformat(),
        "representative": {
            "kind": "legal-representative",
            "name": {"initials": "P.", "surname": "Jansen"},
            "contact": {"channels": ["letter"]},
        },
    }
    await agents.departing.import_provisions(json.dumps([child]).encode(), "json")
    view = await agents.departing.start_dossier(
        DossierStart(bsn=CLIENT_BSN, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
    )
    dossier_id = view.dossier_id
    # The letter goes to the parent only.
    assert [notice.recipient_name for notice in letters.notices] == ["P. Jansen"]
    assert letters.notices[0].on_behalf_of == "J. Jansen"
    by_client = ConsentInput.model_validate(
        {
            "dataKinds": ["identity", "address", "devices"],
            "deviceIds": ["dev-1"],
            "channel": "phone",
            "givenBy": "client",
            "givenAt": START.isoformat(),
        }
    )
    with pytest.raises(ConsentByWrongPerson):
        await agents.departing.record_consent(dossier_id, by_client)
    assert (await agents.departing.dossier(dossier_id)).state == "waiting-for-consent"
    by_parent = by_client.model_copy(
        update={
            "given_by": "representative",
            "representative_name": "P. Jansen",
            "representative_relation": "legal-representative",
        }
    )
    await agents.departing.record_consent(dossier_id, by_parent)
    assert (await agents.departing.dossier(dossier_id)).state == "offer-sent"

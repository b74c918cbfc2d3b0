"""Tasks for people: opened by the process, listed and closed through the API."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx

from agent.app import create_app
from agent.core.tasks import open_task
from tests.agent.conftest import AUTH, START, agent_settings


async def test_open_list_and_complete_a_task(database_url: str, tmp_path: Path) -> None:
    from protocol.clock import FrozenClock

    clock = FrozenClock(START)
    app = create_app(agent_settings(database_url, gemeente="utrecht"), clock=clock)
    async with app.router.lifespan_context(app):
        service = app.state.service
        async with service.database.transaction() as session:
            first = await open_task(
                session, kind="manual-check", description="Bel de cliënt.", now=clock.now()
            )
            await open_task(
                session,
                kind="consent-refused",
                description="Weigering.",
                now=START + timedelta(minutes=1),
            )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            assert (await client.get("/v1/tasks")).status_code == 401
            listed = (await client.get("/v1/tasks?state=open", headers=AUTH)).json()
            assert [task["kind"] for task in listed] == ["manual-check", "consent-refused"]

            done = await client.post(
                f"/v1/tasks/{first.id}/done", json={"doneBy": "consulent 12"}, headers=AUTH
            )
            assert done.status_code == 200
            assert done.json()["state"] == "done"
            assert done.json()["doneBy"] == "consulent 12"

            still_open = (await client.get("/v1/tasks?state=open", headers=AUTH)).json()
            assert [task["kind"] for task in still_open] == ["consent-refused"]

            unknown = await client.post(
                "/v1/tasks/00000000-0000-4000-8000-000000000000/done",
                json={"doneBy": "x"},
                headers=AUTH,
            )
            assert unknown.status_code == 404
            assert unknown.json()["type"] == "urn:meeverhuizen:problem:unknown-task"


async def test_one_open_task_per_dossier_and_kind(database_url: str) -> None:
    from agent.storage.tables import DossierRow
    from protocol.clock import FrozenClock

    app = create_app(agent_settings(database_url, gemeente="utrecht"), clock=FrozenClock(START))
    async with app.router.lifespan_context(app):
        service = app.state.service
        dossier_id = "5b0f8c1e-2d4a-4c7e-9a31-6f2e8d9b0c14"
        async with service.database.transaction() as session:
            session.add(
                DossierRow(
                    id=dossier_id,
                    side="departing",
                    state="waiting-for-consent",
                    partner_gemeentecode="0363",
                    created_at=START,
                    updated_at=START,
                )
            )
            await session.flush()
            first = await open_task(
                session, kind="manual-check", description="a", now=START, dossier_id=dossier_id
            )
            again = await open_task(
                session, kind="manual-check", description="b", now=START, dossier_id=dossier_id
            )
            other = await open_task(
                session, kind="consent-refused", description="c", now=START, dossier_id=dossier_id
            )
        assert again.id == first.id
        assert other.id != first.id
        assert len(await service.tasks.list("open", dossier_id=dossier_id)) == 2
        await service.tasks.complete(first.id, done_by="consulent")
        async with service.database.transaction() as session:
            reopened = await open_task(
                session, kind="manual-check", description="d", now=START, dossier_id=dossier_id
            )
        assert reopened.id != first.id

"""The case worker revokes a dossier's personal link or sends a new one."""

from __future__ import annotations

import uuid

import httpx
import pytest

from agent.consent.links import LINK_PATH
from agent.core.processing_log import ProcessingLog
from tests.agent.conftest import AUTH, CLIENT_BSN, Agents, RecordingChannel


async def test_revoked_link_gets_the_same_answer_as_an_invalid_one(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    dossier_id = await agents.start_dossier()
    token = letters.token()
    opened = await browser.get(f"{LINK_PATH}{token}")
    assert opened.status_code == 303
    assert (await browser.get("/mijn-verhuizing")).status_code == 200
    answer = await browser.post(f"/v1/dossiers/{dossier_id}/link/revocation", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "dossierId": dossier_id,
        "revokedAt": agents.clock.now().isoformat().replace("+00:00", "Z"),
        "revokedLinks": 1,
    }
    revoked = await browser.get(f"{LINK_PATH}{token}")
    guessed = await browser.get(f"{LINK_PATH}{'B' * 43}")
    assert revoked.status_code == guessed.status_code == 404
    assert revoked.text == guessed.text
    assert "set-cookie" not in revoked.headers
    # The page session made from the link ended with it.
    assert (await browser.get("/mijn-verhuizing")).status_code == 401
    again = await browser.post(f"/v1/dossiers/{dossier_id}/link/revocation", headers=AUTH)
    assert again.json()["revokedLinks"] == 0
    records = await ProcessingLog.records(agents.departing.database, dossier_id=dossier_id)
    assert "consent-link-revoked" in {r.activity_id for r in records}


async def test_new_link_replaces_the_old_one_and_is_never_in_the_answer(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    dossier_id = await agents.start_dossier()
    old = letters.token()
    answer = await browser.post(f"/v1/dossiers/{dossier_id}/link", headers=AUTH)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["dossierId"] == dossier_id
    assert body["revokedLinks"] == 1
    assert body["deliveredBy"] == ["letter"]
    assert set(body) == {"dossierId", "issuedAt", "expiresAt", "revokedLinks", "deliveredBy"}
    new = letters.token()
    assert new != old
    assert letters.notices[-1].kind == "new-link"
    assert new not in answer.text
    assert CLIENT_BSN not in answer.text
    assert (await browser.get(f"{LINK_PATH}{old}")).status_code == 404
    assert (await browser.get(f"{LINK_PATH}{new}")).status_code == 303


async def test_without_a_channel_the_gemeente_gets_a_task(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    dossier_id = await agents.start_dossier()
    agents.departing.consent.channels = []
    answer = await browser.post(f"/v1/dossiers/{dossier_id}/link", headers=AUTH)
    assert answer.status_code == 201
    assert answer.json()["deliveredBy"] == []
    tasks = await agents.departing.tasks.list("open", dossier_id=dossier_id)
    assert [t.kind for t in tasks] == ["manual-check"]


@pytest.mark.parametrize("path", ["link", "link/revocation"])
async def test_unknown_dossier_is_a_problem(
    agents: Agents, browser: httpx.AsyncClient, path: str
) -> None:
    answer = await browser.post(f"/v1/dossiers/{uuid.uuid4()}/{path}", headers=AUTH)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:meeverhuizen:problem:unknown-dossier"
    unauthorised = await browser.post(f"/v1/dossiers/{uuid.uuid4()}/{path}")
    assert unauthorised.status_code == 401


async def test_a_receiving_dossier_has_no_link(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    await agents.settle()
    receiving = httpx.AsyncClient(transport=agents.network, base_url="http://amsterdam.test")
    assert (await receiving.get(f"/v1/dossiers/{dossier_id}", headers=AUTH)).status_code == 200
    answer = await receiving.post(f"/v1/dossiers/{dossier_id}/link", headers=AUTH)
    assert answer.status_code == 404
    assert answer.json()["type"] == "urn:meeverhuizen:problem:unknown-dossier"
    await receiving.aclose()

"""The agent's OpenAPI document says what the agent answers, checked on real answers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from agent.app import create_app
from tests._openapi import OpenApiContract, RecordingTransport
from tests.agent.conftest import (
    AUTH,
    CLIENT_BSN,
    DATA,
    FIRST_DEVICE_CONSENT,
    MOVE_DATE,
    NEW_ADDRESS,
    OPERATOR,
    Agents,
    FakeDirectory,
    agent_settings,
)

UTRECHT = "http://utrecht.test"


def _record(agents: Agents) -> list[RecordingTransport]:
    recorders = []
    for host in ("utrecht.test", "amsterdam.test"):
        recorder = RecordingTransport(agents.network.routes[host])
        agents.network.routes[host] = recorder
        recorders.append(recorder)
    return recorders


async def _document(agents: Agents) -> dict[str, Any]:
    response = await agents.http.get(UTRECHT + "/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_reference_in_the_document_resolves(agents: Agents) -> None:
    contract = OpenApiContract(await _document(agents))
    assert contract.unresolved_references() == []
    document = contract.document
    assert document["servers"][0]["url"] == "/v1"
    assert set(document["info"]["contact"]) == {"name", "url", "email"}
    assert "license" in document["info"]
    messages = document["paths"]["/messages"]["post"]
    names = {parameter["name"] for parameter in messages["parameters"]}
    assert names == {"Digest", "nlgov-adr-payload-sig"}
    assert "WWW-Authenticate" in messages["responses"]["401"]["headers"]


async def test_the_contact_is_the_operators_own(database_url: str) -> None:
    contact = {
        "name": "Servicedesk Wmo",
        "url": "https://wmo.example.nl/contact",
        "email": "wmo@example.nl",
    }
    settings = agent_settings(database_url, gemeente="utrecht", api_contact=contact)
    app = create_app(settings, registry=FakeDirectory())
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=UTRECHT) as http,
    ):
        document = (await http.get("/v1/openapi.json")).json()
    assert document["info"]["contact"] == contact


async def _exercise(agents: Agents) -> None:
    """A handover over real messages and receipts, and problems of each kind."""
    http = agents.http
    await http.post(
        UTRECHT + "/v1/provisions/imports",
        content=(DATA / "clients.json").read_bytes(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    started = await http.post(
        UTRECHT + "/v1/dossiers",
        json={
            "bsn": CLIENT_BSN,
            "moveDate": MOVE_DATE.isoformat(),
            "newAddress": NEW_ADDRESS.model_dump(mode="json", by_alias=True),
        },
        headers=AUTH,
    )
    dossier_id = started.json()["dossierId"]
    await http.post(
        f"{UTRECHT}/v1/dossiers/{dossier_id}/consent", json=FIRST_DEVICE_CONSENT, headers=AUTH
    )
    await agents.settle()
    for path in (
        "/v1/dossiers",
        "/v1/dossiers?state=completed",
        "/v1/dossiers?state=bogus",
        f"/v1/dossiers/{dossier_id}",
        f"/v1/dossiers/{uuid.uuid4()}",
        "/v1/tasks?state=open",
        "/v1/placed-orders",
        "/v1/orders",  # a gemeente: wrong role
    ):
        await http.get(UTRECHT + path, headers=AUTH)
    await http.get(UTRECHT + "/v1/dossiers")  # no token
    await http.get(UTRECHT + "/v1/outbox?state=delivered", headers=OPERATOR)
    await http.get(UTRECHT + "/v1/health")
    await http.get(UTRECHT + "/v1/health/ready")
    await http.post(UTRECHT + "/v1/messages", content=b"{}")
    await http.post(UTRECHT + "/v1/messages", content=b"{}", headers={"Payload-Signature": "a..b"})
    await http.post(
        UTRECHT + "/v1/messages",
        content=b"{}",
        headers={"nlgov-adr-payload-sig": "a..b", "Digest": "SHA-256=x"},
    )


async def test_real_answers_match_the_document(agents: Agents) -> None:
    recorders = _record(agents)
    await _exercise(agents)
    contract = OpenApiContract(await _document(agents))
    answers = [
        answer
        for recorder in recorders
        for answer in recorder.answers
        if answer.request.url.path.startswith("/v1/")
        and answer.request.url.path != "/v1/openapi.json"
    ]
    statuses = {answer.status_code for answer in answers}
    assert {200, 201, 400, 401, 404, 409} <= statuses
    assert any(answer.request.url.path == "/v1/messages" for answer in answers)
    for answer in answers:
        contract.check(answer)


async def test_an_unknown_state_filter_is_a_400_problem(agents: Agents) -> None:
    response = await agents.http.get(UTRECHT + "/v1/dossiers?state=bogus", headers=AUTH)
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "urn:meeverhuizen:problem:invalid-input"
    assert problem["instance"] == "/v1/dossiers"
    assert problem["invalidParams"][0]["name"] == "query.state"


async def test_a_401_on_messages_names_the_signature_scheme(agents: Agents) -> None:
    response = await agents.http.post(
        UTRECHT + "/v1/messages", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("nlgov-adr-payload-sig ")
    bearer = await agents.http.get(UTRECHT + "/v1/tasks")
    assert bearer.headers["WWW-Authenticate"].startswith("Bearer ")


async def test_a_signature_in_the_obsolete_header_is_refused_naming_the_new_one(
    agents: Agents,
) -> None:
    response = await agents.http.post(
        UTRECHT + "/v1/messages",
        content=b"{}",
        headers={
            "Payload-Signature": "a..b",
            "Digest": "SHA-256=x",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 401
    problem = response.json()
    assert problem["type"] == "urn:meeverhuizen:problem:obsolete-signature-header"
    assert "nlgov-adr-payload-sig" in problem["title"]


async def test_problems_on_pages_outside_the_api_name_no_instance(agents: Agents) -> None:
    # The personal link carries a secret in its path: a problem there must not repeat it.
    response = await agents.http.get(UTRECHT + "/v1/does-not-exist")
    assert response.json()["instance"] == "/v1/does-not-exist"
    link = await agents.http.post(UTRECHT + "/l/secret-token-value", content=b"x")
    assert "secret-token-value" not in link.text

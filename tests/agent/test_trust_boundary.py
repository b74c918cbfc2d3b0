"""A participant acts only as what the registry says it is: over real HTTP between processes.

The registry gives each OIN its roles and, for a gemeente's agent, the gemeentecodes it serves.
Messages below are signed with the sender's own valid key (read from the local network's key
files), so only the role, territory and dossier checks can refuse them. A refused message leaves
nothing behind: no inbound row, no dossier, no outgoing message.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from agent.local.network import (
    AMSTERDAM,
    HULPMIDDELEN,
    UTRECHT,
    ZORGTECHNIEK,
    LocalNetwork,
    local_network,
)
from agent.local.processes import free_port
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.messages import MESSAGE_TYPES, parse_message
from protocol.signing import sign_message
from registry.client import RegistryClient
from registry.operator import OperatorClient

# One local network for the module: every test sends into the same running agents.
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
# A gemeente enrolled in the registry without a running agent: it signs with its own key.
DEN_HAAG_OIN = "00000001002244007000"
DEN_HAAG_CODE = "0518"
# A regional service: Rotterdam's agent also serves Schiedam.
ROTTERDAM_OIN = "00000001002244019000"
ROTTERDAM_CODE = "0599"
SCHIEDAM_CODE = "0606"
# A regional service that receives: Amsterdam's agent also serves Zaanstad.
ZAANSTAD_CODE = "0479"
ZAANDAM_ADDRESS = {
    "street": "Westzijde",
    "houseNumber": 10,
    "postalCode": "1506EB",
    "city": "Zaandam",
    "gemeentecode": ZAANSTAD_CODE,
}
AMSTERDAM_ADDRESS = {
    "street": "Damrak",
    "houseNumber": 1,
    "postalCode": "1012LG",
    "city": "Amsterdam",
    "gemeentecode": "0363",
}
TABLES = ("inbound_messages", "dossiers", "outbox")


@dataclass
class Parties:
    network: LocalNetwork
    http: httpx.AsyncClient
    keys: dict[str, dict[str, Any]]

    def inbox(self, key: str) -> str:
        return self.network.agents[key].base_url + "/v1/messages"

    def counts(self, key: str) -> dict[str, int]:
        """Rows per table in a gemeente agent's SQLite file, read directly."""
        path = self.network.agents[key].database_path
        with sqlite3.connect(path) as connection:
            return {
                table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
                for table in TABLES
            }

    async def send(self, url: str, document: dict[str, Any], signer: str) -> httpx.Response:
        message = parse_message(document)
        signed = sign_message(message, self.keys[signer], signing_time=datetime.now(UTC))
        return await self.http.post(url, content=signed.body, headers=signed.headers())


def _key(folder: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / f"{name}-key.json").read_text())
    return loaded


def _operator(network: LocalNetwork, http: httpx.AsyncClient) -> OperatorClient:
    token = network.registry.environment["MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN"]
    return OperatorClient(network.registry.base_url, token, http=http)


async def _enrol_gemeente(
    network: LocalNetwork, http: httpx.AsyncClient, *, oin: str, gemeentecode: str
) -> dict[str, Any]:
    """Enrol a gemeente that runs no agent here; the test signs its messages."""
    anchor = json.loads((network.folder / "registry-anchor.json").read_text())
    code = await _operator(network, http).issue_enrolment_code(gemeentecode=gemeentecode)
    private = generate_private_jwk("EdDSA")
    await RegistryClient(network.registry.base_url, anchor, http=http).enrol(
        code=code,
        oin=oin,
        endpoint=f"http://127.0.0.1:{free_port()}",
        protocol_versions=["1.0"],
        message_types=list(MESSAGE_TYPES),
        public_jwks=[public_jwk(private)],
    )
    return private


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def parties(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Parties]:
    folder = tmp_path_factory.mktemp("trust")
    async with (
        local_network(folder, suppliers=(HULPMIDDELEN, ZORGTECHNIEK)) as network,
        httpx.AsyncClient(timeout=10.0) as http,
    ):
        keys = {
            "utrecht": _key(folder, "utrecht"),
            "amsterdam": _key(folder, "amsterdam"),
            "hulpmiddelen": _key(folder, "hulpmiddelen"),
            "den-haag": await _enrol_gemeente(
                network, http, oin=DEN_HAAG_OIN, gemeentecode=DEN_HAAG_CODE
            ),
        }
        yield Parties(network, http, keys)


async def test_a_message_continuing_a_dossier_the_receiver_never_got_is_unknown(
    parties: Parties,
) -> None:
    before = parties.counts("amsterdam")
    cancel = _envelope(
        "dossier-cancelled",
        (UTRECHT.oin, "departing-gemeente"),
        (AMSTERDAM.oin, "receiving-gemeente"),
        {"reason": "move-cancelled"},
    )
    answer = await parties.send(parties.inbox("amsterdam"), cancel, "utrecht")
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "urn:meeverhuizen:problem:unknown-dossier"
    assert parties.counts("amsterdam") == before


def _envelope(
    message_type: str, sender: tuple[str, str], receiver: tuple[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "dossierId": str(uuid.uuid4()),
        "messageType": message_type,
        "protocolVersion": "1.0",
        "sender": {"oin": sender[0], "role": sender[1]},
        "receiver": {"oin": receiver[0], "role": receiver[1]},
        "createdAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "body": body,
    }


def _offer(
    sender: tuple[str, str],
    *,
    departing_gemeentecode: str,
    new_address: dict[str, Any] = AMSTERDAM_ADDRESS,
) -> dict[str, Any]:
    body = json.loads((EXAMPLES / "dossier-offer.json").read_text())["body"]
    body["client"]["newAddress"] = new_address
    body["departingGemeentecode"] = departing_gemeentecode
    return _envelope("dossier-offer", sender, (AMSTERDAM.oin, "receiving-gemeente"), body)


def _request(sender: tuple[str, str], *, new_gemeentecode: str) -> dict[str, Any]:
    body = {
        "bsn": "999993653",
        "moveDate": "2025-04-01",
        "previousGemeentecode": UTRECHT.gemeentecode,
        "newAddress": AMSTERDAM_ADDRESS | {"gemeentecode": new_gemeentecode},
    }
    return _envelope("dossier-request", sender, (UTRECHT.oin, "departing-gemeente"), body)


def _assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert problem["type"] == "urn:meeverhuizen:problem:sender-not-permitted"


async def test_a_supplier_posing_as_the_departing_gemeente_is_refused(parties: Parties) -> None:
    before = parties.counts("amsterdam")
    offer = _offer((HULPMIDDELEN.oin, "departing-gemeente"), departing_gemeentecode="0344")
    answer = await parties.send(parties.inbox("amsterdam"), offer, "hulpmiddelen")
    _assert_refused(answer)
    assert "departing-gemeente" in answer.json()["detail"]
    assert parties.counts("amsterdam") == before


async def test_a_supplier_asking_a_departing_gemeente_for_a_dossier_is_refused(
    parties: Parties,
) -> None:
    before = parties.counts("utrecht")
    request = _request((HULPMIDDELEN.oin, "receiving-gemeente"), new_gemeentecode="0363")
    answer = await parties.send(parties.inbox("utrecht"), request, "hulpmiddelen")
    _assert_refused(answer)
    assert parties.counts("utrecht") == before


async def test_a_gemeente_claiming_another_gemeentes_code_is_refused(parties: Parties) -> None:
    before = parties.counts("amsterdam")
    offer = _offer((UTRECHT.oin, "departing-gemeente"), departing_gemeentecode=DEN_HAAG_CODE)
    answer = await parties.send(parties.inbox("amsterdam"), offer, "utrecht")
    _assert_refused(answer)
    assert DEN_HAAG_CODE in answer.json()["detail"]
    assert parties.counts("amsterdam") == before


async def test_a_dossier_request_for_a_gemeente_the_sender_does_not_serve_is_refused(
    parties: Parties,
) -> None:
    before = parties.counts("utrecht")
    # Amsterdam asks for a dossier of someone who moved to Den Haag, not to Amsterdam.
    request = _request((AMSTERDAM.oin, "receiving-gemeente"), new_gemeentecode=DEN_HAAG_CODE)
    answer = await parties.send(parties.inbox("utrecht"), request, "amsterdam")
    _assert_refused(answer)
    assert parties.counts("utrecht") == before


async def test_a_gemeente_speaking_about_another_pairs_dossier_is_refused(
    parties: Parties,
) -> None:
    offer = _offer((UTRECHT.oin, "departing-gemeente"), departing_gemeentecode="0344")
    accepted = await parties.send(parties.inbox("amsterdam"), offer, "utrecht")
    assert accepted.status_code == 200, accepted.text
    dossier_url = f"{parties.network.agents['amsterdam'].base_url}/v1/dossiers/{offer['dossierId']}"
    case_system = parties.network.agents["amsterdam"].auth()
    state = (await parties.http.get(dossier_url, headers=case_system)).json()["state"]
    before = parties.counts("amsterdam")

    cancel = _envelope(
        "dossier-cancelled",
        (DEN_HAAG_OIN, "departing-gemeente"),
        (AMSTERDAM.oin, "receiving-gemeente"),
        {"reason": "move-cancelled"},
    )
    cancel["dossierId"] = offer["dossierId"]
    answer = await parties.send(parties.inbox("amsterdam"), cancel, "den-haag")
    _assert_refused(answer)
    # The same dossier id offered again by Den Haag: not Den Haag's dossier either.
    again = _offer((DEN_HAAG_OIN, "departing-gemeente"), departing_gemeentecode=DEN_HAAG_CODE)
    again["dossierId"] = offer["dossierId"]
    _assert_refused(await parties.send(parties.inbox("amsterdam"), again, "den-haag"))

    assert parties.counts("amsterdam") == before
    after = (await parties.http.get(dossier_url, headers=case_system)).json()["state"]
    assert after == state != "cancelled"


async def test_a_regional_agent_sends_for_every_gemeente_it_serves(parties: Parties) -> None:
    network, http = parties.network, parties.http
    parties.keys["rotterdam"] = await _enrol_gemeente(
        network, http, oin=ROTTERDAM_OIN, gemeentecode=ROTTERDAM_CODE
    )
    sender = (ROTTERDAM_OIN, "departing-gemeente")
    await _operator(network, http).assign_gemeenten(
        oin=ROTTERDAM_OIN, gemeentecodes=[ROTTERDAM_CODE, SCHIEDAM_CODE]
    )
    for_schiedam = _offer(sender, departing_gemeentecode=SCHIEDAM_CODE)
    answer = await parties.send(parties.inbox("amsterdam"), for_schiedam, "rotterdam")
    assert answer.status_code == 200, answer.text
    for_den_haag = _offer(sender, departing_gemeentecode=DEN_HAAG_CODE)
    _assert_refused(await parties.send(parties.inbox("amsterdam"), for_den_haag, "rotterdam"))


async def _received_orders(parties: Parties, supplier: str, dossier_id: str) -> list[str]:
    """The gemeente OINs of the orders a supplier's agent received for a dossier (waits a while)."""
    agent = parties.network.suppliers[supplier]
    for _ in range(100):
        answer = await parties.http.get(agent.base_url + "/v1/orders", headers=agent.auth())
        assert answer.status_code == 200, answer.text
        found = [o["gemeenteOin"] for o in answer.json() if o["dossierId"] == dossier_id]
        if found:
            return found
        await asyncio.sleep(0.2)
    return []


async def test_a_regional_agent_receives_for_every_gemeente_it_serves(parties: Parties) -> None:
    network, http = parties.network, parties.http
    operator = _operator(network, http)
    await operator.assign_gemeenten(
        oin=AMSTERDAM.oin, gemeentecodes=[AMSTERDAM.gemeentecode, ZAANSTAD_CODE]
    )
    # Zaanstad contracts Hulpmiddelen for scootmobielen; Amsterdam contracts Zorgtechniek.
    await operator.add_contract(
        gemeentecode=ZAANSTAD_CODE,
        supplier_oin=HULPMIDDELEN.oin,
        iso_prefixes=["12 23"],
        valid_from=date(2020, 1, 1),
    )
    sender = (UTRECHT.oin, "departing-gemeente")
    to_amsterdam = _offer(sender, departing_gemeentecode=UTRECHT.gemeentecode)
    to_zaanstad = _offer(
        sender, departing_gemeentecode=UTRECHT.gemeentecode, new_address=ZAANDAM_ADDRESS
    )
    for offer in (to_amsterdam, to_zaanstad):
        answer = await parties.send(parties.inbox("amsterdam"), offer, "utrecht")
        assert answer.status_code == 200, answer.text

    amsterdam = network.agents["amsterdam"]
    placed = await http.get(amsterdam.base_url + "/v1/placed-orders", headers=amsterdam.auth())
    assert placed.status_code == 200, placed.text
    suppliers = {
        order["dossierId"]: order["supplierOin"]
        for order in placed.json()
        if order["isoCode"] == "12 23 03"
    }
    assert suppliers[to_amsterdam["dossierId"]] == ZORGTECHNIEK.oin
    assert suppliers[to_zaanstad["dossierId"]] == HULPMIDDELEN.oin
    # Each order reaches the supplier's own agent, from the regional agent.
    assert await _received_orders(parties, "zorgtechniek", to_amsterdam["dossierId"]) == [
        AMSTERDAM.oin
    ]
    assert await _received_orders(parties, "hulpmiddelen", to_zaanstad["dossierId"]) == [
        AMSTERDAM.oin
    ]


async def test_a_regional_agent_refuses_an_offer_for_a_gemeente_it_does_not_serve(
    parties: Parties,
) -> None:
    before = parties.counts("amsterdam")
    offer = _offer(
        (UTRECHT.oin, "departing-gemeente"),
        departing_gemeentecode=UTRECHT.gemeentecode,
        new_address=AMSTERDAM_ADDRESS | {"gemeentecode": DEN_HAAG_CODE, "city": "Den Haag"},
    )
    answer = await parties.send(parties.inbox("amsterdam"), offer, "utrecht")
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"] == "urn:meeverhuizen:problem:message-not-handled"
    assert DEN_HAAG_CODE in problem["detail"]
    assert parties.counts("amsterdam") == before

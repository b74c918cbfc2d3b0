"""State machine, consent gate, receiving policy, CloudEvents and the dossier API."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from agent.core.policy import continued_provision_end, decide_devices
from agent.core.states import DEPARTING_TRANSITIONS, RECEIVING_TRANSITIONS, check_transition
from agent.delivery.cloudevents import STATE_CHANGED, write_event_schemas
from agent.errors import ConsentMissing, IllegalTransition, NothingToMove
from agent.service import DossierStart
from agent.settings import DeviceExceptionPolicy
from agent.storage.tables import DossierRow, OutboxRow
from protocol.messages import Device, Indicatie, parse_message
from tests.agent.conftest import (
    AUTH,
    CLIENT_BSN,
    DATA,
    FIRST_DEVICE_CONSENT,
    MOVE_DATE,
    NEW_ADDRESS,
    UTRECHT_OIN,
    Agents,
)
from tests.conftest import REPOSITORY

# --- state machine ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "current", "target"),
    [
        ("departing", "started", "offer-sent"),
        ("departing", "waiting-for-consent", "offer-sent"),
        ("departing", "consent-refused", "offer-sent"),
        ("departing", "completed", "cancelled"),
        ("departing", "cancelled", "started"),
        ("receiving", "offer-received", "completed"),
        ("receiving", "completed", "decided"),
        ("receiving", "failed", "decided"),
    ],
)
def test_illegal_transitions_are_refused(side: str, current: str, target: str) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(side, current, target)  # type: ignore[arg-type]


def test_every_open_state_can_be_cancelled_or_fail() -> None:
    for table in (DEPARTING_TRANSITIONS, RECEIVING_TRANSITIONS):
        for targets in table.values():
            assert {"cancelled", "failed"} <= targets
    assert "completed" not in DEPARTING_TRANSITIONS


async def test_consent_twice_is_an_illegal_transition(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    answer = await agents.http.post(
        f"http://utrecht.test/v1/dossiers/{dossier_id}/consent",
        json=FIRST_DEVICE_CONSENT | {"givenAt": "2025-03-03T08:00:00Z"},
        headers=AUTH,
    )
    assert answer.status_code == 409
    assert answer.json()["type"] == "urn:meeverhuizen:problem:illegal-transition"


# --- consent gate -------------------------------------------------------------------------------


async def _messages(agents: Agents) -> list[OutboxRow]:
    async with agents.departing.database.reading() as session:
        query = select(OutboxRow).where(OutboxRow.kind == "message")
        return list((await session.scalars(query)).all())


async def test_nothing_is_sent_without_a_consent_record(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    async with agents.departing.database.transaction() as session:
        dossier = await session.get(DossierRow, dossier_id)
        assert dossier is not None
        # As if a bug moved the dossier on without recording consent.
        dossier.state, dossier.partner_oin = "consent-given", "00000001002564440000"
    with pytest.raises(ConsentMissing):
        await agents.departing.send_offer(dossier_id)
    assert await _messages(agents) == []
    await agents.settle()
    assert not [r for r in agents.network.requests if r.url.host == "amsterdam.test"]


async def test_offer_holds_only_what_was_consented(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(
        dossier_id, kinds=("identity", "address", "devices"), devices=("dev-1",)
    )
    (row,) = await _messages(agents)
    offer = parse_message(json.loads(row.body)).body
    assert [d.device_id for d in offer.devices] == ["dev-1"]  # type: ignore[union-attr]
    assert offer.indicatie is None  # type: ignore[union-attr]
    assert offer.functional_information is None  # type: ignore[union-attr]
    assert b"Loopt niet" not in row.body


async def test_consent_without_required_kinds_sends_nothing(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    with pytest.raises(ConsentMissing):
        await agents.give_consent(dossier_id, kinds=("devices",))
    assert await _messages(agents) == []
    assert (await agents.departing.dossier(dossier_id)).state == "waiting-for-consent"


async def test_refused_consent_sends_nothing(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    answer = await agents.http.post(
        f"http://utrecht.test/v1/dossiers/{dossier_id}/consent",
        json={
            "outcome": "refused",
            "channel": "paper",
            "givenBy": "client",
            "givenAt": "2025-03-03T08:00:00Z",
        },
        headers=AUTH,
    )
    assert answer.json()["state"] == "consent-refused"
    assert await _messages(agents) == []


async def test_client_without_movable_device_starts_nothing(agents: Agents) -> None:
    document = json.loads((DATA / "clients.json").read_text())
    document[0]["devices"] = [d for d in document[0]["devices"] if not d["movable"]]
    await agents.departing.import_provisions(json.dumps(document).encode(), "json")
    with pytest.raises(NothingToMove):
        await agents.departing.start_dossier(
            DossierStart(bsn=CLIENT_BSN, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
        )
    assert await agents.departing.list_dossiers() == []


# --- receiving policy ---------------------------------------------------------------------------


def _device(device_id: str, iso_code: str, **changes: object) -> Device:
    values = {
        "deviceId": device_id,
        "isoCode": iso_code,
        "description": "Hulpmiddel",
        "customMade": False,
        "movable": True,
        "ownership": "huur",
    }
    return Device.model_validate(values | changes)


def test_policy_default_takeover_exceptions_and_fixed_devices() -> None:
    exceptions = {
        "12 23": DeviceExceptionPolicy(
            reason_code="not-in-assortment",
            reason_text="Wij leveren dit type niet meer.",
            alternative="U krijgt een vergelijkbare scootmobiel.",
        ),
        "12 23 06": DeviceExceptionPolicy(
            reason_code="unsafe-or-worn", reason_text="Te oud.", alternative="Een nieuwe."
        ),
    }
    devices = [
        _device("a", "12 22 03"),
        _device("b", "12 23 03"),
        _device("c", "12 23 06"),
        _device("d", "18 30 08", movable=False),
        _device("e", "12 06 06", ownership="eigendom"),
    ]
    decisions = {
        d.device_id: (d.outcome, d.reason_code) for d in decide_devices(devices, exceptions)
    }
    assert decisions == {
        "a": ("take-over", None),
        "b": ("exception", "not-in-assortment"),
        "c": ("exception", "unsafe-or-worn"),
        "d": ("exception", "not-movable"),
        "e": ("exception", "client-owned"),
    }
    for item in decide_devices(devices, exceptions):
        if item.outcome == "exception":
            assert item.reason_text
            assert item.alternative_offered


def test_continued_provision_keeps_the_indicatie_end() -> None:
    indicatie = Indicatie.model_validate(
        {
            "legalBasis": "Wmo",
            "beschikkingReference": "X",
            "decisionDate": "2023-01-01",
            "startDate": "2023-01-02",
            "endDate": "2028-05-14",
            "deviceIds": ["a"],
        }
    )
    assert continued_provision_end(indicatie) == date(2028, 5, 14)
    assert continued_provision_end(None) is None


async def test_received_provision_starts_on_move_date_with_remaining_validity(
    agents: Agents,
) -> None:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    await agents.settle()
    decisions = (await agents.receiving.dossier(dossier_id)).decisions
    taken = [d for d in decisions if d.outcome == "take-over"]
    assert taken
    assert all(d.start_date == MOVE_DATE for d in taken)
    assert all(d.end_date == date(2028, 5, 14) for d in taken)
    fixed = next(d for d in decisions if d.device_id == "dev-3")
    assert (fixed.outcome, fixed.reason_code, fixed.start_date) == (
        "exception",
        "not-movable",
        None,
    )


# --- CloudEvents --------------------------------------------------------------------------------


async def test_cloudevents_follow_the_nl_gov_profile_without_personal_data(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    await agents.settle()
    events = agents.backoffice.events
    assert len(events) == 9  # six departing and three receiving transitions
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["type"] == "nl.meeverhuizen.dossier.state-changed"
        assert event["subject"] == dossier_id
        assert event["source"] in {
            f"urn:nld:oin:{UTRECHT_OIN}:systeem:meeverhuizen",
            "urn:nld:oin:00000001002564440000:systeem:meeverhuizen",
        }
        text = json.dumps(event)
        for personal in (CLIENT_BSN, "Jansen", "Damrak", "1012LG", "VC2-88412"):
            assert personal not in text
    assert len({event["id"] for event in events}) == len(events)


async def test_cloudevents_name_their_published_data_schema(agents: Agents) -> None:
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    await agents.settle()
    published = REPOSITORY / "schemas" / "events" / f"{STATE_CHANGED}.json"
    schema = json.loads(published.read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    assert agents.backoffice.events
    for event in agents.backoffice.events:
        assert event["dataschema"] == schema["$id"]
        assert list(validator.iter_errors(event["data"])) == []


def test_published_event_schemas_equal_generated_ones(tmp_path: Path) -> None:
    written = write_event_schemas(tmp_path)
    assert written
    for path in written:
        committed = REPOSITORY / "schemas" / "events" / path.name
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


# --- API ----------------------------------------------------------------------------------------


async def test_api_requires_a_token_and_answers_problems(agents: Agents) -> None:
    base = "http://utrecht.test/v1"
    assert (await agents.http.get(f"{base}/health")).json() == {"status": "ok"}
    anonymous = await agents.http.get(f"{base}/dossiers")
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"] == "application/problem+json"
    wrong = await agents.http.get(f"{base}/dossiers", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    unknown = await agents.http.get(
        f"{base}/dossiers/5b0c7d1e-0000-4000-8000-000000000000", headers=AUTH
    )
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "urn:meeverhuizen:problem:unknown-dossier"
    assert (await agents.http.get(f"{base}/dossiers/not-a-uuid", headers=AUTH)).status_code == 400
    bad_bsn = await agents.http.post(
        f"{base}/dossiers",
        json={"bsn": "123456789", "moveDate": "2025-04-01", "newAddress": {}},
        headers=AUTH,
    )
    assert bad_bsn.status_code == 400
    assert "123456789" not in bad_bsn.text
    assert (await agents.http.get(f"{base}/openapi.json")).status_code == 200

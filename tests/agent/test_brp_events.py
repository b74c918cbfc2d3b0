"""BRP move events pushed to the agent: refusals leave no trace; each kind of event is handled."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from typing import Any, NoReturn

import httpx
import pytest
from sqlalchemy import func, select

from agent.core.views import DossierStart
from agent.errors import NothingToMove
from agent.local.brp_simulator import (
    BATCH_MEDIA_TYPE,
    died,
    emigrated,
    move_corrected,
    move_withdrawn,
    moved,
    moved_within,
)
from agent.register.store import load_client
from agent.settings import hash_token
from agent.storage.tables import (
    BrpEventCountRow,
    BrpEventRow,
    ClientRow,
    DossierRow,
    OutboxRow,
    TaskRow,
)
from protocol.messages import Address
from registry.errors import RegistryUnavailable
from tests.agent.conftest import CLIENT_BSN, DATA, UTRECHT_OIN, Agents

BRP_TOKEN = "brp-push-token-for-tests-0123456789"
SINGLE = "application/cloudevents+json"
OTHER_BSN = "999990342"
AMSTERDAM = {"street": "Damrak", "houseNumber": 1, "postalCode": "1012LG", "city": "Amsterdam"}
MOVE = date(2025, 4, 1)


@pytest.fixture
async def brp(agents: Agents) -> Agents:
    """Utrecht takes pushed BRP events; its register holds the client with devices."""
    agents.departing.settings.brp_token_sha256 = hash_token(BRP_TOKEN)
    await agents.departing.import_provisions((DATA / "clients.json").read_bytes(), "json")
    return agents


async def _push(
    agents: Agents,
    body: Any,
    *,
    content_type: str = SINGLE,
    token: str | None = BRP_TOKEN,
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await agents.http.post(
        "http://utrecht.test/v1/brp-events", content=content, headers=headers
    )


async def _count(agents: Agents, table: Any) -> int:
    async with agents.departing.database.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def _nothing_stored(agents: Agents) -> None:
    for table in (BrpEventRow, BrpEventCountRow, DossierRow, OutboxRow, TaskRow):
        assert await _count(agents, table) == 0, table


def _move(bsn: str = CLIENT_BSN, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "from_code": "0344",
        "to_code": "0363",
        "address": AMSTERDAM,
        "move_date": MOVE,
    }
    return moved(bsn, **(values | overrides))


async def test_a_pushed_move_starts_one_dossier_with_the_future_move_date(brp: Agents) -> None:
    event = _move(move_date=date(2025, 9, 1))
    assert (await _push(brp, event)).status_code == 202
    assert (await _push(brp, event)).status_code == 202  # the BRP retried: same source and id
    dossiers = await brp.departing.list_dossiers()
    assert [(d.state, d.move_date, d.partner_gemeentecode) for d in dossiers] == [
        ("waiting-for-consent", date(2025, 9, 1), "0363")
    ]
    view = await brp.departing.dossier(dossiers[0].dossier_id)
    assert view.timeline[0].cause.startswith(f"BRP event {event['id']}")
    assert await _count(brp, BrpEventRow) == 1


async def test_a_batch_is_stored_and_handled(brp: Agents) -> None:
    events = [_move(), moved(OTHER_BSN, from_code="0344", to_code="0363", address=AMSTERDAM,
                             move_date=MOVE)]  # fmt: skip
    response = await _push(brp, events, content_type=BATCH_MEDIA_TYPE)
    assert response.status_code == 202
    assert len(await brp.departing.list_dossiers()) == 1
    async with brp.departing.database.reading() as session:
        rows = {row.event_id: row for row in await session.scalars(select(BrpEventRow))}
        counts = {(r.outcome, r.count) for r in await session.scalars(select(BrpEventCountRow))}
    # The other person has no provisions: the event is kept without data, and counted.
    assert rows[events[1]["id"]].data is None
    assert rows[events[1]["id"]].outcome == "irrelevant"
    assert counts == {("dossier-started", 1), ("irrelevant", 1)}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("id"), "id"),
        (lambda e: e.update(specversion="1.0.2"), "specversion"),
        (lambda e: e.update(source=""), "source"),
        (lambda e: e.update(time="yesterday"), "time"),
        (lambda e: e["data"].update(burgerservicenummer="123456789"), "data.burgerservicenummer"),
        (lambda e: e["data"].pop("burgerservicenummer"), "data.burgerservicenummer"),
        (lambda e: e.update(datacontenttype="text/xml"), "datacontenttype"),
    ],
)
async def test_a_malformed_event_is_refused_naming_the_field(
    brp: Agents, mutate: Any, field: str
) -> None:
    good, bad = _move(), _move()
    mutate(bad)
    response = await _push(brp, [good, bad], content_type=BATCH_MEDIA_TYPE)
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "urn:meeverhuizen:problem:invalid-event"
    assert problem["detail"].startswith(f"[1].{field}")
    assert "123456789" not in problem["detail"]
    await _nothing_stored(brp)


async def test_refusals_leave_no_trace(brp: Agents) -> None:
    event = _move()
    assert (await _push(brp, event, token=None)).status_code == 401
    assert (await _push(brp, event, token="wrong-token-0123456789")).status_code == 401
    assert (await _push(brp, event, content_type="application/json")).status_code == 415
    assert (await _push(brp, b"{not json")).status_code == 400
    assert (await _push(brp, [event], content_type=SINGLE)).status_code == 400
    too_many = [_move() for _ in range(brp.departing.settings.brp_max_batch_events + 1)]
    answer = await _push(brp, too_many, content_type=BATCH_MEDIA_TYPE)
    assert answer.status_code == 413
    huge = b"[" + b" " * brp.departing.settings.max_body_bytes + b"]"
    assert (await _push(brp, huge, content_type=BATCH_MEDIA_TYPE)).status_code == 413
    await _nothing_stored(brp)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "nests 200000 deep"),
        (b'[{"specversion": ' + b"1" * 5000 + b"}]", "number longer than"),
    ],
    ids=["200k-deep", "5000-digit-number"],
)
async def test_a_body_beyond_the_json_limits_is_refused_before_parsing(
    brp: Agents, body: bytes, reason: str
) -> None:
    answer = await _push(brp, body, content_type=BATCH_MEDIA_TYPE)
    assert answer.status_code == 400
    assert answer.json()["type"] == "urn:meeverhuizen:problem:invalid-event"
    assert reason in answer.json()["detail"]
    await _nothing_stored(brp)


async def test_no_token_configured_means_no_push(brp: Agents) -> None:
    brp.departing.settings.brp_token_sha256 = None
    assert (await _push(brp, _move())).status_code == 401
    await _nothing_stored(brp)


async def test_a_move_within_the_gemeente_updates_the_address_only(brp: Agents) -> None:
    new = {"street": "Neude", "houseNumber": 5, "postalCode": "3512AE", "city": "Utrecht"}
    event = moved_within(CLIENT_BSN, code="0344", address=new, move_date=MOVE)
    assert (await _push(brp, event)).status_code == 202
    async with brp.departing.database.reading() as session:
        client = await load_client(session, CLIENT_BSN)
    assert client is not None
    assert (client.address.street, client.address.postal_code) == ("Neude", "3512AE")
    assert await brp.departing.list_dossiers() == []


async def test_emigration_flags_the_provision_for_ending(brp: Agents) -> None:
    assert (await _push(brp, emigrated(CLIENT_BSN, on=MOVE))).status_code == 202
    tasks = await brp.departing.tasks.list("open")
    assert [task.kind for task in tasks] == ["emigration"]
    assert CLIENT_BSN not in tasks[0].description
    assert await brp.departing.list_dossiers() == []


async def test_a_move_without_an_address_becomes_a_task(brp: Agents) -> None:
    event = _move(address=None)
    assert (await _push(brp, event)).status_code == 202
    tasks = await brp.departing.tasks.list("open")
    assert [task.kind for task in tasks] == ["manual-check"]
    assert event["id"] in tasks[0].description
    assert CLIENT_BSN not in tasks[0].description


async def test_a_briefadres_is_taken_as_the_new_address(brp: Agents) -> None:
    assert (await _push(brp, _move(briefadres=True))).status_code == 202
    assert len(await brp.departing.list_dossiers()) == 1


async def _offered(brp: Agents) -> str:
    assert (await _push(brp, _move())).status_code == 202
    dossier_id = (await brp.departing.list_dossiers())[0].dossier_id
    await brp.give_consent(dossier_id)
    return dossier_id


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (move_corrected(CLIENT_BSN, original_date=MOVE), "move-corrected"),
        (move_withdrawn(CLIENT_BSN, move_date=MOVE), "move-cancelled"),
        (died(CLIENT_BSN, on=date(2025, 3, 10)), "client-deceased"),
    ],
)
async def test_a_correction_withdrawal_or_death_cancels_and_tells_the_partner(
    brp: Agents, event: dict[str, Any], reason: str
) -> None:
    dossier_id = await _offered(brp)
    await brp.departing.deliver_until_quiet()  # the offer reached Amsterdam
    assert (await _push(brp, event)).status_code == 202
    assert (await brp.departing.dossier(dossier_id)).state == "cancelled"
    async with brp.departing.database.reading() as session:
        cancel = await session.scalar(
            select(OutboxRow).where(OutboxRow.message_type == "dossier-cancelled")
        )
    assert cancel is not None
    assert json.loads(cancel.body)["body"]["reason"] == reason
    await brp.settle()
    receiving = await brp.receiving.list_dossiers()
    assert [d.state for d in receiving] == ["cancelled"]


async def test_a_correction_of_another_move_date_leaves_the_dossier(brp: Agents) -> None:
    assert (await _push(brp, _move())).status_code == 202
    other = move_corrected(CLIENT_BSN, original_date=date(2020, 1, 1))
    assert (await _push(brp, other)).status_code == 202
    assert [d.state for d in await brp.departing.list_dossiers()] == ["waiting-for-consent"]


async def test_a_cancellation_before_anything_was_sent_tells_nobody(brp: Agents) -> None:
    assert (await _push(brp, _move())).status_code == 202
    assert (await _push(brp, move_withdrawn(CLIENT_BSN, move_date=MOVE))).status_code == 202
    assert [d.state for d in await brp.departing.list_dossiers()] == ["cancelled"]
    async with brp.departing.database.reading() as session:
        kinds = list(await session.scalars(select(OutboxRow.kind)))
    assert "message" not in kinds


async def test_the_receiving_side_asks_for_a_missed_dossier(brp: Agents) -> None:
    receiving = brp.receiving
    receiving.settings.brp_token_sha256 = hash_token(BRP_TOKEN)
    receiving.settings.brp_dossier_requests = True
    event = _move()  # Amsterdam's BRP reports the inschrijving from Utrecht
    response = await brp.http.post(
        "http://amsterdam.test/v1/brp-events",
        content=json.dumps(event).encode(),
        headers={"Content-Type": SINGLE, "Authorization": f"Bearer {BRP_TOKEN}"},
    )
    assert response.status_code == 202
    await brp.settle()
    dossiers = await brp.departing.list_dossiers()
    assert [(d.state, d.partner_gemeentecode, d.move_date) for d in dossiers] == [
        ("waiting-for-consent", "0363", MOVE)
    ]
    # The normal consent path follows; the offer goes to the gemeente that asked.
    await brp.give_consent(dossiers[0].dossier_id)
    await brp.settle()
    assert [d.state for d in await brp.receiving.list_dossiers()] == ["completed"]


async def test_a_request_for_a_client_with_an_open_dossier_starts_nothing(brp: Agents) -> None:
    assert (await _push(brp, _move())).status_code == 202
    receiving = brp.receiving
    receiving.settings.brp_token_sha256 = hash_token(BRP_TOKEN)
    receiving.settings.brp_dossier_requests = True
    await brp.http.post(
        "http://amsterdam.test/v1/brp-events",
        content=json.dumps(_move()).encode(),
        headers={"Content-Type": SINGLE, "Authorization": f"Bearer {BRP_TOKEN}"},
    )
    await brp.settle()
    assert len(await brp.departing.list_dossiers()) == 1


async def test_clients_are_untouched_by_events_about_others(brp: Agents) -> None:
    event = moved_within(OTHER_BSN, code="0344", address=AMSTERDAM | {"city": "X"}, move_date=MOVE)
    assert (await _push(brp, event)).status_code == 202
    async with brp.departing.database.reading() as session:
        assert await session.scalar(select(func.count()).select_from(ClientRow)) == 1


def _examples() -> list[dict[str, Any]]:
    document = json.loads((DATA / "cloudevents_examples.json").read_text(encoding="utf-8"))
    examples: list[dict[str, Any]] = document["examples"]
    return examples


@pytest.mark.parametrize("example", _examples(), ids=lambda example: example["name"])
async def test_published_examples(brp: Agents, example: dict[str, Any]) -> None:
    """Examples from the NL GOV profile and the BRP work (see the notes in the data file)."""
    response = await _push(brp, example["event"])
    if example["valid_cloudevent"]:
        assert response.status_code == 202
        async with brp.departing.database.reading() as session:
            row = await session.scalar(select(BrpEventRow))
        assert row is not None
        # The profile's example puts a BSN in subject: not kept for an event we do not use.
        assert (row.outcome, row.subject, row.data) == ("irrelevant", None, None)
    else:
        assert response.status_code == 400
        assert response.json()["detail"].startswith("specversion")
        await _nothing_stored(brp)


def _serve_amersfoort_too(agents: Agents) -> None:
    """Utrecht's agent becomes a regional service: the registry lists Amersfoort (0307) too."""
    entries = agents.directory.entries
    entries[UTRECHT_OIN] = replace(entries[UTRECHT_OIN], region=("0307",))


async def test_a_move_within_the_region_is_a_task_not_a_handover(brp: Agents) -> None:
    _serve_amersfoort_too(brp)
    event = _move(to_code="0307", address=AMSTERDAM | {"city": "Amersfoort"})
    assert (await _push(brp, event)).status_code == 202
    assert await brp.departing.list_dossiers() == []
    assert await _count(brp, OutboxRow) == 0
    async with brp.departing.database.reading() as session:
        tasks = list(await session.scalars(select(TaskRow)))
        outcome = await session.scalar(select(BrpEventRow.outcome))
    assert outcome == "task-opened"
    assert [task.kind for task in tasks] == ["move-within-region"]
    text = tasks[0].description
    assert "van Utrecht naar Amersfoort" in text
    assert event["id"] in text
    assert CLIENT_BSN not in text


async def test_a_regional_agent_starts_the_dossier_of_the_gemeente_the_client_leaves(
    brp: Agents,
) -> None:
    _serve_amersfoort_too(brp)
    assert (await _push(brp, _move(from_code="0307"))).status_code == 202
    async with brp.departing.database.reading() as session:
        dossiers = list(await session.scalars(select(DossierRow)))
    assert [(d.gemeentecode, d.partner_gemeentecode) for d in dossiers] == [("0307", "0363")]


async def test_a_regional_agent_asks_for_a_dossier_only_from_outside_its_region(
    brp: Agents,
) -> None:
    receiving = brp.receiving
    receiving.settings.brp_token_sha256 = hash_token(BRP_TOKEN)
    receiving.settings.brp_dossier_requests = True
    entries = brp.directory.entries
    amsterdam_oin = next(oin for oin, e in entries.items() if e.gemeentecode == "0363")
    entries[amsterdam_oin] = replace(entries[amsterdam_oin], region=("0344",))
    response = await brp.http.post(
        "http://amsterdam.test/v1/brp-events",
        content=json.dumps(_move()).encode(),  # from Utrecht, which this agent now serves too
        headers={"Content-Type": SINGLE, "Authorization": f"Bearer {BRP_TOKEN}"},
    )
    assert response.status_code == 202
    await brp.settle()
    assert await brp.departing.list_dossiers() == []
    async with receiving.database.reading() as session:
        assert list(await session.scalars(select(OutboxRow.message_type))) == []


async def test_the_case_system_cannot_start_a_handover_within_the_region(brp: Agents) -> None:
    _serve_amersfoort_too(brp)
    address = Address.model_validate(AMSTERDAM | {"city": "Amersfoort", "gemeentecode": "0307"})
    with pytest.raises(NothingToMove, match="0307"):
        await brp.departing.start_dossier(
            DossierStart(bsn=CLIENT_BSN, move_date=MOVE, new_address=address)
        )
    assert await brp.departing.list_dossiers() == []


async def test_an_offer_is_never_sent_to_the_agent_itself(brp: Agents) -> None:
    # Started before the registry listed Amersfoort for Utrecht's agent (or while it could not
    # be asked): at consent the receiving agent turns out to be this one.
    address = Address.model_validate(AMSTERDAM | {"city": "Amersfoort", "gemeentecode": "0307"})
    view = await brp.departing.start_dossier(
        DossierStart(bsn=CLIENT_BSN, move_date=MOVE, new_address=address)
    )
    _serve_amersfoort_too(brp)
    await brp.give_consent(view.dossier_id)
    assert (await brp.departing.dossier(view.dossier_id)).state == "receiver-not-connected"
    async with brp.departing.database.reading() as session:
        destinations = set(await session.scalars(select(OutboxRow.destination_oin)))
    assert UTRECHT_OIN not in destinations


async def test_a_move_is_handled_while_the_registry_cannot_be_asked(
    brp: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(oin: str, **_: object) -> NoReturn:
        raise RegistryUnavailable("registry unreachable and no kept answer")

    monkeypatch.setattr(brp.directory, "participant", unreachable)
    assert (await _push(brp, _move())).status_code == 202
    dossiers = await brp.departing.list_dossiers()
    assert [(d.state, d.partner_gemeentecode) for d in dossiers] == [
        ("waiting-for-consent", "0363")
    ]

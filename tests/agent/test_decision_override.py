"""A consulent of the receiving gemeente changes the decision for one device.

The world of ``test_supplier_flow`` (the real registry, two gemeenten, three suppliers, over HTTP
through ASGI transports): Amsterdam changes its decision through its dossier API; the supplier
gets the stop or the new order, Utrecht gets the revised ``device-decision`` and tells its own
supplier (``continued-use`` or a new ``departure-notice``), and the client's page says it.
"""

# The World fixtures are imported from test_supplier_flow; test arguments reuse their names.
# ruff: noqa: F811

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from agent.consent.channels import LetterChannel
from agent.consent.links import LINK_PATH
from agent.consent.progress import device_sentence
from agent.register.store import load_client
from agent.service import AgentService
from agent.storage.tables import ClientLetterRow, OutboxRow
from tests.agent.conftest import (
    AMSTERDAM_OIN,
    AUTH,
    CLIENT_BSN,
    UTRECHT_OIN,
    RecordingChannel,
)
from tests.agent.test_after_decision import (
    _EXCEPTION,
    BED_EXCEPTION,
    contract_scootmobiel_and_bed,
)
from tests.agent.test_supplier_flow import (  # noqa: F401 - fixtures used by name
    DEPARTING_SUPPLIER,
    PREFERRED,
    World,
    _document,
    _send_as,
    _transfer_day_start,
    database_urls,
    start_time,
    takeover_settings,
    world,
)

SCOOTMOBIEL = "de scootmobiel (Scootmobiel, vier wielen)"
TO_EXCEPTION = {
    "outcome": "exception",
    "reasonCode": "unsafe-or-worn",
    "reasonText": "Uw scootmobiel is versleten en niet meer veilig.",
    "alternativeOffered": "U krijgt van ons een nieuwe scootmobiel.",
    "doneBy": "consulent 7",
}
TO_TAKE_OVER = {
    "outcome": "take-over",
    "reasonText": "De cliënt kan deze scootmobiel toch blijven gebruiken.",
    "doneBy": "consulent 7",
}


async def _change(
    world: World, dossier_id: str, change: dict[str, Any], *, device: str = "dev-1"
) -> httpx.Response:
    answer = await world.http.post(
        f"http://amsterdam.test/v1/dossiers/{dossier_id}/devices/{device}/decision",
        json=change,
        headers=AUTH,
    )
    await world.settle()
    return answer


def _problem(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == f"urn:meeverhuizen:problem:{code}"


async def _sent(service: AgentService, message_type: str) -> list[dict[str, Any]]:
    async with service.database.reading() as session:
        bodies = await session.scalars(
            select(OutboxRow.body)
            .where(OutboxRow.message_type == message_type)
            .order_by(OutboxRow.sequence)
        )
        return [json.loads(body) for body in bodies if body]


async def _outcomes(service: AgentService, dossier_id: str) -> dict[str, str]:
    return {d.device_id: d.outcome for d in (await service.dossier(dossier_id)).decisions}


async def _client_page(world: World, channel: RecordingChannel) -> str:
    async with httpx.AsyncClient(transport=world.network, base_url="http://utrecht.test") as web:
        opened = await web.get(f"{LINK_PATH}{channel.token()}")
        assert opened.status_code == 303
        page = await web.get("/mijn-verhuizing")
        assert page.status_code == 200
        return " ".join(page.text.split())


async def test_taking_over_becomes_an_exception_at_both_gemeenten_and_suppliers(
    world: World, tmp_path: Path
) -> None:
    channel = RecordingChannel()
    world.utrecht.consent.channels = [channel]
    world.amsterdam.letters.channels = [LetterChannel(tmp_path / "letters")]
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    assert order["status"] == "received"

    answer = await _change(world, dossier_id, TO_EXCEPTION)
    assert answer.status_code == 200, answer.text
    assert answer.json()["decisions"][0]["outcome"] == "exception"

    # Amsterdam withdrew the order: its supplier got dossier-cancelled for this device only.
    [stop] = await _sent(world.amsterdam, "dossier-cancelled")
    assert (stop["receiver"]["oin"], stop["body"]) == (
        PREFERRED[0],
        {"reason": "decision-changed", "deviceIds": ["dev-1"]},
    )
    [stopped] = await world.orders_at(PREFERRED)
    assert stopped["status"] == "cancelled"
    [supplier_task] = await world.suppliers["zorgtechniek"].tasks.list("open")
    assert "de gemeente heeft haar besluit over dit hulpmiddel gewijzigd" in (
        supplier_task.description
    )
    [placed] = await world.amsterdam.orders.list()
    assert (placed.status, placed.active) == ("cancelled", False)
    assert await world.state(world.amsterdam, dossier_id) == "completed"

    # The alternative follows as for an exception of the policy: a task and a letter.
    tasks = await world.amsterdam.tasks.list("open", dossier_id=dossier_id)
    assert [(t.kind, t.device_id) for t in tasks] == [("provide-alternative", "dev-1")]
    [letter] = [path.read_text() for path in (tmp_path / "letters").glob("*.txt")]
    assert "Uw scootmobiel is versleten en niet meer veilig." in letter
    async with world.amsterdam.database.reading() as session:
        kinds = list(await session.scalars(select(ClientLetterRow.kind)))
    assert kinds == ["exception"]
    timeline = [t.cause for t in (await world.amsterdam.dossier(dossier_id)).timeline]
    assert (
        f"consulent 7 heeft het besluit gewijzigd: wij nemen {SCOOTMOBIEL} niet over. Reden: "
        "Uw scootmobiel is versleten en niet meer veilig. Wat de cliënt krijgt: U krijgt van "
        "ons een nieuwe scootmobiel."
    ) in timeline

    # Utrecht got the revised decision and told its supplier to leave the device in use.
    [first, revised] = await _sent(world.amsterdam, "device-decision")
    assert "revisedAt" not in first["body"]
    assert revised["body"]["revisedAt"] == "2025-03-03T09:00:00Z"
    assert revised["body"]["decisions"][0]["followUp"] == "gemeente-task"
    assert await _outcomes(world.utrecht, dossier_id) == {"dev-1": "exception"}
    [kept] = await _sent(world.utrecht, "continued-use")
    assert kept["receiver"]["oin"] == DEPARTING_SUPPLIER[0]
    departing = world.suppliers["hulpmiddelen"]
    [device] = await departing.supplier.departing_devices()
    assert (device.device_id, device.state) == ("dev-1", "in-use")
    utrecht_timeline = [t.cause for t in (await world.utrecht.dossier(dossier_id)).timeline]
    assert any("zij neemt de scootmobiel" in cause for cause in utrecht_timeline)

    # The client's page says the device stays until the alternative is there.
    page = await _client_page(world, channel)
    assert (
        "Scootmobiel (Scootmobiel, vier wielen): gaat niet mee. Uw scootmobiel is versleten en "
        "niet meer veilig. U krijgt van ons een nieuwe scootmobiel. Tot u dat heeft, mag u dit "
        "hulpmiddel gewoon blijven gebruiken."
    ) in page

    # No takeover price on the move date: the device leaves no contract.
    world.clock.set(_transfer_day_start() + timedelta(hours=1))
    await world.fire_deadlines()
    assert await departing.supplier.settlements() == []


@pytest.mark.parametrize("gemeente_settings", [_EXCEPTION])
async def test_an_exception_becomes_a_takeover_with_an_order_and_a_new_departure_notice(
    world: World, tmp_path: Path
) -> None:
    world.amsterdam.letters.channels = [LetterChannel(tmp_path / "letters")]
    await contract_scootmobiel_and_bed(world)
    # The bed's order keeps Amsterdam's dossier running; the scootmobiel is an exception.
    dossier_id = await world.hand_over(devices=("dev-1", "dev-2"))
    departing = world.suppliers["hulpmiddelen"]
    [kept] = await departing.supplier.departing_devices()
    assert (kept.device_id, kept.state) == ("dev-1", "in-use")

    answer = await _change(world, dossier_id, TO_TAKE_OVER)
    assert answer.status_code == 200, answer.text

    # The alternative's task is done; the contracted supplier has an order for the scootmobiel.
    open_kinds = {t.kind for t in await world.amsterdam.tasks.list("open", dossier_id=dossier_id)}
    assert "provide-alternative" not in open_kinds
    orders = {next(iter(o["deviceStates"])): o for o in await world.orders_at(PREFERRED)}
    assert sorted(orders) == ["dev-1", "dev-2"]
    assert orders["dev-1"]["status"] == "received"
    [progress] = [
        m
        for m in await _sent(world.amsterdam, "handover-progress")
        if m["body"]["devices"][0]["deviceId"] == "dev-1"
    ]
    assert progress["body"]["devices"][0]["state"] == "contact-planned"
    # The client hears that the exception is taken back, and who calls.
    texts = [path.read_text() for path in (tmp_path / "letters").glob("*.txt")]
    [after_all] = [text for text in texts if "toch over" in text]
    assert f"Dat besluit hebben wij veranderd: wij nemen {SCOOTMOBIEL} toch over." in after_all
    assert "Zorgtechniek neemt uiterlijk op 10 maart 2025 contact op" in after_all
    assert after_all.rstrip().endswith("Gemeente Amsterdam")

    # Utrecht: the scootmobiel is taken over after all; its supplier's continued use ends.
    assert await _outcomes(world.utrecht, dossier_id) == {
        "dev-1": "take-over",
        "dev-2": "take-over",
    }
    [leaving] = await departing.supplier.departing_devices()
    assert (leaving.state, leaving.receiving_supplier_name) == ("leaving", "Zorgtechniek")
    page = await world.utrecht.consent.page(dossier_id)
    [scootmobiel] = [d for d in page.devices if d.device_id == "dev-1"]
    assert device_sentence(page, scootmobiel) == (
        "Uw scootmobiel (Scootmobiel, vier wielen) gaat mee. Zorgtechniek is de leverancier van "
        "de gemeente Amsterdam. Zorgtechniek neemt uiterlijk op 10 maart 2025 contact met u op."
    )

    # A late older revision (the exception again) does not win over the newer decision.
    [*_, latest] = await _sent(world.amsterdam, "device-decision")
    older = dict(latest["body"])
    older["revisedAt"] = "2025-03-03T08:00:00Z"
    older["decisions"] = [
        {
            "deviceId": "dev-1",
            "outcome": "exception",
            "reasonCode": "not-in-assortment",
            "reasonText": "Wij hebben dit type scootmobiel niet in ons aanbod.",
            "alternativeOffered": "U krijgt van ons een scootmobiel die bij u past.",
        },
        *[item for item in older["decisions"] if item["deviceId"] != "dev-1"],
    ]
    document = _document(
        "device-decision",
        dossier_id,
        (AMSTERDAM_OIN, "receiving-gemeente"),
        (UTRECHT_OIN, "departing-gemeente"),
        older,
        world.clock.now(),
    )
    late = await _send_as(world, world.amsterdam, "utrecht", document)
    assert late.status_code == 200, late.text
    await world.settle()
    assert (await _outcomes(world.utrecht, dossier_id))["dev-1"] == "take-over"
    [leaving] = await departing.supplier.departing_devices()
    assert leaving.state == "leaving"
    page = await world.utrecht.consent.page(dossier_id)
    [scootmobiel] = [d for d in page.devices if d.device_id == "dev-1"]
    assert scootmobiel.supplier_name == "Zorgtechniek"


async def test_an_exception_ends_the_tasks_about_its_takeover(world: World, tmp_path: Path) -> None:
    world.amsterdam.letters.channels = [LetterChannel(tmp_path / "letters")]
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    await world.planner(
        PREFERRED, order["orderId"], status="problem", reasonCode="client-unreachable"
    )
    [problem] = await world.amsterdam.tasks.list("open", dossier_id=dossier_id)
    assert (problem.kind, problem.device_id) == ("supplier-problem", "dev-1")

    answer = await _change(world, dossier_id, TO_EXCEPTION)
    assert answer.status_code == 200, answer.text
    # The problem is no longer anyone's work: a person provides the alternative instead.
    open_kinds = [t.kind for t in await world.amsterdam.tasks.list("open", dossier_id=dossier_id)]
    assert open_kinds == ["provide-alternative"]
    [done] = [t for t in await world.amsterdam.tasks.list("done") if t.id == problem.id]
    assert done.done_by == "consulent 7"


@pytest.mark.parametrize("gemeente_settings", [_EXCEPTION])
async def test_an_exception_is_taken_back_after_the_dossier_completed(world: World) -> None:
    await contract_scootmobiel_and_bed(world)
    # Only the scootmobiel, an exception: nothing waits for a supplier, so Amsterdam completes.
    dossier_id = await world.hand_over()
    assert await world.state(world.amsterdam, dossier_id) == "completed"
    async with world.amsterdam.database.reading() as session:
        assert await load_client(session, CLIENT_BSN) is None
    case = await world.amsterdam.casework.case_file(dossier_id, actor="consulent 7")
    assert [(d.device_id, d.changeable) for d in case.devices] == [("dev-1", True)]

    answer = await _change(world, dossier_id, TO_TAKE_OVER)
    assert answer.status_code == 200, answer.text

    # The supplier has an order; the scootmobiel joins Amsterdam's register, the CAK is told.
    [order] = await world.orders_at(PREFERRED)
    assert (next(iter(order["deviceStates"])), order["status"]) == ("dev-1", "received")
    assert await world.state(world.amsterdam, dossier_id) == "completed"
    async with world.amsterdam.database.reading() as session:
        client = await load_client(session, CLIENT_BSN)
    assert client is not None
    assert [d.device_id for d in client.devices] == ["dev-1"]
    [start] = [
        t
        for t in await world.amsterdam.tasks.list("open", dossier_id=dossier_id)
        if t.kind == "eigen-bijdrage-start"
    ]
    assert "de scootmobiel (" in start.description
    # Utrecht tells its supplier that the scootmobiel leaves after all.
    assert await _outcomes(world.utrecht, dossier_id) == {"dev-1": "take-over"}
    [leaving] = await world.suppliers["hulpmiddelen"].supplier.departing_devices()
    assert (leaving.state, leaving.receiving_supplier_name) == ("leaving", "Zorgtechniek")

    # Taken over, the dossier stays completed and the decision cannot go back.
    await world.planner(PREFERRED, order["orderId"], status="taken-over")
    assert await world.state(world.amsterdam, dossier_id) == "completed"
    _problem(await _change(world, dossier_id, TO_EXCEPTION), 409, "decision-not-changeable")


async def test_a_changed_decision_is_refused_with_a_specific_problem(world: World) -> None:
    await contract_scootmobiel_and_bed(world)
    dossier_id = await world.hand_over(devices=("dev-1", "dev-2"))
    orders = {next(iter(o["deviceStates"])): o for o in await world.orders_at(PREFERRED)}
    await world.planner(PREFERRED, orders["dev-1"]["orderId"], status="taken-over")
    assert await world.state(world.amsterdam, dossier_id) == "orders-placed"

    _problem(await _change(world, dossier_id, TO_EXCEPTION), 409, "device-taken-over")
    _problem(
        await _change(world, dossier_id, TO_TAKE_OVER, device="dev-2"),
        409,
        "decision-not-changeable",
    )
    _problem(
        await _change(world, dossier_id, TO_EXCEPTION, device="dev-9"), 404, "unknown-provision"
    )
    # The ownership of the lent bed moved with the decision: it stays taken over.
    _problem(
        await _change(world, dossier_id, TO_EXCEPTION, device="dev-2"),
        409,
        "decision-not-changeable",
    )
    bad_code = {**TO_EXCEPTION, "reasonCode": "not-movable"}
    _problem(await _change(world, dossier_id, bad_code, device="dev-2"), 400, "invalid-input")
    no_alternative = {k: v for k, v in TO_EXCEPTION.items() if k != "alternativeOffered"}
    _problem(await _change(world, dossier_id, no_alternative, device="dev-2"), 400, "invalid-input")
    # The departing gemeente does not decide: its own API refuses.
    wrong_side = await world.http.post(
        f"http://utrecht.test/v1/dossiers/{dossier_id}/devices/dev-2/decision",
        json=TO_EXCEPTION,
        headers=AUTH,
    )
    _problem(wrong_side, 409, "decision-not-changeable")
    # Nothing was half applied: the bed's order stands, no decision was sent again.
    assert len(await _sent(world.amsterdam, "device-decision")) == 1
    assert [o.active for o in await world.amsterdam.orders.list() if o.device_id == "dev-2"] == [
        True
    ]

    # A cancelled dossier keeps its decision.
    await world.amsterdam.casework.cancel(
        dossier_id, "move-cancelled", "De verhuizing gaat niet door.", actor="consulent 7"
    )
    _problem(
        await _change(world, dossier_id, TO_EXCEPTION, device="dev-2"),
        409,
        "decision-not-changeable",
    )


async def test_a_gemeente_refuses_a_cancellation_of_some_devices(world: World) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    document = _document(
        "dossier-cancelled",
        dossier_id,
        (AMSTERDAM_OIN, "receiving-gemeente"),
        (UTRECHT_OIN, "departing-gemeente"),
        {"reason": "decision-changed", "deviceIds": ["dev-1"]},
        world.clock.now(),
    )
    answer = await _send_as(world, world.amsterdam, "utrecht", document)
    _problem(answer, 422, "message-not-handled")
    assert await world.state(world.utrecht, dossier_id) == "completed"


_BED_EXCEPTED = {"amsterdam": {"device_exceptions": BED_EXCEPTION}}


@pytest.mark.parametrize("gemeente_settings", [_BED_EXCEPTED])
async def test_a_lent_bed_taken_over_after_all_moves_its_ownership(
    world: World, tmp_path: Path
) -> None:
    world.amsterdam.letters.channels = [LetterChannel(tmp_path / "letters")]
    await contract_scootmobiel_and_bed(world)
    dossier_id = await world.hand_over(devices=("dev-1", "dev-2"))
    assert await _sent(world.utrecht, "device-transfer") == []

    answer = await _change(world, dossier_id, TO_TAKE_OVER, device="dev-2")
    assert answer.status_code == 200, answer.text
    [_, revised] = await _sent(world.amsterdam, "device-decision")
    [bed] = [i for i in revised["body"]["decisions"] if i["deviceId"] == "dev-2"]
    assert (bed["outcome"], bed["followUp"], bed["transferPrice"]) == (
        "take-over",
        "supplier-order",
        "free",
    )
    [transfer] = await _sent(world.utrecht, "device-transfer")
    assert transfer["body"]["device"]["deviceId"] == "dev-2"
    # The bed has no supplier at Utrecht: no departure notice for it.
    notices = await _sent(world.utrecht, "departure-notice")
    assert [d["deviceId"] for n in notices for d in n["body"]["devices"]] == ["dev-1"]


async def _departing_tasks(world: World, dossier_id: str) -> list[tuple[str, str, str]]:
    tasks = await world.utrecht.tasks.list(dossier_id=dossier_id)
    kinds = ("end-beschikking", "eigen-bijdrage-end")
    return sorted((t.kind, t.state, t.description) for t in tasks if t.kind in kinds)


async def test_the_departing_tasks_are_replaced_when_the_decision_is_revised(
    world: World,
) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    first = await _departing_tasks(world, dossier_id)
    assert [(kind, state) for kind, state, _ in first] == [
        ("eigen-bijdrage-end", "open"),
        ("end-beschikking", "open"),
    ]
    assert all("de scootmobiel" in text for _, _, text in first)

    # Nothing is taken over any more: nothing to end for a continuation; the tasks are closed.
    assert (await _change(world, dossier_id, TO_EXCEPTION)).status_code == 200
    tasks = await world.utrecht.tasks.list(dossier_id=dossier_id)
    replaced = [t for t in tasks if t.kind in ("end-beschikking", "eigen-bijdrage-end")]
    assert {(t.state, t.done_by) for t in replaced} == {("done", "gewijzigd besluit")}
    assert all(t.note == "Vervangen: het besluit is gewijzigd." for t in replaced)

    # Taken over after all (a later revision): the tasks come back, open, for the scootmobiel.
    world.clock.set(world.clock.now() + timedelta(hours=1))
    assert (await _change(world, dossier_id, TO_TAKE_OVER)).status_code == 200
    again = [t for t in await _departing_tasks(world, dossier_id) if t[1] == "open"]
    assert [(kind, state) for kind, state, _ in again] == [
        ("eigen-bijdrage-end", "open"),
        ("end-beschikking", "open"),
    ]
    assert all("de scootmobiel" in text for _, _, text in again)


async def test_a_person_who_already_ended_the_beschikking_is_asked_to_look_again(
    world: World,
) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    [end] = [
        t
        for t in await world.utrecht.tasks.list("open", dossier_id=dossier_id)
        if t.kind == "end-beschikking"
    ]
    closed = await world.http.post(
        f"http://utrecht.test/v1/tasks/{end.id}/done", json={"doneBy": "Piet"}, headers=AUTH
    )
    assert closed.status_code == 200, closed.text

    assert (await _change(world, dossier_id, TO_EXCEPTION)).status_code == 200
    [again] = [
        t
        for t in await world.utrecht.tasks.list("open", dossier_id=dossier_id)
        if t.kind == "end-beschikking"
    ]
    assert again.description == (
        "De gemeente Amsterdam heeft haar besluit gewijzigd: zij zet nu geen hulpmiddel meer "
        "voort. U hebt het einde van de beschikking van J. Jansen al geregeld. Kijk of dat nog "
        "klopt."
    )
    # The CAK task nobody did yet is replaced: with nothing taken over, nothing to report.
    open_kinds = {t.kind for t in await world.utrecht.tasks.list("open", dossier_id=dossier_id)}
    assert "eigen-bijdrage-end" not in open_kinds


async def test_a_device_no_supplier_takes_over_may_become_an_exception_after_completion(
    world: World,
) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, order["orderId"], status="refused", reasonCode="no-capacity")
    assert await world.state(world.amsterdam, dossier_id) == "completed"
    client = await _amsterdam_client(world)
    assert [d.device_id for d in client.devices] == ["dev-1"]  # in the register, without supplier
    [cak] = [
        t
        for t in await world.amsterdam.tasks.list("open", dossier_id=dossier_id)
        if t.kind == "eigen-bijdrage-start"
    ]
    assert "voor de scootmobiel" in cak.description

    # The werkbak's dossier page offers the change for the scootmobiel.
    case = await world.amsterdam.casework.case_file(dossier_id, actor="consulent 7")
    assert [(d.device_id, d.changeable) for d in case.devices] == [("dev-1", True)]

    world.clock.set(world.clock.now() + timedelta(hours=1))
    answer = await _change(world, dossier_id, TO_EXCEPTION)
    assert answer.status_code == 200, answer.text

    # The consulent's refusal task is done, the alternative's task is open, the register is
    # without the scootmobiel, and the CAK task nobody did yet is replaced: nothing to report.
    tasks = await world.amsterdam.tasks.list(dossier_id=dossier_id)
    state = {(t.kind, t.state) for t in tasks}
    assert ("supplier-refused", "done") in state
    assert ("provide-alternative", "open") in state
    assert ("eigen-bijdrage-start", "open") not in state
    async with world.amsterdam.database.reading() as session:
        assert await load_client(session, CLIENT_BSN) is None  # no device here: not registered
    # Utrecht hears the revised decision: its supplier keeps the scootmobiel in use.
    assert await _outcomes(world.utrecht, dossier_id) == {"dev-1": "exception"}
    [kept] = await world.suppliers["hulpmiddelen"].supplier.departing_devices()
    assert kept.state == "in-use"


async def test_a_device_with_no_contracted_supplier_may_become_an_exception_after_completion(
    world: World,
) -> None:
    # No contracted supplier at all: the no-supplier task, and the exception is allowed too.
    dossier_id = await world.hand_over()
    assert await world.state(world.amsterdam, dossier_id) == "completed"
    assert (await _change(world, dossier_id, TO_EXCEPTION)).status_code == 200
    world.clock.set(world.clock.now() + timedelta(hours=1))
    # Taken over again, and ordered nowhere (still no contract): a no-supplier task again.
    assert (await _change(world, dossier_id, TO_TAKE_OVER)).status_code == 200
    kinds = {t.kind for t in await world.amsterdam.tasks.list("open", dossier_id=dossier_id)}
    assert "no-supplier" in kinds


async def _amsterdam_client(world: World) -> Any:
    async with world.amsterdam.database.reading() as session:
        client = await load_client(session, CLIENT_BSN)
    assert client is not None
    return client

"""The supplier's progress reaches the departing gemeente and the client's page.

Two gemeenten and three suppliers over HTTP (ASGI transports) with the real registry: the
receiving gemeente (Amsterdam) sends ``handover-progress`` to the departing one (Utrecht) each
time its view of an ordered device changes; Utrecht shows it in the dossier and on the page.
"""

# The World fixtures are imported from test_supplier_flow; test arguments reuse their names.
# ruff: noqa: F811

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from agent.consent.page import ClientPage, DeviceLine
from agent.consent.progress import device_sentence, handover_done, progress_events
from agent.service import AgentService
from agent.settings import AgentSettings, HandoverSettings
from agent.storage.tables import InboundMessageRow, OutboxRow
from protocol.messages import MESSAGE_TYPES, parse_message
from protocol.signing import sign_message
from registry.client import RegistryClient
from tests.agent.conftest import (
    AMSTERDAM_OIN,
    CLIENT_BSN,
    REGISTRY,
    UTRECHT_OIN,
    agent_settings,
    enrol_in_registry,
)
from tests.agent.test_supplier_flow import (  # noqa: F401 - fixtures used by name
    NEXT,
    PREFERRED,
    World,
    _document,
    _inbound_count,
    _send_as,
    database_urls,
    start_time,
    takeover_settings,
    world,
)

ROTTERDAM_OIN = "00000001002244019000"
_PHONES = {
    "amsterdam": {"handover": HandoverSettings(phone_numbers={PREFERRED[0]: "020 765 43 21"})}
}
_GEMEENTE_TASK = "Een medewerker van de gemeente Amsterdam"


async def _page(world: World, dossier_id: str) -> tuple[ClientPage, DeviceLine]:
    page = await world.utrecht.consent.page(dossier_id)
    [scootmobiel] = [d for d in page.devices if d.device_id == "dev-1"]
    return page, scootmobiel


async def _sentence(world: World, dossier_id: str) -> str:
    page, scootmobiel = await _page(world, dossier_id)
    sentence = device_sentence(page, scootmobiel)
    assert sentence is not None
    return sentence


async def _progress(world: World, dossier_id: str) -> dict[str, Any]:
    view = await world.utrecht.dossier(dossier_id)
    [progress] = view.progress
    document: dict[str, Any] = progress.model_dump(mode="json", by_alias=True, exclude_none=True)
    return document


async def _sent_progress(service: AgentService) -> list[dict[str, Any]]:
    async with service.database.reading() as session:
        bodies = await session.scalars(
            select(OutboxRow.body)
            .where(OutboxRow.message_type == "handover-progress")
            .order_by(OutboxRow.sequence)
        )
        return [json.loads(body) for body in bodies]


@pytest.mark.parametrize("gemeente_settings", [_PHONES])
async def test_contact_and_takeover_reach_the_client_page(world: World) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()

    # The order is placed: the supplier, its phone (Amsterdam's setting) and the contact date.
    progress = await _progress(world, dossier_id)
    assert progress == {
        "deviceId": "dev-1",
        "state": "contact-planned",
        "followUp": "supplier-order",
        "supplier": {"oin": PREFERRED[0], "name": "Zorgtechniek"},
        "supplierPhone": "020 765 43 21",
        "contactBefore": "2025-03-10",
        "changedAt": "2025-03-03T09:00:00Z",
    }
    assert await _sentence(world, dossier_id) == (
        "Uw scootmobiel (Scootmobiel, vier wielen) gaat mee. Zorgtechniek (telefoon 020 765 43 "
        "21) is de leverancier van de gemeente Amsterdam. Zorgtechniek neemt uiterlijk op 10 "
        "maart 2025 contact met u op."
    )
    page, _ = await _page(world, dossier_id)
    assert page.state == "completed"
    assert not handover_done(page)  # the supplier is still at work

    [order] = await world.orders_at(PREFERRED)
    world.clock.set(datetime(2025, 3, 5, 13, 30, tzinfo=UTC))
    await world.planner(PREFERRED, order["orderId"], status="client-contacted")
    assert (await _progress(world, dossier_id))["contactedOn"] == "2025-03-05"
    assert await _sentence(world, dossier_id) == (
        "Uw scootmobiel (Scootmobiel, vier wielen) gaat mee. Zorgtechniek (telefoon 020 765 43 "
        "21) heeft op 5 maart 2025 contact met u gehad. Zorgtechniek regelt nu de overname met "
        "de gemeente Amsterdam. U mag het hulpmiddel gewoon blijven gebruiken."
    )

    world.clock.set(datetime(2025, 3, 12, 10, 0, tzinfo=UTC))
    await world.planner(PREFERRED, order["orderId"], status="taken-over", deviceId="dev-1")
    progress = await _progress(world, dossier_id)
    assert (progress["state"], progress["takenOverOn"], "followUp" in progress) == (
        "taken-over",
        "2025-03-12",
        False,
    )
    assert await _sentence(world, dossier_id) == (
        "Uw scootmobiel (Scootmobiel, vier wielen) is op 12 maart 2025 overgenomen door de "
        "gemeente Amsterdam. U houdt het gewoon. Is er iets kapot of heeft u een vraag? Bel "
        "dan Zorgtechniek (telefoon 020 765 43 21)."
    )
    page, _ = await _page(world, dossier_id)
    assert handover_done(page)
    assert [text for _, text in progress_events(page)] == [
        "De gemeente Amsterdam heeft uw scootmobiel (Scootmobiel, vier wielen) overgenomen."
    ]

    # The dossier's timeline at Utrecht says it for the case worker, in whole sentences.
    timeline = [t.cause for t in (await world.utrecht.dossier(dossier_id)).timeline]
    notes = [cause for cause in timeline if cause.startswith("voortgang")]
    assert notes == [
        "voortgang bij de nieuwe gemeente: Zorgtechniek heeft de opdracht voor de scootmobiel "
        "(Scootmobiel, vier wielen) en neemt uiterlijk op 10 maart 2025 contact op met de "
        "cliënt.",
        "voortgang bij de nieuwe gemeente: Zorgtechniek heeft op 5 maart 2025 contact gehad "
        "met de cliënt over de scootmobiel (Scootmobiel, vier wielen).",
        "voortgang bij de nieuwe gemeente: Zorgtechniek heeft de scootmobiel (Scootmobiel, "
        "vier wielen) op 12 maart 2025 overgenomen.",
    ]

    # The consulent's case file shows the latest progress beside the decision.
    case = await world.utrecht.casework.case_file(dossier_id, actor="consulent@utrecht")
    [line] = [d for d in case.devices if d.device_id == "dev-1"]
    assert line.progress == (
        "Zorgtechniek heeft de scootmobiel (Scootmobiel, vier wielen) op 12 maart 2025 overgenomen."
    )

    # Minimal data: one device each, no BSN and nothing of the client's.
    sent = await _sent_progress(world.amsterdam)
    assert [m["body"]["devices"][0]["state"] for m in sent] == [
        "contact-planned",
        "client-contacted",
        "taken-over",
    ]
    assert all(
        (m["sender"]["role"], m["receiver"])
        == (
            "receiving-gemeente",
            {"oin": UTRECHT_OIN, "role": "departing-gemeente"},
        )
        for m in sent
    )
    assert CLIENT_BSN not in json.dumps(sent)
    assert "Damrak" not in json.dumps(sent)


async def test_refusals_end_with_a_person_of_the_new_gemeente(world: World) -> None:
    await world.contract_preferred_then_next()
    dossier_id = await world.hand_over()
    [first] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, first["orderId"], status="refused", reasonCode="no-capacity")

    # The next supplier has the order now: the page names it, not the one that refused.
    progress = await _progress(world, dossier_id)
    assert (progress["state"], progress["supplier"]["name"]) == (
        "contact-planned",
        "Revalidatie Noord",
    )
    assert "Revalidatie Noord is de leverancier van de gemeente Amsterdam" in await _sentence(
        world, dossier_id
    )

    [second] = await world.orders_at(NEXT)
    await world.planner(NEXT, second["orderId"], status="refused", reasonCode="not-contracted")
    progress = await _progress(world, dossier_id)
    assert (progress["state"], progress["followUp"], progress["reasonCode"]) == (
        "refused",
        "gemeente-task",
        "not-contracted",
    )
    page, scootmobiel = await _page(world, dossier_id)
    assert scootmobiel.supplier_name is None
    assert device_sentence(page, scootmobiel) == (
        "Geen leverancier van de gemeente Amsterdam kan uw scootmobiel (Scootmobiel, vier "
        f"wielen) overnemen. {_GEMEENTE_TASK} belt u en zoekt een oplossing. U mag het "
        "hulpmiddel gewoon blijven gebruiken."
    )
    assert handover_done(page)  # a person of the new gemeente works on it


async def test_a_problem_and_a_missed_contact_date_name_who_acts(world: World) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over()
    [order] = await world.orders_at(PREFERRED)

    # No contact by the end of Monday 10 March (Amsterdam time): Amsterdam's person acts.
    world.clock.set(datetime(2025, 3, 10, 23, 0, 1, tzinfo=UTC))
    await world.fire_deadlines()
    progress = await _progress(world, dossier_id)
    assert (progress["state"], progress["followUp"]) == ("contact-overdue", "gemeente-task")
    assert await _sentence(world, dossier_id) == (
        "Zorgtechniek moest uiterlijk op 10 maart 2025 contact met u opnemen over uw "
        f"scootmobiel (Scootmobiel, vier wielen). Dat is niet gebeurd. {_GEMEENTE_TASK} belt u "
        "en zorgt dat het alsnog gebeurt. U mag het hulpmiddel gewoon blijven gebruiken."
    )

    await world.planner(
        PREFERRED, order["orderId"], status="problem", reasonCode="client-unreachable"
    )
    progress = await _progress(world, dossier_id)
    assert (progress["state"], progress["reasonCode"]) == ("problem", "client-unreachable")
    assert await _sentence(world, dossier_id) == (
        "Er is een probleem bij de overname van uw scootmobiel (Scootmobiel, vier wielen). De "
        f"leverancier kon u niet bereiken. {_GEMEENTE_TASK} belt u en lost het op. U mag het "
        "hulpmiddel gewoon blijven gebruiken."
    )
    page, _ = await _page(world, dossier_id)
    assert handover_done(page)


# --- the departing gemeente's checks -------------------------------------------------------------


def _report(world: World, dossier_id: str, sender: str, device_id: str = "dev-1") -> dict[str, Any]:
    now = world.clock.now()
    device = {
        "deviceId": device_id,
        "state": "taken-over",
        "supplier": {"oin": PREFERRED[0], "name": "Zorgtechniek"},
        "takenOverOn": now.date().isoformat(),
        "changedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return _document(
        "handover-progress",
        dossier_id,
        (sender, "receiving-gemeente"),
        (UTRECHT_OIN, "departing-gemeente"),
        {"devices": [device]},
        now,
    )


def _problem(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["type"] == f"urn:meeverhuizen:problem:{code}"


async def _rotterdam(world: World) -> AgentSettings:
    """A third gemeente in the registry, with a key of its own."""
    settings = agent_settings(
        "sqlite+aiosqlite://",
        gemeente="amsterdam",
        oin=ROTTERDAM_OIN,
        gemeentecode="0599",
        name="Gemeente Rotterdam",
        public_base_url="http://rotterdam.test",
    )
    anchor = world.utrecht.settings.registry_trust_anchor
    await enrol_in_registry(world.http, anchor, world.clock, settings)
    return settings


async def test_only_the_partner_reports_progress_on_devices_it_took_over(world: World) -> None:
    await world.contract(PREFERRED, 1)
    dossier_id = await world.hand_over(devices=("dev-1", "dev-2"))
    stored = await _inbound_count(world.utrecht)

    # A supplier cannot speak as a gemeente (the registry gives it no gemeente role).
    answer = await _send_as(
        world, world.suppliers["zorgtechniek"], "utrecht", _report(world, dossier_id, PREFERRED[0])
    )
    _problem(answer, 403, "sender-not-permitted")

    # Another gemeente, about this dossier: only the partner speaks of it.
    rotterdam = await _rotterdam(world)
    signed = sign_message(
        parse_message(_report(world, dossier_id, ROTTERDAM_OIN)),
        rotterdam.private_jwk(),
        signing_time=world.clock.now(),
    )
    answer = await world.http.post(
        "http://utrecht.test/v1/messages", content=signed.body, headers=signed.headers()
    )
    _problem(answer, 403, "sender-not-permitted")

    # The dossier's partner, about a device the client did not consent to: not handled.
    answer = await _send_as(
        world, world.amsterdam, "utrecht", _report(world, dossier_id, AMSTERDAM_OIN, "dev-3")
    )
    _problem(answer, 422, "message-not-handled")
    assert await _inbound_count(world.utrecht) == stored
    assert (await _progress(world, dossier_id))["state"] == "contact-planned"


# --- a departing gemeente that does not list handover-progress ----------------------------------


async def _utrecht_lists_all_but(world: World, message_type: str) -> None:
    registry = RegistryClient(
        REGISTRY, world.utrecht.settings.registry_trust_anchor, http=world.http, clock=world.clock
    )
    await registry.update_own_entry(
        oin=UTRECHT_OIN,
        private_jwk=world.utrecht.settings.private_jwk(),
        message_types=[kind for kind in MESSAGE_TYPES if kind != message_type],
    )


async def _sent_to_utrecht(world: World) -> list[tuple[str, str, str | None]]:
    async with world.amsterdam.database.reading() as session:
        rows = await session.scalars(
            select(OutboxRow)
            .where(OutboxRow.destination_oin == UTRECHT_OIN)
            .order_by(OutboxRow.sequence)
        )
        return [(row.message_type, row.state, row.last_error) for row in rows]


async def _decisions_at_utrecht(world: World) -> int:
    async with world.utrecht.database.reading() as session:
        found = await session.scalars(
            select(InboundMessageRow.message_id).where(
                InboundMessageRow.message_type == "device-decision"
            )
        )
        return len(list(found))


async def test_progress_is_left_out_and_holds_nothing_up_when_not_listed(world: World) -> None:
    await world.contract_preferred_then_next()
    await _utrecht_lists_all_but(world, "handover-progress")
    dossier_id = await world.hand_over()
    [first] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, first["orderId"], status="refused", reasonCode="no-capacity")

    # Never sent, and the decision naming the next supplier went after it all the same.
    not_accepted = "registry: the receiver does not accept handover-progress messages"
    assert await _sent_to_utrecht(world) == [
        ("device-decision", "delivered", None),
        ("handover-progress", "skipped", not_accepted),
        ("device-decision", "delivered", None),
        ("handover-progress", "skipped", not_accepted),
    ]
    assert await _decisions_at_utrecht(world) == 2
    assert (await world.utrecht.dossier(dossier_id)).progress == ()
    assert [entry.state for entry in await world.amsterdam.outbox.list("skipped")] == [
        "skipped",
        "skipped",
    ]


async def test_a_required_message_not_listed_is_a_dead_letter_that_holds_its_stream(
    world: World,
) -> None:
    await world.contract(PREFERRED, 1)
    await _utrecht_lists_all_but(world, "device-decision")
    await world.hand_over()

    # The operator sees why; the progress behind it waits until the decision can go.
    assert await _sent_to_utrecht(world) == [
        (
            "device-decision",
            "dead",
            "registry: the receiver does not accept device-decision messages",
        ),
        ("handover-progress", "pending", None),
    ]
    assert await _decisions_at_utrecht(world) == 0

"""After the decision: bruikleen, exceptions, fixed devices, the register and the CAK.

The world of ``test_supplier_flow`` (the real registry, two gemeenten, three suppliers, over
HTTP through ASGI transports). Jansen moves from Utrecht to Amsterdam with a rented scootmobiel
(``dev-1``, Hulpmiddelen BV), a hoog-laagbed in bruikleen (``dev-2``) and a built-in traplift
(``dev-3``).
"""

# The World fixtures are imported from test_supplier_flow; test arguments reuse their names.
# ruff: noqa: F811

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agent.consent.channels import LetterChannel
from agent.local.continuation_steps import report_alternative_delivered
from agent.register.store import load_client
from agent.service import AgentService, ConsentInput, DossierStart
from agent.storage.tables import ClientLetterRow, DeviceTransferRow, InboundMessageRow
from protocol.messages import Address, parse_message
from tests.agent.conftest import (
    AMSTERDAM_OIN,
    AUTH,
    CLIENT_BSN,
    DATA,
    MENTOR,
    MOVE_DATE,
    NEW_ADDRESS,
    RecordingChannel,
)
from tests.agent.test_supplier_flow import (  # noqa: F401 - fixtures used by name
    DEPARTING_SUPPLIER,
    PREFERRED,
    World,
    _document,
    _refused,
    _send_as,
    _transfer_day_start,
    database_urls,
    start_time,
    takeover_settings,
    world,
)

ALL_DEVICES = ("dev-1", "dev-2", "dev-3")


async def contract_scootmobiel_and_bed(world: World) -> None:
    """Amsterdam contracted Zorgtechniek for scootmobielen (12 23) and beds (18 12)."""
    await world.operator.add_contract(
        gemeentecode="0363",
        supplier_oin=PREFERRED[0],
        iso_prefixes=["12 23", "18 12"],
        valid_from=date(2025, 1, 1),
        preference=1,
    )


async def _transfers(service: Any) -> list[DeviceTransferRow]:
    async with service.database.reading() as session:
        return list(await session.scalars(select(DeviceTransferRow)))


async def test_bruikleen_bed_gets_a_service_order_and_its_ownership_moves(world: World) -> None:
    await contract_scootmobiel_and_bed(world)
    dossier_id = await world.hand_over(devices=ALL_DEVICES)

    # Amsterdam orders both the rented scootmobiel and the lent bed from its supplier.
    placed = await world.amsterdam.orders.list()
    assert sorted((o.device_id, o.supplier_oin) for o in placed) == [
        ("dev-1", PREFERRED[0]),
        ("dev-2", PREFERRED[0]),
    ]
    # Utrecht's view says per device who acts next: the page promises only what is backed.
    decisions = {d.device_id: d for d in (await world.utrecht.dossier(dossier_id)).decisions}
    assert (decisions["dev-2"].follow_up, decisions["dev-2"].supplier_name) == (
        "supplier-order",
        "Zorgtechniek",
    )
    assert decisions["dev-3"].follow_up == "gemeente-task"

    # The ownership record moves from Utrecht to Amsterdam on the move date, free by default.
    [sent] = await _transfers(world.utrecht)
    [received] = await _transfers(world.amsterdam)
    for row, direction in ((sent, "sent"), (received, "received")):
        assert (row.device_id, row.direction, row.price, row.amount_cents) == (
            "dev-2",
            direction,
            "free",
            0,
        )
        assert row.transfer_date == date(2025, 4, 1)
    # The bed has no supplier at Utrecht, so no departure notice and no supplier settlement.
    leaving = await world.suppliers["hulpmiddelen"].supplier.departing_devices()
    assert [d.device_id for d in leaving] == ["dev-1"]

    # After the takeover the client and both devices are in Amsterdam's register.
    for order in await world.orders_at(PREFERRED):
        await world.planner(PREFERRED, order["orderId"], status="taken-over")
    assert await world.state(world.amsterdam, dossier_id) == "completed"
    async with world.amsterdam.database.reading() as session:
        client = await load_client(session, CLIENT_BSN)
    assert client is not None
    assert client.address.city == "Amsterdam"
    assert [(d.device_id, d.ownership) for d in client.devices] == [
        ("dev-1", "huur"),
        ("dev-2", "bruikleen"),
    ]
    assert {d.supplier.name for d in client.devices if d.supplier} == {"Zorgtechniek"}
    assert client.indicatie is not None
    assert client.indicatie.start_date == date(2025, 4, 1)

    # The CAK: Amsterdam starts on the move date, Utrecht stops the day before; Utrecht ends
    # its beschikking. Each task names the client and the devices, not ids or a BSN.
    [start] = [
        t for t in await world.amsterdam.tasks.list("open") if t.kind == "eigen-bijdrage-start"
    ]
    assert "J. Jansen" in start.description
    assert "1 april 2025" in start.description
    assert "de scootmobiel (" in start.description
    assert "het hoog-laagbed" in start.description
    utrecht = {t.kind: t for t in await world.utrecht.tasks.list("open", dossier_id=dossier_id)}
    assert "31 maart 2025" in utrecht["eigen-bijdrage-end"].description
    assert "UTR-2023-0042" in utrecht["end-beschikking"].description
    assert "1 april 2025" in utrecht["end-beschikking"].description
    for task in [start, *utrecht.values()]:
        assert CLIENT_BSN not in task.description
        assert "dev-" not in task.description


@pytest.mark.parametrize(
    "gemeente_settings",
    [
        {
            "utrecht": {"continuation": {"transfer_price": "residual-value"}},
            "amsterdam": {"continuation": {"transfer_price": "residual-value"}},
        }
    ],
)
async def test_a_bed_is_priced_when_both_gemeenten_say_residual_value(
    world: World, tmp_path: Path
) -> None:
    clients = json.loads((DATA / "clients.json").read_text())
    clients[0]["devices"][1] |= {"purchaseDate": "2022-04-01", "purchasePriceCents": 120000}
    await world.utrecht.import_provisions(json.dumps(clients).encode(), "json")
    await contract_scootmobiel_and_bed(world)
    await world.hand_over(devices=ALL_DEVICES, imported=True)
    [sent] = await _transfers(world.utrecht)
    [received] = await _transfers(world.amsterdam)
    assert sent.price == received.price == "residual-value"
    assert sent.amount_cents == received.amount_cents > 0
    assert received.state == "received"  # Amsterdam's own calculation agrees: no task
    kinds = {t.kind for t in await world.amsterdam.tasks.list("open")}
    assert "transfer-price" not in kinds


_EXCEPTION = {
    "amsterdam": {
        "device_exceptions": {
            "12 23": {
                "reason_code": "not-in-assortment",
                "reason_text": "Wij hebben dit type scootmobiel niet in ons aanbod.",
                "alternative": "U krijgt van ons een scootmobiel die bij u past.",
            }
        },
        "consent": {"phone_number": "020 123 4567"},
    }
}


# Amsterdam's agent also serves Zaanstad, which has a policy of its own for scootmobielen.
_REGIONAL = {
    "amsterdam": {
        **_EXCEPTION["amsterdam"],
        "regional_device_exceptions": {
            "0479": {
                "12 23": {
                    "reason_code": "not-in-assortment",
                    "reason_text": "Zaanstad heeft dit type scootmobiel niet in het aanbod.",
                    "alternative": "U krijgt van Zaanstad een scootmobiel die bij u past.",
                }
            }
        },
    }
}


@pytest.mark.parametrize("gemeente_settings", [_REGIONAL])
async def test_a_regional_agent_decides_and_writes_for_the_gemeente_the_client_moves_to(
    world: World, tmp_path: Path
) -> None:
    # Amsterdam's agent also serves Zaanstad; Utrecht finds it through the registry.
    await world.operator.assign_gemeenten(oin=AMSTERDAM_OIN, gemeentecodes=["0363", "0479"])
    letters = tmp_path / "letters"
    world.amsterdam.letters.channels = [LetterChannel(letters)]
    zaandam = Address(
        street="Westzijde",
        house_number=10,
        postal_code="1506EB",
        city="Zaandam",
        gemeentecode="0479",
    )
    dossier_id = await world.hand_over(devices=ALL_DEVICES, new_address=zaandam)

    received = await world.amsterdam.dossier(dossier_id)
    assert received.state != "failed"
    [text] = [path.read_text() for path in letters.glob("*.txt")]
    assert "U verhuist op" in text
    assert "naar de gemeente Zaanstad." in text
    assert "Zaanstad heeft dit type scootmobiel niet in het aanbod." in text
    assert text.rstrip().endswith("Gemeente Zaanstad")
    assert "Amsterdam" not in text


@pytest.mark.parametrize("gemeente_settings", [_EXCEPTION])
async def test_an_exception_gives_a_task_a_letter_and_keeps_the_device_in_use(
    world: World, tmp_path: Path
) -> None:
    letters = tmp_path / "letters"
    world.amsterdam.letters.channels = [LetterChannel(letters)]
    dossier_id = await world.hand_over(devices=ALL_DEVICES)

    # A person at Amsterdam must provide the alternative within 10 working days.
    tasks = {t.kind: t for t in await world.amsterdam.tasks.list("open", dossier_id=dossier_id)}
    alternative = tasks["provide-alternative"]
    assert alternative.due_at is not None
    assert alternative.due_at.date() == date(2025, 3, 17)  # 3 March + 10 working days
    assert "J. Jansen" in alternative.description
    assert "de scootmobiel" in alternative.description
    # The fixed traplift: a person contacts the client about the need in the new home.
    fixed = tasks["fixed-device-need"]
    assert "de traplift" in fixed.description
    assert fixed.due_at is not None

    # The client's letter: the reason, the alternative, the date and whom to call.
    [text] = [path.read_text() for path in letters.glob("*.txt")]
    assert "Beste J. Jansen" in text
    assert "Wij hebben dit type scootmobiel niet in ons aanbod." in text
    assert "U krijgt van ons een scootmobiel die bij u past." in text
    assert "17 maart 2025" in text
    assert "020 123 4567" in text

    # The departing supplier leaves the scootmobiel in use; no takeover price.
    supplier = world.suppliers["hulpmiddelen"]
    [kept] = await supplier.supplier.departing_devices()
    assert (kept.device_id, kept.state) == ("dev-1", "in-use")

    # The alternative is delivered: Utrecht and then its supplier hear it; the task is done.
    view = await report_alternative_delivered(
        world.http,
        "http://amsterdam.test",
        AUTH,
        dossier_id=dossier_id,
        device_id="dev-1",
        delivered_on=date(2025, 3, 12),
        done_by="consulent 12",
    )
    assert view["dossierId"] == dossier_id
    await world.settle()
    [collect] = await supplier.supplier.departing_devices()
    assert collect.state == "collect"
    supplier_tasks = await supplier.tasks.list("open")
    assert [t.kind for t in supplier_tasks] == ["collect-device"]
    assert "12 maart 2025" in supplier_tasks[0].description
    assert await supplier.supplier.settlements() == []
    open_kinds = {t.kind for t in await world.amsterdam.tasks.list("open", dossier_id=dossier_id)}
    assert "provide-alternative" not in open_kinds
    again = await world.http.post(
        f"http://amsterdam.test/v1/dossiers/{dossier_id}/devices/dev-1/alternative-delivered",
        json={"deliveredOn": "2025-03-12", "doneBy": "consulent 12"},
        headers=AUTH,
    )
    assert again.status_code == 409


# Amsterdam's exception for the hoog-laagbed (ISO 18 12): a bed that fits the client's needs now.
BED_EXCEPTION = {
    "18 12": {
        "reason_code": "needs-changed",
        "reason_text": "U heeft nu een ander bed nodig.",
        "alternative": "U krijgt van ons een bed dat bij u past.",
    }
}
_TWO_EXCEPTIONS = {
    "amsterdam": {
        "device_exceptions": {**_EXCEPTION["amsterdam"]["device_exceptions"], **BED_EXCEPTION}
    }
}


@pytest.mark.parametrize("gemeente_settings", [_TWO_EXCEPTIONS])
async def test_each_delivered_alternative_closes_the_task_of_its_own_device(
    world: World, tmp_path: Path
) -> None:
    world.amsterdam.letters.channels = [LetterChannel(tmp_path / "letters")]
    dossier_id = await world.hand_over(devices=ALL_DEVICES)

    async def open_alternatives() -> list[str]:
        tasks = await world.amsterdam.tasks.list("open", dossier_id=dossier_id)
        return sorted(t.device_id or "" for t in tasks if t.kind == "provide-alternative")

    assert await open_alternatives() == ["dev-1", "dev-2"]
    await report_alternative_delivered(
        world.http,
        "http://amsterdam.test",
        AUTH,
        dossier_id=dossier_id,
        device_id="dev-2",
        delivered_on=date(2025, 3, 12),
        done_by="consulent 12",
    )
    # The bed's task is done; the scootmobiel's task still names who acts for it.
    assert await open_alternatives() == ["dev-1"]


@pytest.mark.parametrize("gemeente_settings", [_EXCEPTION])
async def test_only_the_departing_gemeente_may_have_a_kept_device_collected(
    world: World, tmp_path: Path
) -> None:
    world.amsterdam.letters.channels = [LetterChannel(tmp_path / "letters")]
    dossier_id = await world.hand_over(devices=ALL_DEVICES)
    supplier = world.suppliers["hulpmiddelen"]
    notice = {
        "devices": [{"deviceId": "dev-1", "isoCode": "12 23 03"}],
        "receivingGemeentecode": "0363",
        "reasonText": "Wij hebben dit type scootmobiel niet in ons aanbod.",
        "alternative": "U krijgt van ons een scootmobiel die bij u past.",
        "alternativeDeliveredOn": "2025-03-12",
    }
    document = _document(
        "continued-use",
        dossier_id,
        (AMSTERDAM_OIN, "departing-gemeente"),
        (DEPARTING_SUPPLIER[0], "departing-supplier"),
        notice,
        world.clock.now(),
    )
    # Amsterdam did not lend the scootmobiel: only Utrecht may say it can be collected.
    _refused(await _send_as(world, world.amsterdam, "hulpmiddelen", document))
    [kept] = await supplier.supplier.departing_devices()
    assert (kept.device_id, kept.state) == ("dev-1", "in-use")
    assert await supplier.tasks.list("open") == []


async def test_a_lent_bed_maintained_by_a_supplier_leaves_without_a_takeover_price(
    world: World,
) -> None:
    clients = json.loads((DATA / "clients.json").read_text())
    clients[0]["devices"][1] |= {
        "supplier": clients[0]["devices"][0]["supplier"],
        "purchaseDate": "2022-04-01",
        "purchasePriceCents": 120000,
    }
    await world.utrecht.import_provisions(json.dumps(clients).encode(), "json")
    await contract_scootmobiel_and_bed(world)
    await world.hand_over(devices=ALL_DEVICES, imported=True)
    supplier = world.suppliers["hulpmiddelen"]
    leaving = await supplier.supplier.departing_devices()
    assert sorted(d.device_id for d in leaving) == ["dev-1", "dev-2"]

    # The departure notice says the bed is Utrecht's (bruikleen): only the scootmobiel is priced.
    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()
    assert [s.device_id for s in await supplier.supplier.settlements()] == ["dev-1"]


# --- a letter not sent yet when the handover stops ---------------------------------------------


async def _offered(world: World) -> str:
    """Consent for the scootmobiel; only Utrecht delivers, so Amsterdam decided but sent nothing."""
    await world.utrecht.import_provisions((DATA / "clients.json").read_bytes(), "json")
    view = await world.utrecht.start_dossier(
        DossierStart(bsn=CLIENT_BSN, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
    )
    consent = ConsentInput.model_validate(
        {
            "dataKinds": ("identity", "address", "devices"),
            "deviceIds": ["dev-1"],
            "channel": "online",
            "givenBy": "client",
            "givenAt": world.clock.now().isoformat(),
        }
    )
    await world.utrecht.record_consent(view.dossier_id, consent)
    await world.utrecht.deliver_until_quiet()
    assert await world.state(world.amsterdam, view.dossier_id) == "decided"
    return view.dossier_id


async def _letters(service: AgentService, dossier_id: str) -> list[ClientLetterRow]:
    async with service.database.reading() as session:
        return list(
            await session.scalars(
                select(ClientLetterRow).where(ClientLetterRow.dossier_id == dossier_id)
            )
        )


async def _withdrawn_by_the_client(world: World, dossier_id: str) -> None:
    await world.utrecht.consent.withdraw(dossier_id)


async def _cancelled_at_utrecht(world: World, dossier_id: str) -> None:
    await world.utrecht.casework.cancel(
        dossier_id, "move-cancelled", "De verhuizing gaat niet door.", actor="consulent 7"
    )


async def _cancelled_at_amsterdam(world: World, dossier_id: str) -> None:
    await world.amsterdam.casework.cancel(
        dossier_id, "move-cancelled", "De verhuizing gaat niet door.", actor="consulent 12"
    )


@pytest.mark.parametrize("gemeente_settings", [_EXCEPTION])
@pytest.mark.parametrize(
    ("stop", "states", "erased"),
    [
        # A withdrawal also erases the client's data at Amsterdam, the letter's too.
        (_withdrawn_by_the_client, ("consent-withdrawn", "consent-withdrawn"), True),
        (_cancelled_at_utrecht, ("cancelled", "cancelled"), False),
        # Utrecht had completed on the decision (nothing to take over); a person checks it.
        (_cancelled_at_amsterdam, ("completed", "cancelled"), False),
    ],
)
async def test_a_stopped_handover_sends_no_exception_letter_afterwards(
    world: World,
    tmp_path: Path,
    stop: Callable[[World, str], Awaitable[None]],
    states: tuple[str, str],
    erased: bool,
) -> None:
    letters = tmp_path / "letters"
    world.amsterdam.letters.channels = [LetterChannel(letters)]
    dossier_id = await _offered(world)
    # Amsterdam excepted the scootmobiel: the letter waits for its next delivery pass.
    [letter] = await _letters(world.amsterdam, dossier_id)
    assert (letter.kind, letter.state) == ("exception", "pending")

    await stop(world, dossier_id)
    await world.settle()

    assert (
        await world.state(world.utrecht, dossier_id),
        await world.state(world.amsterdam, dossier_id),
    ) == states
    # The letter about a takeover that no longer happens never goes out.
    [letter] = await _letters(world.amsterdam, dossier_id)
    assert (letter.kind, letter.state) == ("exception", "stopped")
    assert ("J. Jansen" not in letter.text) is erased
    assert (letter.recipient == {}) is erased
    assert not letters.exists() or list(letters.iterdir()) == []
    assert "letter-not-sent" not in {t.kind for t in await world.amsterdam.tasks.list("open")}


# --- a representative -----------------------------------------------------------------------


async def _import_with_mentor(world: World) -> None:
    clients = json.loads((DATA / "clients.json").read_text())
    clients[0] |= {"representative": MENTOR}
    await world.utrecht.import_provisions(json.dumps(clients).encode(), "json")


@pytest.mark.parametrize("gemeente_settings", [_EXCEPTION])
async def test_the_exception_letter_reaches_the_mentor_at_their_own_address(world: World) -> None:
    channel = RecordingChannel()
    world.amsterdam.letters.channels = [channel]
    await _import_with_mentor(world)
    await world.hand_over(imported=True)

    by_name = {letter.recipient_name: letter for letter in channel.letters}
    assert sorted(by_name) == ["A. Bakker", "J. Jansen"]
    client, mentor = by_name["J. Jansen"], by_name["A. Bakker"]
    # The client at the new address; the mentor at their own, from Utrecht's register.
    assert client.address_lines == ("J. Jansen", "Damrak 1", "1012LG Amsterdam")
    assert mentor.address_lines == ("A. Bakker", "Nieuwegracht 3", "3512LC Utrecht")
    assert mentor.subject.startswith("Over de scootmobiel")
    assert mentor.subject.endswith("van J. Jansen")
    assert mentor.text.startswith("Beste A. Bakker,")
    assert "omdat u J. Jansen vertegenwoordigt" in mentor.text
    assert "Wij hebben dit type scootmobiel niet in ons aanbod." in mentor.text
    assert "U krijgt van ons een scootmobiel die bij u past." in mentor.text
    assert "J. Jansen heeft het andere hulpmiddel uiterlijk op 17 maart 2025." in mentor.text
    assert "020 123 4567" in mentor.text
    assert client.text.startswith("Beste J. Jansen,")
    assert "vertegenwoordigt" not in client.text


async def test_the_supplier_gets_the_representative_without_their_own_address(
    world: World,
) -> None:
    await world.contract_preferred_then_next()
    await _import_with_mentor(world)
    dossier_id = await world.hand_over(imported=True)

    async def representative(service: AgentService, message_type: str) -> dict[str, Any]:
        async with service.database.reading() as session:
            body = await session.scalar(
                select(InboundMessageRow.body).where(
                    InboundMessageRow.dossier_id == dossier_id,
                    InboundMessageRow.message_type == message_type,
                )
            )
        assert body is not None
        message = parse_message(json.loads(body))
        found: dict[str, Any] = message.model_dump(mode="json", by_alias=True, exclude_none=True)
        return found

    offer = await representative(world.amsterdam, "dossier-offer")
    assert offer["body"]["client"]["representative"]["address"]["street"] == "Nieuwegracht"
    order = await representative(world.suppliers["zorgtechniek"], "takeover-order")
    assert order["body"]["representative"]["name"]["surname"] == "Bakker"
    assert "address" not in order["body"]["representative"]

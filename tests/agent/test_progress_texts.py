"""What the client's page says per device after the decision, and when the handover is klaar."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from agent.consent.page import ClientPage, DeviceLine
from agent.consent.progress import device_sentence, handover_done, progress_events
from agent.supplier.progress import progress_note
from protocol.messages import DeviceProgress

_SUPPLIER = {"oin": "00000003876543210000", "name": "Zorgtechniek"}
_BED = "hoog-laagbed"


def _progress(state: str, **fields: Any) -> DeviceProgress:
    return DeviceProgress.model_validate(
        {
            "deviceId": "bed-1",
            "state": state,
            "supplier": _SUPPLIER,
            "changedAt": "2026-12-10T09:00:00Z",
            **fields,
        }
    )


def _line(progress: DeviceProgress | None = None, **fields: Any) -> DeviceLine:
    values: dict[str, Any] = {
        "device_id": "bed-1",
        "name": _BED,
        "movable": True,
        "outcome": "take-over",
        "consented": True,
        "rented": True,
        "supplier_name": "Zorgtechniek",
        "supplier_phone": "020 765 43 21",
        "follow_up": "supplier-order",
        "progress": progress,
    }
    return DeviceLine(**(values | fields))


def _page(*devices: DeviceLine, receiving_phone: str | None = "14 020") -> ClientPage:
    return ClientPage(
        dossier_id="d",
        state="completed",
        client_name="J. Jansen",
        departing_gemeente="Utrecht",
        receiving_gemeente="Amsterdam",
        move_date=date(2026, 12, 1),
        answer_before=date(2026, 12, 1),
        devices=devices,
        has_indicatie=False,
        has_functional_information=False,
        consented_kinds=(),
        consent_by=None,
        withdrawn=False,
        supplier_contact_before=date(2026, 12, 8),
        timeline=(),
        gemeente_phone=None,
        clientondersteuning="",
        receiving_phone=receiving_phone,
    )


def _sentence(device: DeviceLine, **page: Any) -> str | None:
    return device_sentence(_page(device, **page), device)


def test_contact_planned_names_the_supplier_its_phone_and_the_reported_date() -> None:
    line = _line(
        _progress("contact-planned", followUp="supplier-order", contactBefore="2026-12-09")
    )
    assert _sentence(line) == (
        "Uw hoog-laagbed gaat mee. Zorgtechniek (telefoon 020 765 43 21) is de leverancier van "
        "de gemeente Amsterdam. Zorgtechniek neemt uiterlijk op 9 december 2026 contact met u op."
    )


def test_before_any_progress_the_date_is_counted_from_the_decision() -> None:
    assert "uiterlijk op 8 december 2026" in (_sentence(_line()) or "")


def test_contacted_says_when_and_what_happens_next() -> None:
    line = _line(_progress("client-contacted", followUp="supplier-order", contactedOn="2026-12-10"))
    assert _sentence(line, receiving_phone=None) == (
        "Uw hoog-laagbed gaat mee. Zorgtechniek (telefoon 020 765 43 21) heeft op 10 december "
        "2026 contact met u gehad. Zorgtechniek regelt nu de overname met de gemeente Amsterdam. "
        "U mag het hulpmiddel gewoon blijven gebruiken."
    )


def test_taken_over_says_the_device_stays_and_whom_to_call() -> None:
    line = _line(_progress("taken-over", takenOverOn="2026-12-14"), supplier_phone=None)
    assert _sentence(line) == (
        "Uw hoog-laagbed is op 14 december 2026 overgenomen door de gemeente Amsterdam. U houdt "
        "het gewoon. Is er iets kapot of heeft u een vraag? Bel dan Zorgtechniek."
    )


def test_an_unsafe_device_is_not_to_be_used_when_in_doubt() -> None:
    line = _line(
        _progress("problem", followUp="gemeente-task", reasonCode="device-unsafe"),
    )
    assert _sentence(line) == (
        "Er is een probleem bij de overname van uw hoog-laagbed. De leverancier denkt dat het "
        "hulpmiddel niet veilig is. Een medewerker van de gemeente Amsterdam (telefoon 14 020) "
        "belt u en lost het op. Twijfelt u of het veilig is? Gebruik het dan niet en bel de "
        "gemeente Amsterdam."
    )


def test_a_problem_without_a_known_reason_still_says_who_acts() -> None:
    line = _line(_progress("problem", followUp="gemeente-task", reasonCode="other"))
    assert _sentence(line, receiving_phone=None) == (
        "Er is een probleem bij de overname van uw hoog-laagbed. De leverancier meldt een "
        "probleem. Een medewerker van de gemeente Amsterdam belt u en lost het op. U mag het "
        "hulpmiddel gewoon blijven gebruiken."
    )


def test_a_device_not_taken_over_has_no_progress_sentence() -> None:
    assert _sentence(_line(outcome="exception")) is None


@pytest.mark.parametrize(
    ("line", "done"),
    [
        (_line(), False),  # ordered, nothing reported yet
        (
            _line(
                _progress("contact-planned", followUp="supplier-order", contactBefore="2026-12-09")
            ),
            False,
        ),
        (
            _line(
                _progress("client-contacted", followUp="supplier-order", contactedOn="2026-12-09")
            ),
            False,
        ),
        (_line(_progress("taken-over", takenOverOn="2026-12-14")), True),
        (
            _line(
                _progress("contact-overdue", followUp="gemeente-task", contactBefore="2026-12-09")
            ),
            True,
        ),
        (_line(_progress("refused", followUp="gemeente-task", reasonCode="no-capacity")), True),
        (
            _line(
                _progress("contact-planned", followUp="supplier-order", contactBefore="2026-12-09"),
                follow_up="gemeente-task",
            ),
            False,
        ),  # the latest progress wins over the decision
        (_line(outcome=None), False),  # no decision yet
        (_line(outcome="exception", follow_up="gemeente-task"), True),
        (_line(supplier_name=None, follow_up="gemeente-task"), True),  # no supplier: a person
        (_line(supplier_name=None, follow_up=None), False),  # rented, nobody named
        (_line(supplier_name=None, follow_up=None, rented=False), True),  # stays, no order
        (_line(consented=False, outcome=None), True),  # the client said no to it
    ],
)
def test_klaar_only_when_every_device_is_with_the_client_or_has_a_person(
    line: DeviceLine, done: bool
) -> None:
    assert handover_done(_page(line)) is done


def test_one_device_still_with_the_supplier_keeps_the_handover_open() -> None:
    taken = _line(_progress("taken-over", takenOverOn="2026-12-14"))
    waiting = _line(device_id="scootmobiel-1", name="scootmobiel")
    assert not handover_done(_page(taken, waiting))


def test_the_timeline_says_what_happened_per_device() -> None:
    line = _line(_progress("client-contacted", followUp="supplier-order", contactedOn="2026-12-10"))
    assert progress_events(_page(line)) == [
        (
            datetime(2026, 12, 10, 9, 0, tzinfo=UTC),
            "Zorgtechniek heeft contact met u gehad over uw hoog-laagbed.",
        )
    ]


def test_the_case_worker_reads_the_progress_in_whole_sentences() -> None:
    refused = _progress("refused", followUp="gemeente-task", reasonCode="no-capacity")
    assert progress_note(refused, "het hoog-laagbed") == (
        "Geen leverancier van de nieuwe gemeente neemt het hoog-laagbed over (de leverancier "
        "heeft geen capaciteit). Een medewerker van de nieuwe gemeente heeft hiervoor een taak."
    )

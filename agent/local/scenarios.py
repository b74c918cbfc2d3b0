"""The demo's scenarios: one path of a move each, run end to end on the local network.

A :class:`Scenario` is data: a name, a one-line description (Dutch / English), the client's
devices, where the client moves to and when, and the steps the outside world takes (the BRP, the
client on the page, the suppliers' planners; ``agent.local.scenario_steps``). Every scenario gets
its own client (its own test BSN), so all of them can run one after another on one network.
What happened to each device is read from the agents afterwards (``agent.local.outcomes``),
never from the script.

To add a scenario, add one entry to ``_SCENARIOS``, for example::

    Scenario(
        "bruikleen",
        "Een bed in bruikleen gaat mee / a bed on loan moves along, with a service order",
        devices=(device("bed-1", "18 12 10", "Hoog-laagbed", ownership="bruikleen"),),
        steps=HANDOVER,
    ),

A scenario that needs a new kind of step adds it to ``scenario_steps`` (an async function of
the run). Days pass on the scenario's clock with ``let_days_pass(n)``: every agent's clock runs
ahead of the wall clock by the days in one file (``scenario_clock_file``), so deadlines fire and
``daysWithoutDevice`` counts as they would. The network (``scenario_network``) has Utrecht
(departing), Amsterdam (receiving), their suppliers, a Wlz institution address in Amsterdam,
Rotterdam as a gemeente without an agent, and an exception at Amsterdam for rollators
(12 06 06, not in its assortment) for a scenario of an alternative device.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from agent.local.network import AMSTERDAM, HULPMIDDELEN, UTRECHT, ZORGTECHNIEK, SupplierSpec
from agent.local.scenario_steps import (
    Step,
    answer_consent,
    fetch_consented_dossier,
    let_days_pass,
    play_planners,
    read_letter_step,
    read_status_page,
    report_alternative,
    report_death,
    wait_for_progress,
    wait_for_states,
    withdraw_consent,
)
from agent.local.synthetic import synthetic_bsns

__all__ = [
    "HANDOVER",
    "SCENARIOS",
    "SCENARIO_SUPPLIERS",
    "Scenario",
    "device",
    "scenario_client",
    "scenario_settings",
]

# Utrecht's supplier rents out these kinds of devices; Amsterdam's has no contract for manual
# wheelchairs (12 22), so a rented one finds no supplier there.
SCENARIO_SUPPLIERS: tuple[SupplierSpec, ...] = (
    dataclasses.replace(
        HULPMIDDELEN, contracts=(("0344", ("12 06", "12 22", "12 23", "12 36", "18 12")),)
    ),
    dataclasses.replace(ZORGTECHNIEK, contracts=(("0363", ("12 23", "12 36", "18 12")),)),
)

_AMSTERDAM_HOME = {
    "street": "Damrak",
    "houseNumber": 1,
    "postalCode": "1012LG",
    "city": "Amsterdam",
    "gemeentecode": AMSTERDAM.gemeentecode,
}
# A Wlz institution (verpleeghuis) in Amsterdam, known to Utrecht's agent by its address.
_WLZ_HOME = {
    "street": "Buitenveldertselaan",
    "houseNumber": 50,
    "postalCode": "1081AA",
    "city": "Amsterdam",
    "gemeentecode": AMSTERDAM.gemeentecode,
}
# Rotterdam has no agent in the registry.
_ROTTERDAM_HOME = {
    "street": "Coolsingel",
    "houseNumber": 40,
    "postalCode": "3011AD",
    "city": "Rotterdam",
    "gemeentecode": "0599",
}
_PHONES = {
    UTRECHT.gemeentecode: "14 030",
    AMSTERDAM.gemeentecode: "14 020",
    HULPMIDDELEN.oin: "030 123 45 67",
    ZORGTECHNIEK.oin: "020 765 43 21",
}


def scenario_settings(letters: Path, clock_file: Path) -> dict[str, Any]:
    """Settings of every agent in the scenario network (dotted TOML keys)."""
    phones = {f'handover.phone_numbers."{key}"': value for key, value in _PHONES.items()}
    exception = 'device_exceptions."12 06 06"'
    return {
        "scenario_clock_file": clock_file,
        # Days pass on the scenario clock only; the registry would call the reports future.
        "daily_reports": False,
        # Amsterdam does not take rollators over (an exception with a reason and an alternative).
        f"{exception}.reason_code": "not-in-assortment",
        f"{exception}.reason_text": "Wij hebben dit soort rollator niet in ons aanbod.",
        f"{exception}.alternative": "U krijgt van ons een andere rollator die net zo goed past.",
        "consent.letter_directory": letters,
        "takeover.deadline_interval_seconds": 0.5,
        "handover.wlz_institution_addresses": [
            f"{_WLZ_HOME['postalCode']} {_WLZ_HOME['houseNumber']}"
        ],
    } | phones


def device(
    device_id: str,
    iso_code: str,
    description: str,
    *,
    ownership: str = "huur",
    movable: bool = True,
) -> dict[str, Any]:
    """A device of the scenario's client, as the register imports it."""
    item: dict[str, Any] = {
        "deviceId": device_id,
        "isoCode": iso_code,
        "description": description,
        "customMade": not movable,
        "movable": movable,
        "ownership": ownership,
    }
    if ownership == "huur":
        # Rented from Utrecht's supplier; purchase data for the takeover price.
        item |= {
            "supplier": {"oin": HULPMIDDELEN.oin, "name": HULPMIDDELEN.name},
            "purchaseDate": "2024-01-15",
            "purchasePriceCents": 389000,
        }
    return item


_SCOOTMOBIEL = device("scootmobiel-1", "12 23 03", "Scootmobiel, vier wielen")
_BED = device("bed-1", "18 12 10", "Elektrisch verstelbaar")
_TRAPLIFT = device(
    "traplift-1", "18 30 10", "Traplift, ingebouwd", ownership="bruikleen", movable=False
)
_TILLIFT = device("tillift-1", "12 36 03", "Mobiele tillift met draagband")
_ROLSTOEL = device("rolstoel-1", "12 22 03", "Lichtgewicht, opvouwbaar")

# The steps of a handover that runs to its end: consent on the page, planners, completion.
HANDOVER: tuple[Step, ...] = (
    answer_consent(),
    play_planners,
    wait_for_states({"completed"}, {"completed"}),
    wait_for_progress,
    read_status_page,
)


@dataclass(frozen=True)
class Scenario:
    """One path of a move, as data."""

    name: str
    description: str
    devices: tuple[dict[str, Any], ...]
    steps: tuple[Step, ...]
    destination: Mapping[str, Any] = field(default_factory=lambda: dict(_AMSTERDAM_HOME))
    # Days from today to the move date: 0 moved today, positive an announced move.
    move_in_days: int = 0
    age: int = 70
    # A parent or guardian with their own address (needed under 16).
    representative: bool = False


_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "standard",
        "Verhuisd, toestemming, alles gaat mee / moved, consent, every movable device continues",
        devices=(_SCOOTMOBIEL, _BED, _TRAPLIFT),
        steps=HANDOVER,
    ),
    Scenario(
        "announced-move",
        "Verhuizing vooraf gemeld in de BRP / the BRP announces the move two weeks ahead",
        devices=(_SCOOTMOBIEL, _BED),
        steps=HANDOVER,
        move_in_days=14,
    ),
    Scenario(
        "not-connected",
        "Nieuwe gemeente niet aangesloten / the receiving gemeente has no agent: PDF by hand",
        devices=(_SCOOTMOBIEL,),
        steps=(
            answer_consent(),
            wait_for_states({"receiver-not-connected"}),
            fetch_consented_dossier,
            let_days_pass(2),
            read_status_page,
        ),
        destination=_ROTTERDAM_HOME,
    ),
    Scenario(
        "urgent",
        "Tillift: dringend, leverancier belt de volgende werkdag / urgent: contact next day",
        devices=(_TILLIFT, _SCOOTMOBIEL),
        steps=HANDOVER,
    ),
    Scenario(
        "wlz",
        "Verhuizing naar een Wlz-instelling / a move into a Wlz institution stops the Wmo takeover",
        devices=(_SCOOTMOBIEL, _BED),
        steps=(wait_for_states({"wlz-institution"}), read_letter_step("wlz"), read_status_page),
        destination=_WLZ_HOME,
    ),
    Scenario(
        "refusal",
        "Cliënt weigert toestemming / the client refuses: no data leaves, the provision ends",
        devices=(_SCOOTMOBIEL,),
        steps=(answer_consent(refuse=True), wait_for_states({"consent-refused"}), read_status_page),
    ),
    Scenario(
        "withdrawal",
        "Toestemming ingetrokken na het besluit / consent withdrawn after the decision",
        devices=(_SCOOTMOBIEL,),
        steps=(
            answer_consent(),
            wait_for_states({"orders-placed", "completed"}),
            withdraw_consent,
            # Both sides: the receiving gemeente stops once the withdrawal reached it.
            wait_for_states({"consent-withdrawn"}, {"consent-withdrawn"}),
            read_status_page,
        ),
    ),
    Scenario(
        "death",
        "Cliënt overleden voor de toestemming / the client dies before answering",
        devices=(_SCOOTMOBIEL, _BED),
        steps=(report_death, wait_for_states({"cancelled"})),
    ),
    Scenario(
        "no-supplier",
        "Geen leverancier voor de rolstoel / no contracted supplier for one device",
        devices=(_ROLSTOEL, _SCOOTMOBIEL),
        steps=(
            answer_consent(),
            play_planners,
            wait_for_states({"completed"}, {"completed"}),
            let_days_pass(3),
            read_status_page,
        ),
    ),
    Scenario(
        "bruikleen",
        "Een bed in bruikleen gaat mee / a bed on loan moves along, with a service order",
        devices=(device("bed-1", "18 12 10", "Hoog-laagbed", ownership="bruikleen"),),
        steps=HANDOVER,
    ),
    Scenario(
        "exception",
        "Rollator niet in het aanbod: een ander hulpmiddel / an exception, then an alternative",
        devices=(device("rollator-1", "12 06 06", "Rollator met zitje"),),
        steps=(
            answer_consent(),
            wait_for_states({"completed"}, {"completed"}),
            let_days_pass(3),
            report_alternative("rollator-1"),
            read_status_page,
        ),
    ),
    Scenario(
        "young-client",
        "Cliënt van 10 jaar: een ouder geeft toestemming / a parent consents for a child",
        devices=(_BED,),
        steps=(
            answer_consent(representative="M. de Boer"),
            play_planners,
            wait_for_states({"completed"}, {"completed"}),
            read_status_page,
        ),
        age=10,
        representative=True,
    ),
)
SCENARIOS: dict[str, Scenario] = {scenario.name: scenario for scenario in _SCENARIOS}

# One test BSN per scenario (from the 999 range, never a real person's), stable by position.
_BSNS = dict(
    zip(SCENARIOS, itertools.islice(synthetic_bsns(999_990_000), len(SCENARIOS)), strict=True)
)


def scenario_client(scenario: Scenario, today: date) -> tuple[str, dict[str, Any]]:
    """The scenario's test BSN and its client as the departing gemeente's register holds it."""
    bsn = _BSNS[scenario.name]
    client: dict[str, Any] = {
        "bsn": bsn,
        "name": {"initials": "J.", "surname": "Jansen"},
        "birthDate": today.replace(year=today.year - scenario.age, day=1).isoformat(),
        "address": {
            "street": "Oudegracht",
            "houseNumber": 12,
            "postalCode": "3511AB",
            "city": "Utrecht",
            "gemeentecode": UTRECHT.gemeentecode,
        },
        "contactPreferences": {"channels": ["letter"]},
        "indicatie": {
            "legalBasis": "Wmo 2015 art. 2.3.5",
            "beschikkingReference": f"UTR-{scenario.name.upper()}-0001",
            "decisionDate": (today - timedelta(days=400)).isoformat(),
            "startDate": (today - timedelta(days=380)).isoformat(),
            "endDate": (today + timedelta(days=3 * 365)).isoformat(),
        },
        "devices": list(scenario.devices),
    }
    if scenario.representative:
        client["representative"] = {
            "kind": "legal-representative",
            "name": {"initials": "M.", "surname": "Boer", "surnamePrefix": "de"},
            "contact": {"channels": ["letter"]},
            "address": {
                "street": "Nieuwegracht",
                "houseNumber": 3,
                "postalCode": "3512LC",
                "city": "Utrecht",
                "gemeentecode": UTRECHT.gemeentecode,
            },
        }
    return bsn, client

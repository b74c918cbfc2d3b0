"""The year of moves a simulation plays: who moves where and when, and how each party behaves.

Everything here is drawn from one seeded random generator before the run starts, so a run can be
repeated. Where the client moves from and to comes from the gravity model
(``agent.simulation.geography``); the rest from the shares below, which are assumptions of the
simulation (docs/simulation.md), not measurements:

- the BRP reports the move on its day (70 %), announces it 7 to 28 days ahead (20 %), or reports
  it 1 to 14 days late (10 %);
- the client consents within 3 days (77 %), late, after the reminder, 8 to 18 days after the
  request (10 %), refuses (5 %), never answers (5 %; the request expires), or consents and
  withdraws 2 to 10 days later (3 %);
- the receiving supplier contacts the client within 0 to 4 days of the order (88 %), late, 8 to 14
  days after it (8 %), or refuses the order (4 %); it takes the device over 1 to 5 days after the
  contact;
- each client has 1 to 3 devices of the kinds in :data:`DEVICE_KINDS`, by their weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final, Literal

from agent.local.network import SupplierSpec
from agent.local.synthetic import valid_bsns
from agent.simulation.geography import Gemeente, GravityModel

__all__ = [
    "DEVICE_KINDS",
    "ClientBehaviour",
    "DeviceKind",
    "Move",
    "SupplierBehaviour",
    "client_record",
    "destination_address",
    "plan_moves",
    "supplier_specs",
]


@dataclass(frozen=True)
class DeviceKind:
    iso_code: str
    description: str
    weight: int
    ownership: str = "huur"
    movable: bool = True


# ISO 9999 codes of the devices the simulated clients have, with how common each one is.
DEVICE_KINDS: Final = (
    DeviceKind("12 23 03", "Scootmobiel met vier wielen", 30),
    DeviceKind("12 22 03", "Opvouwbare rolstoel", 25),
    DeviceKind("18 12 10", "Hoog-laagbed", 20, ownership="bruikleen"),
    DeviceKind("12 36 03", "Mobiele tillift", 10),
    DeviceKind("12 06 06", "Rollator met zitje", 10),
    DeviceKind("18 30 10", "Ingebouwde traplift", 5, ownership="bruikleen", movable=False),
)
_MOVABLE: Final = tuple(kind for kind in DEVICE_KINDS if kind.movable)
# What every regional supplier has a contract for (ISO 9999 prefixes).
_CONTRACTED: Final = ("12 06", "12 22", "12 23", "12 36", "18 12")

_CLIENT_SHARES: Final = (
    ("consent", 77), ("late-consent", 10), ("refusal", 5), ("no-answer", 5), ("withdrawal", 3),
)  # fmt: skip
ClientBehaviour = Literal["consent", "late-consent", "refusal", "no-answer", "withdrawal"]
SupplierBehaviour = Literal["on-time", "late", "refuses"]
BrpTiming = Literal["on-the-day", "announced", "late"]


@dataclass(frozen=True)
class Move:
    """One move of the year: the client, their devices and what each party will do."""

    number: int
    bsn: str
    origin: Gemeente
    destination: Gemeente
    move_day: int
    brp_day: int
    brp: BrpTiming
    devices: tuple[DeviceKind, ...]
    client: ClientBehaviour
    # Days after the consent request that the client answers (or withdraws, after consenting).
    answer_after: int
    withdraw_after: int
    supplier: SupplierBehaviour
    contact_after: int
    takeover_after: int

    @property
    def key(self) -> str:
        return f"m{self.number}"

    @property
    def path(self) -> str:
        """What the simulation made happen, as a label for the report."""
        if self.client != "consent":
            return self.client
        return "consent" if self.supplier == "on-time" else f"supplier-{self.supplier}"

    def device_id(self, index: int) -> str:
        return f"{self.key}-hm{index + 1}"


def _choose(rng: random.Random, shares: tuple[tuple[Any, int], ...]) -> Any:
    values, weights = zip(*shares, strict=True)
    return rng.choices(values, weights=weights)[0]


def plan_moves(
    rng: random.Random, gravity: GravityModel, count: int, *, days: int = 365
) -> list[Move]:
    """``count`` moves spread evenly over ``days`` days, drawn from ``rng``."""
    pairs = gravity.draw(rng, count)
    bsns = valid_bsns(count)
    moves = []
    for number, ((origin, destination), bsn) in enumerate(zip(pairs, bsns, strict=True)):
        move_day = rng.randrange(days)
        brp: BrpTiming = _choose(rng, (("on-the-day", 70), ("announced", 20), ("late", 10)))
        brp_day = {
            "on-the-day": move_day,
            "announced": move_day - rng.randint(7, 28),
            "late": move_day + rng.randint(1, 14),
        }[brp]
        client: ClientBehaviour = _choose(rng, _CLIENT_SHARES)
        supplier: SupplierBehaviour = _choose(rng, (("on-time", 88), ("late", 8), ("refuses", 4)))
        # The first device can move (a client with only a built-in stairlift has no handover).
        kinds = [rng.choices(_MOVABLE, weights=[k.weight for k in _MOVABLE])[0]]
        kinds += rng.choices(DEVICE_KINDS, weights=[k.weight for k in DEVICE_KINDS], k=2)
        moves.append(
            Move(
                number=number,
                bsn=bsn,
                origin=origin,
                destination=destination,
                move_day=move_day,
                brp_day=max(brp_day, 0),
                brp=brp,
                devices=tuple(kinds[: rng.randint(1, 3)]),
                client=client,
                answer_after=rng.randint(8, 18) if client == "late-consent" else rng.randint(0, 3),
                withdraw_after=rng.randint(2, 10),
                supplier=supplier,
                contact_after=rng.randint(8, 14) if supplier == "late" else rng.randint(0, 4),
                takeover_after=rng.randint(1, 5),
            )
        )
    return sorted(moves, key=lambda move: (move.brp_day, move.number))


def supplier_specs(depots: dict[str, list[str]]) -> list[SupplierSpec]:
    """One regional supplier per depot, contracted by the gemeenten nearest to it."""
    return [
        SupplierSpec(
            f"leverancier-{depot}",
            f"Hulpmiddelencentrum {depot.capitalize()}",
            f"{70000000 + number:08d}",
            tuple((code, _CONTRACTED) for code in sorted(codes)),
        )
        for number, (depot, codes) in enumerate(sorted(depots.items()))
    ]


def _address(gemeente: Gemeente, number: int) -> dict[str, Any]:
    return {
        "street": "Dorpsstraat",
        "houseNumber": number % 500 + 1,
        "postalCode": "1234AB",
        "city": gemeente.name,
        "gemeentecode": gemeente.code,
    }


def destination_address(move: Move) -> dict[str, Any]:
    """The client's new address in the receiving gemeente."""
    return _address(move.destination, move.number + 7)


def client_record(move: Move, start: date, supplier: SupplierSpec) -> dict[str, Any]:
    """The client as the departing gemeente's register imports it (``start``: day 0)."""
    devices = []
    for index, kind in enumerate(move.devices):
        device: dict[str, Any] = {
            "deviceId": move.device_id(index),
            "isoCode": kind.iso_code,
            "description": kind.description,
            "customMade": not kind.movable,
            "movable": kind.movable,
            "ownership": kind.ownership,
        }
        if kind.ownership == "huur":
            device |= {
                "supplier": {"oin": supplier.oin, "name": supplier.name},
                "purchaseDate": (start - timedelta(days=400)).isoformat(),
                "purchasePriceCents": 250000,
            }
        devices.append(device)
    return {
        "bsn": move.bsn,
        "name": {"initials": "J.", "surname": f"Client {move.number}"},
        "birthDate": date(1950, 1, 1).isoformat(),
        "address": _address(move.origin, move.number),
        "contactPreferences": {"channels": ["letter"]},
        "indicatie": {
            "legalBasis": "Wmo 2015 art. 2.3.5",
            "beschikkingReference": f"SIM-{move.number}",
            "decisionDate": (start - timedelta(days=400)).isoformat(),
            "startDate": (start - timedelta(days=380)).isoformat(),
            "endDate": (start + timedelta(days=3 * 365)).isoformat(),
        },
        "devices": devices,
    }

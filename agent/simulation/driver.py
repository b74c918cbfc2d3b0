"""The simulated year, day by day: the BRP, the clients and the suppliers' planners act.

Every agent reads the same clock file (``scenario_clock_file``): the wall clock plus the days
written in it. The driver writes day ``d`` of the year, does what the outside world does that day,
and waits until the day's wall seconds have passed; meanwhile the agents deliver their messages
and their deadline jobs see the new day. The outside world acts only through the agents' public
faces: the BRP push endpoint, the case system's register import and consent record (consent
given by phone), the client's page (a withdrawal, with the link from the letter) and the
planner's API. A restart kills a host with SIGKILL and starts it again while the clock waits.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from agent.local.brp_simulator import moved, push_events
from agent.local.demo_consent import letter_link, withdraw_on_page
from agent.local.hosted import HostedNetwork, HostedOrganisation, LoopbackTransport
from agent.local.network import SupplierSpec
from agent.simulation.world import Move, client_record, destination_address

__all__ = ["Contact", "Driver", "SimulationFailed", "run_year"]

_CONSENTED_DATA = ["identity", "address", "devices", "indicatie"]
# Concurrent calls of the outside world (the agents' two cores are the limit, not this).
_PARALLEL = 8
_IMPORT_BATCH = 500


class SimulationFailed(Exception):
    """An agent refused what the outside world did, or a process did not come back."""


def _unanswered(
    organisation: HostedOrganisation, what: str, exc: httpx.HTTPError
) -> SimulationFailed:
    return SimulationFailed(
        f"{organisation.name} did not answer {what} ({type(exc).__name__}); the machine may be "
        "too busy for this many moves per simulated day: try a larger --day-seconds"
    )


def _refused(
    organisation: HostedOrganisation, what: str, answer: httpx.Response
) -> SimulationFailed:
    return SimulationFailed(
        f"{organisation.name} answered {what} with {answer.status_code}: {answer.text[:300]}"
    )


@dataclass(frozen=True)
class Contact:
    """A planner's contact with a client, against the order's contact deadline."""

    on: date
    contact_before: date


@dataclass
class _Order:
    received_day: int
    contacted_day: int | None = None
    done: bool = False


@dataclass
class Driver:
    """Plays the outside world of one simulation on a hosted network."""

    network: HostedNetwork
    moves: Sequence[Move]
    suppliers: dict[str, SupplierSpec]
    start: date
    clock_file: Path
    letters: Path
    http: httpx.AsyncClient
    dossiers: dict[int, list[str]] = field(default_factory=dict)
    requested_day: dict[int, int] = field(default_factory=dict)
    contacts: list[Contact] = field(default_factory=list)
    _orders: dict[str, _Order] = field(default_factory=dict)
    _by_dossier: dict[str, Move] = field(default_factory=dict)
    # Day -> the moves the BRP reports that day; day -> the clients who act that day.
    _reported: dict[int, list[Move]] = field(default_factory=lambda: defaultdict(list))
    _agenda: dict[int, list[Move]] = field(default_factory=lambda: defaultdict(list))
    _limit: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(_PARALLEL))

    def __post_init__(self) -> None:
        for move in self.moves:
            self._reported[move.brp_day].append(move)

    def _organisation(self, key: str) -> HostedOrganisation:
        return self.network.organisations[key]

    async def _request(
        self, organisation: HostedOrganisation, method: str, path: str, **options: Any
    ) -> httpx.Response:
        async with self._limit:
            try:
                return await self.http.request(
                    method, organisation.base_url + path, headers=self.network.auth(), **options
                )
            except httpx.HTTPError as exc:
                raise _unanswered(organisation, f"{method} {path}", exc) from exc

    async def _call(
        self, organisation: HostedOrganisation, method: str, path: str, **options: Any
    ) -> Any:
        answer = await self._request(organisation, method, path, **options)
        if answer.status_code >= 300:
            raise _refused(organisation, f"{method} {path}", answer)
        return answer.json()

    async def _record_status(
        self, supplier: HostedOrganisation, order_id: str, body: dict[str, Any]
    ) -> bool:
        """The planner records a status; False when the order ended meanwhile (withdrawn)."""
        path = f"/v1/orders/{order_id}/status"
        answer = await self._request(supplier, "POST", path, json=body)
        if answer.status_code == 409:
            return False
        if answer.status_code >= 300:
            raise _refused(supplier, f"POST {path}", answer)
        return True

    def now(self, day: int) -> datetime:
        """The agents' now on day ``day`` of the year (the wall clock plus the day offset)."""
        return datetime.now(UTC) + timedelta(days=day)

    def set_day(self, day: int) -> None:
        """Every agent's clock moves to day ``day`` (written aside and renamed: never half)."""
        written = self.clock_file.with_name(f"{self.clock_file.name}.new")
        written.write_text(str(day), "utf-8")
        written.replace(self.clock_file)

    async def import_clients(self) -> None:
        """Each departing gemeente's register gets its clients before the year starts."""
        by_origin: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for move in self.moves:
            supplier = self.suppliers[move.origin.code]
            by_origin[move.origin.code].append(client_record(move, self.start, supplier))

        async def load(code: str, clients: list[dict[str, Any]]) -> None:
            gemeente = self._organisation(f"g{code}")
            for begin in range(0, len(clients), _IMPORT_BATCH):
                batch = clients[begin : begin + _IMPORT_BATCH]
                await self._call(gemeente, "POST", "/v1/provisions/imports", json=batch)

        await asyncio.gather(*(load(code, clients) for code, clients in by_origin.items()))

    async def play_day(self, day: int) -> None:
        """What the BRP, the clients and the planners do on day ``day``."""
        by_origin: dict[str, list[Move]] = defaultdict(list)
        for move in self._reported.pop(day, []):
            by_origin[move.origin.code].append(move)
        await asyncio.gather(*(self._report_moves(day, moves) for moves in by_origin.values()))
        await asyncio.gather(*(self._client(day, move) for move in self._agenda.pop(day, [])))
        await asyncio.gather(
            *(self._planner(day, key) for key in {s.key for s in self.suppliers.values()})
        )

    async def _report_moves(self, day: int, moves: list[Move]) -> None:
        """The BRP reports each move to the departing gemeente; its new dossier is noted."""
        gemeente = self._organisation(f"g{moves[0].origin.code}")
        for move in moves:
            before = await self._waiting_ids(gemeente)
            event = moved(
                move.bsn,
                from_code=move.origin.code,
                to_code=move.destination.code,
                address=destination_address(move),
                move_date=self.start + timedelta(days=move.move_day),
            )
            async with self._limit:
                try:
                    statuses = await push_events(
                        self.http, gemeente.base_url + "/v1/brp-events", self.network.token, [event]
                    )
                except httpx.HTTPError as exc:
                    raise _unanswered(gemeente, "a BRP event", exc) from exc
            if statuses != [202]:
                raise SimulationFailed(f"{gemeente.name} refused a BRP event: {statuses}")
            new = sorted((await self._waiting_ids(gemeente)) - before)
            self.dossiers[move.number] = new
            self.requested_day[move.number] = day
            for dossier_id in new:
                self._by_dossier[dossier_id] = move
            if new and move.client != "no-answer":
                self._agenda[day + move.answer_after].append(move)
            if new and move.client == "withdrawal":
                self._agenda[day + move.answer_after + move.withdraw_after].append(move)

    async def _waiting_ids(self, gemeente: HostedOrganisation) -> set[str]:
        rows = await self._call(gemeente, "GET", "/v1/dossiers?state=waiting-for-consent")
        return {row["dossierId"] for row in rows}

    async def _client(self, day: int, move: Move) -> None:
        dossier_id = self.dossiers[move.number][0]
        gemeente = self._organisation(f"g{move.origin.code}")
        asked = self.requested_day[move.number]
        if move.client == "withdrawal" and day > asked + move.answer_after:
            await self._withdraw(dossier_id)
            return
        refused = move.client == "refusal"
        consent = {
            "outcome": "refused" if refused else "given",
            "dataKinds": [] if refused else _CONSENTED_DATA,
            "deviceIds": []
            if refused
            else [move.device_id(i) for i, kind in enumerate(move.devices) if kind.movable],
            "channel": "phone",
            "givenBy": "client",
            "givenAt": (self.now(day) - timedelta(seconds=1)).isoformat(),
            "recordedBy": "Consulent Wmo",
        }
        await self._call(gemeente, "POST", f"/v1/dossiers/{dossier_id}/consent", json=consent)

    async def _withdraw(self, dossier_id: str) -> None:
        """The client opens the letter's link and withdraws the consent on the page."""
        letter = self.letters / f"{dossier_id}-invitation.txt"
        link = letter_link(await asyncio.to_thread(letter.read_text, "utf-8"))
        async with (
            self._limit,
            httpx.AsyncClient(transport=LoopbackTransport(), timeout=30.0) as browser,
        ):
            opened = await browser.get(link)
            if opened.status_code != 303:
                raise SimulationFailed(f"the personal link answered {opened.status_code}")
            await withdraw_on_page(browser, link)

    async def _planner(self, day: int, supplier_key: str) -> None:
        """A supplier's planner: contacts, takes over, or refuses, as each move says."""
        supplier = self._organisation(supplier_key)
        for order in await self._call(supplier, "GET", "/v1/orders?open=true"):
            move = self._by_dossier.get(order["dossierId"])
            if move is None:
                continue
            seen = self._orders.setdefault(order["orderId"], _Order(received_day=day))
            await self._act(day, supplier, order, move, seen)

    async def _act(
        self, day: int, supplier: HostedOrganisation, order: Any, move: Move, seen: _Order
    ) -> None:
        order_id = order["orderId"]
        if seen.done:
            return
        if move.supplier == "refuses":
            body = {
                "status": "refused",
                "reasonCode": "no-capacity",
                "reasonText": "Wij hebben deze maand geen ruimte in onze planning.",
            }
            await self._record_status(supplier, order_id, body)
            seen.done = True
        elif seen.contacted_day is None and day >= seen.received_day + move.contact_after:
            if not await self._record_status(supplier, order_id, {"status": "client-contacted"}):
                seen.done = True
                return
            seen.contacted_day = day
            self.contacts.append(
                Contact(
                    self.start + timedelta(days=day),
                    date.fromisoformat(order["contactBefore"]),
                )
            )
        elif seen.contacted_day is not None and day >= seen.contacted_day + move.takeover_after:
            await self._record_status(supplier, order_id, {"status": "taken-over"})
            seen.done = True

    def uncontacted(self) -> int:
        """Orders the planner received and never contacted nor refused (at the year's end)."""
        return sum(
            1 for seen in self._orders.values() if seen.contacted_day is None and not seen.done
        )


async def run_year(
    driver: Driver,
    *,
    days: int,
    day_seconds: float,
    restart_days: dict[int, int],
    on_day: Callable[[int], None],
    start_seconds: float,
    before_restart: Callable[[int], None],
) -> int:
    """Play ``days`` days; on a day in ``restart_days`` that host is killed and started again."""
    restarts = 0
    for day in range(days):
        began = time.monotonic()
        driver.set_day(day)
        if day in restart_days:
            before_restart(restart_days[day])
            await driver.network.restart(restart_days[day], driver.http, seconds=start_seconds)
            restarts += 1
        await driver.play_day(day)
        on_day(day)
        await asyncio.sleep(max(0.0, day_seconds - (time.monotonic() - began)))
    return restarts

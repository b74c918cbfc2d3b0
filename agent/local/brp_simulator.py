"""A small BRP event simulator: builds BRP move events, serves them as a feed and pushes them.

The feed follows the BRP API Gebeurtenissen work: ``GET /gebeurtenissen?cursor=&limiet=`` gives
the subscriber's unread events in publication order (after ``cursor``, the id of the last event
it received, when given) and marks them read; ``POST /gebeurtenissen/ongelezen`` marks events
unread again (``naGebeurtenis``: after an event id, or ``vanaf``: from a moment). Used by the
tests, the benchmark, the demo and ``meeverhuizen brp simulate``. Test data only: the BSNs it
makes pass the elfproef but belong to nobody.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import click
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.local.synthetic import synthetic_bsns

__all__ = [
    "BATCH_MEDIA_TYPE",
    "BRP_SOURCE",
    "BrpSimulator",
    "brp",
    "create_simulator_app",
    "died",
    "emigrated",
    "generate_feed",
    "move_corrected",
    "move_withdrawn",
    "moved",
    "moved_within",
    "push_events",
]

BRP_SOURCE = "urn:nld:oin:00000001823288444000:systeem:BRP-component"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"


def _event(
    event_type: str,
    data: dict[str, Any],
    *,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": BRP_SOURCE,
        "type": event_type,
        "time": (time or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }
    if subject is not None:
        event["subject"] = subject
    return event


def _place(address: dict[str, Any] | None, start: date, *, briefadres: bool) -> dict[str, Any]:
    place: dict[str, Any] = {"datumAanvangAdreshouding": start.isoformat()}
    if address is not None:
        place |= {
            "straat": address["street"],
            "huisnummer": address["houseNumber"],
            "postcode": address["postalCode"],
            "woonplaats": address["city"],
        }
    place["functieAdres"] = {"code": "B" if briefadres else "W"}
    return place


def moved(
    bsn: str,
    *,
    from_code: str,
    to_code: str,
    address: dict[str, Any] | None,
    move_date: date,
    briefadres: bool = False,
    event_id: str | None = None,
) -> dict[str, Any]:
    """``nl.brp.verhuisd`` / ``buitengemeentelijk``: a move to another gemeente."""
    data = {
        "burgerservicenummer": bsn,
        "gemeenteVanInschrijving": {"code": to_code},
        "vorigeGemeenteVanInschrijving": {"code": from_code},
        "verblijfplaats": _place(address, move_date, briefadres=briefadres),
    }
    return _event("nl.brp.verhuisd", data, subject="buitengemeentelijk", event_id=event_id)


def moved_within(
    bsn: str, *, code: str, address: dict[str, Any], move_date: date, event_id: str | None = None
) -> dict[str, Any]:
    """``nl.brp.verhuisd`` / ``binnengemeentelijk``: a new address in the same gemeente."""
    data = {
        "burgerservicenummer": bsn,
        "gemeenteVanInschrijving": {"code": code},
        "verblijfplaats": _place(address, move_date, briefadres=False),
    }
    return _event("nl.brp.verhuisd", data, subject="binnengemeentelijk", event_id=event_id)


def emigrated(bsn: str, *, on: date, event_id: str | None = None) -> dict[str, Any]:
    """``nl.brp.verhuisd`` / ``emigratie``: the person left the Netherlands."""
    data = {
        "burgerservicenummer": bsn,
        "verblijfplaats": {"datumAanvangAdreshouding": on.isoformat()},
    }
    return _event("nl.brp.verhuisd", data, subject="emigratie", event_id=event_id)


def move_corrected(bsn: str, *, original_date: date, event_id: str | None = None) -> dict[str, Any]:
    """``nl.brp.verblijfplaats-gecorrigeerd`` with the start date before the correction."""
    data = {
        "burgerservicenummer": bsn,
        "verblijfplaats": {"datumAanvangAdreshouding": original_date.isoformat()},
    }
    return _event("nl.brp.verblijfplaats-gecorrigeerd", data, event_id=event_id)


def move_withdrawn(bsn: str, *, move_date: date, event_id: str | None = None) -> dict[str, Any]:
    """The announced move was withdrawn (own type; the BRP work has none)."""
    data = {
        "burgerservicenummer": bsn,
        "verblijfplaats": {"datumAanvangAdreshouding": move_date.isoformat()},
    }
    return _event("nl.meeverhuizen.brp.verhuizing-ingetrokken", data, event_id=event_id)


def died(bsn: str, *, on: date, event_id: str | None = None) -> dict[str, Any]:
    """``nl.brp.overleden``."""
    data = {"burgerservicenummer": bsn, "datumOverlijden": {"datum": on.isoformat()}}
    return _event("nl.brp.overleden", data, event_id=event_id)


_OTHER_CODES = ("0363", "0518", "0599", "0772", "0014", "0153")


def generate_feed(
    count: int,
    *,
    gemeentecode: str,
    clients: Sequence[str] = (),
    seed: int = 5,
    move_date: date = date(2025, 6, 1),
) -> list[dict[str, Any]]:
    """``count`` events of all kinds; each BSN in ``clients`` moves away once (in order)."""
    generator = random.Random(seed)  # noqa: S311 - test data, not secrets
    bsns = synthetic_bsns(200_000_000)
    relevant = iter(clients)
    every = max(1, count // max(1, len(clients))) if clients else 0
    events = []
    for index in range(count):
        client = next(relevant, None) if every and index % every == 0 else None
        target = generator.choice([c for c in _OTHER_CODES if c != gemeentecode])
        address = {
            "street": "Nieuwe Straat",
            "houseNumber": generator.randint(1, 300),
            "postalCode": "1012LG",
            "city": "Elders",
        }
        if client is not None:
            events.append(
                moved(client, from_code=gemeentecode, to_code=target, address=address,
                      move_date=move_date)
            )  # fmt: skip
            continue
        bsn = next(bsns)
        kind = generator.randrange(6)
        if kind == 0:
            events.append(
                moved_within(bsn, code=gemeentecode, address=address, move_date=move_date)
            )
        elif kind == 1:
            events.append(emigrated(bsn, on=move_date))
        elif kind == 2:
            events.append(move_corrected(bsn, original_date=move_date))
        elif kind == 3:
            events.append(died(bsn, on=move_date))
        elif kind == 4:
            events.append(
                moved(bsn, from_code=target, to_code=gemeentecode, address=address | {
                    "city": "Hier"}, move_date=move_date)
            )  # fmt: skip
        else:
            events.append(
                moved(bsn, from_code=gemeentecode, to_code=target, address=address,
                      move_date=move_date)
            )  # fmt: skip
    return events


@dataclass
class BrpSimulator:
    """Published events and one subscriber's read position."""

    events: list[dict[str, Any]] = field(default_factory=list)
    read_position: int = 0
    published_at: list[datetime] = field(default_factory=list)
    down: bool = False

    def publish(self, *events: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        self.events.extend(events)
        self.published_at.extend(now for _ in events)

    def page(self, cursor: str | None, limit: int) -> list[dict[str, Any]]:
        """Unread events after ``cursor`` (or the read position), which are then marked read."""
        start = self.read_position if cursor is None else self._index(cursor) + 1
        page = self.events[start : start + limit]
        self.read_position = max(self.read_position, start + len(page))
        return page

    def mark_unread(
        self, *, after_event_id: str | None = None, since: datetime | None = None
    ) -> None:
        """Events after an event id, or published from a moment on, are unread again."""
        if after_event_id is not None:
            self.read_position = self._index(after_event_id) + 1
        elif since is not None:
            self.read_position = next(
                (i for i, at in enumerate(self.published_at) if at >= since), len(self.events)
            )

    def _index(self, event_id: str) -> int:
        for index, event in enumerate(self.events):
            if event["id"] == event_id:
                return index
        raise KeyError(event_id)


def create_simulator_app(simulator: BrpSimulator) -> Starlette:
    """The feed as an ASGI app (``GET /gebeurtenissen``, ``POST /gebeurtenissen/ongelezen``)."""

    async def feed(request: Request) -> Response:
        if simulator.down:
            return Response(status_code=503)
        try:
            limit = int(request.query_params.get("limiet", "10"))
            page = simulator.page(request.query_params.get("cursor"), limit)
        except (ValueError, KeyError):
            return JSONResponse({"title": "invalid cursor or limiet"}, status_code=400)
        return Response(json.dumps(page), media_type=BATCH_MEDIA_TYPE)

    async def unread(request: Request) -> Response:
        body = await request.json()
        try:
            since = body.get("vanaf")
            simulator.mark_unread(
                after_event_id=body.get("naGebeurtenis"),
                since=datetime.fromisoformat(since) if since else None,
            )
        except (KeyError, ValueError):
            return JSONResponse({"title": "unknown event or bad moment"}, status_code=400)
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/gebeurtenissen", feed, methods=["GET"]),
            Route("/gebeurtenissen/ongelezen", unread, methods=["POST"]),
        ]
    )


async def push_events(
    http: httpx.AsyncClient,
    url: str,
    token: str,
    events: Sequence[dict[str, Any]],
    *,
    batch_size: int = 100,
) -> list[int]:
    """Push events as batches (``application/cloudevents-batch+json``); the status codes."""
    statuses = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": BATCH_MEDIA_TYPE}
    for start in range(0, len(events), batch_size):
        body = json.dumps(list(events[start : start + batch_size])).encode()
        response = await http.post(url, content=body, headers=headers)
        statuses.append(response.status_code)
    return statuses


@click.group()
def brp() -> None:
    """BRP events: a simulator that serves a feed and pushes events."""


@brp.command()
@click.option("--gemeentecode", required=True, help="The agent's gemeente (events move away).")
@click.option("--events", "count", default=1000, show_default=True, help="Events to make.")
@click.option("--client", "clients", multiple=True, help="BSN of a client with devices (repeat).")
@click.option("--push", "push_url", default=None, help="Push to this URL instead of serving.")
@click.option("--token", envvar="MEEVERHUIZEN_BRP_TOKEN", default="", help="Push bearer token.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8300, show_default=True)
def simulate(
    gemeentecode: str,
    count: int,
    clients: tuple[str, ...],
    push_url: str | None,
    token: str,
    host: str,
    port: int,
) -> None:
    """Serve a feed of generated BRP events, or push them to an agent."""
    events = generate_feed(count, gemeentecode=gemeentecode, clients=clients)
    if push_url is not None:

        async def run() -> list[int]:
            async with httpx.AsyncClient(timeout=30.0) as http:
                return await push_events(http, push_url, token, events)

        statuses = asyncio.run(run())
        click.echo(
            f"pushed {len(events)} events in {len(statuses)} batches: {sorted(set(statuses))}"
        )
        return
    import uvicorn

    simulator = BrpSimulator()
    simulator.publish(*events)
    click.echo(f"serving {len(events)} events at http://{host}:{port}/gebeurtenissen")
    uvicorn.run(
        create_simulator_app(simulator),
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
    )

"""What the agents hold at the end of a simulation, read through their APIs, per move.

Per gemeente: its dossiers, the orders it placed, its open tasks and its outbox; per supplier: its
open tasks and outbox. Each move's devices get their outcome, days without device and owner the
way the demo reads them (``agent.local.outcomes``): from the dossiers at both gemeenten, the
receiving gemeente's orders and everyone's open tasks, never from the simulation's script. The
simulation's own knowledge is used for one thing only: which dossier belongs to which move.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from agent.core.states import OPEN_STATES
from agent.local.hosted import HostedNetwork, HostedOrganisation
from agent.local.outcomes import AgentState, device_outcomes
from agent.simulation.report import DeviceResult, MoveResult
from agent.simulation.world import Move

__all__ = ["Readout", "read_network"]

_PARALLEL = 8


@dataclass
class Readout:
    """Everything read from the agents, and each move's result."""

    moves: list[MoveResult]
    tasks: dict[str, dict[str, int]]
    dead_letters: int
    # Dossiers no move accounts for (a second dossier for one move would be one).
    stray_dossiers: int
    consent_answered: int
    consent_expired: int


@dataclass
class _Organisations:
    dossiers: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    orders: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    tasks: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    task_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    messages: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0


async def read_network(
    network: HostedNetwork,
    http: httpx.AsyncClient,
    moves: Sequence[Move],
    dossiers: Mapping[int, list[str]],
    today: date,
) -> Readout:
    """Read every organisation, then each move's dossiers at its two gemeenten."""
    limit = asyncio.Semaphore(_PARALLEL)

    async def get(organisation: HostedOrganisation, path: str) -> Any:
        async with limit:
            answer = await http.get(organisation.base_url + path, headers=network.auth())
        return answer.json() if answer.status_code == 200 else None

    seen = _Organisations()

    async def organisation(org: HostedOrganisation) -> None:
        label = org.gemeentecode or org.name
        tasks = [t for t in await get(org, "/v1/tasks") or [] if t["state"] == "open"]
        seen.task_counts[label] = dict(Counter(task["kind"] for task in tasks))
        for task in tasks:
            seen.tasks[task["dossierId"]].append(task | {"party": org.name})
        for entry in await get(org, "/v1/outbox") or []:
            seen.messages[entry["dossierId"]] += 1
            seen.dead_letters += entry["state"] == "dead"
        if org.role == "gemeente":
            rows = await get(org, "/v1/dossiers") or []
            seen.dossiers[org.key] = {row["dossierId"]: row for row in rows}
            for placed in await get(org, "/v1/placed-orders") or []:
                seen.orders[placed["dossierId"]].append(placed)

    await asyncio.gather(*(organisation(org) for org in network.organisations.values()))

    consent: Counter[str] = Counter()

    async def one(move: Move) -> MoveResult:
        ids = dossiers.get(move.number, [])
        origin = network.organisations[f"g{move.origin.code}"]
        destination = network.organisations[f"g{move.destination.code}"]
        dossier_id = ids[0] if ids else None
        departing = receiving = None
        if dossier_id is not None:
            departing = await get(origin, f"/v1/dossiers/{dossier_id}")
            reached = {step["toState"] for step in (departing or {}).get("timeline", ())}
            if reached & {"consent-given", "consent-refused"}:
                consent["answered"] += 1
            elif "consent-expired" in reached:
                consent["expired"] += 1
            if dossier_id in seen.dossiers.get(destination.key, {}):
                receiving = await get(destination, f"/v1/dossiers/{dossier_id}")
        return _result(move, ids, departing, receiving, seen, today)

    results = list(await asyncio.gather(*(one(move) for move in moves)))
    known = {dossier_id for ids in dossiers.values() for dossier_id in ids}
    held = [set(rows) for rows in seen.dossiers.values()]
    stray = sum(len(ids - known) for ids in held)
    return Readout(
        moves=results,
        tasks=seen.task_counts,
        dead_letters=seen.dead_letters,
        stray_dossiers=stray,
        consent_answered=consent["answered"],
        consent_expired=consent["expired"],
    )


def _result(
    move: Move,
    ids: list[str],
    departing: dict[str, Any] | None,
    receiving: dict[str, Any] | None,
    seen: _Organisations,
    today: date,
) -> MoveResult:
    dossier_id = ids[0] if ids else None
    tasks = tuple(seen.tasks.get(dossier_id or "", ()))
    state = AgentState(
        departing=departing,
        receiving=receiving,
        placed_orders=tuple(seen.orders.get(dossier_id or "", ())),
        tasks=tasks,
    )
    devices = [
        {
            "deviceId": move.device_id(i),
            "isoCode": kind.iso_code,
            "description": kind.description,
            "movable": kind.movable,
        }
        for i, kind in enumerate(move.devices)
    ]
    outcomes = device_outcomes(devices, state, today=today) if departing else []
    departing_state = departing["state"] if departing else None
    receiving_state = receiving["state"] if receiving else None
    final = departing_state is not None and departing_state not in OPEN_STATES
    if receiving_state is not None:
        final = final and receiving_state not in OPEN_STATES
    return MoveResult(
        move=move.number,
        origin=move.origin.code,
        destination=move.destination.code,
        dossier_id=dossier_id,
        departing_dossiers=len(ids),
        receiving_dossiers=1 if receiving else 0,
        departing_state=departing_state,
        receiving_state=receiving_state,
        final=final,
        owner_tasks=len(tasks),
        messages=seen.messages.get(dossier_id or "", 0),
        devices=tuple(
            DeviceResult(
                iso_code=item["isoCode"],
                outcome=item["outcome"],
                days_without_device=item["daysWithoutDevice"],
                owner=None if item["owner"] is None else _owner_text(item["owner"]),
            )
            for item in outcomes
        ),
        path=move.path,
        waiting_on="client" if departing_state == "waiting-for-consent" and not tasks else None,
    )


def _owner_text(owner: Mapping[str, Any]) -> str:
    return f"{owner['party']}: {owner['text']}"

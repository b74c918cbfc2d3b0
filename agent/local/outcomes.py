"""Where each device ended and who acts next, read from the agents' own state through their APIs.

For every device of the scenario's client: its ``outcome`` (``continued``, ``alternative``,
``not-movable``, ``stopped``; null while nothing is decided), ``daysWithoutDevice`` and its
``owner`` (null when nothing is left to do). Everything comes from what the agents hold: the
departing and receiving dossiers, the decisions, the orders the receiving gemeente placed and the
open tasks of every agent. The scenario's script only says which devices the client has.

Days are counted on the agents' clock (the scenario's clock): from the move date until the
client has the device, or its alternative, under the new gemeente; 0 when it never left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx

from agent.core.tasks import TaskKind
from agent.local.network import LocalAgent, LocalNetwork, LocalSupplier

__all__ = ["AgentState", "device_outcomes", "open_tasks", "read_state"]

# Departing states in which nothing moves to the new gemeente any more.
_STOPPED_STATES = frozenset(
    {"consent-refused", "consent-expired", "consent-withdrawn", "cancelled", "failed"}
    | {"wlz-institution"}
)
# Order statuses with the device at the client under the new gemeente.
_ORDER_DONE = frozenset({"taken-over", "inspected", "replaced"})
# Reason codes of an exception under which the client keeps nothing from the Wmo.
_STOPPED_REASONS = frozenset({"client-owned", "wlz-institution"})


@dataclass(frozen=True)
class AgentState:
    """What one dossier looks like at each agent."""

    departing: dict[str, Any] | None
    receiving: dict[str, Any] | None
    placed_orders: tuple[dict[str, Any], ...]
    # The open tasks of every party about this dossier.
    tasks: tuple[dict[str, Any], ...]


async def _get(http: httpx.AsyncClient, base_url: str, token: dict[str, str], path: str) -> Any:
    answer = await http.get(base_url + path, headers=token)
    return answer.json() if answer.status_code == 200 else None


async def read_state(
    http: httpx.AsyncClient, network: LocalNetwork, dossier_id: str | None
) -> AgentState:
    """The dossier at both gemeenten, the receiving gemeente's orders and its open tasks."""
    departing = receiving = None
    orders: list[dict[str, Any]] = []
    agents: Sequence[LocalAgent | LocalSupplier] = (
        *network.agents.values(),
        *network.suppliers.values(),
    )
    if dossier_id is not None:
        for agent in network.agents.values():
            view = await _get(http, agent.base_url, agent.auth(), f"/v1/dossiers/{dossier_id}")
            if view is None:
                continue
            if view["side"] == "departing":
                departing = view
            else:
                receiving = view
                placed = await _get(http, agent.base_url, agent.auth(), "/v1/placed-orders") or []
                orders = [o for o in placed if o["dossierId"] == dossier_id]
    tasks = []
    for party in agents:
        for task in await _get(http, party.base_url, party.auth(), "/v1/tasks?state=open") or []:
            # Without a dossier (the move never started one): the tasks about no dossier.
            if task["dossierId"] == dossier_id:
                tasks.append(task | {"party": party.spec.name})
    return AgentState(departing, receiving, tuple(orders), tuple(tasks))


def open_tasks(state: AgentState) -> list[dict[str, Any]]:
    """The open tasks about this dossier: party, kind, text (and the device when it is one)."""
    return [
        {
            "party": task["party"],
            "kind": task["kind"],
            "text": task["description"],
            "deviceId": task.get("deviceId"),
        }
        for task in state.tasks
    ]


def _decisions(view: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {} if view is None else {d["deviceId"]: d for d in view["decisions"]}


def _outcome(device: Mapping[str, Any], state: AgentState) -> str | None:
    if not device["movable"]:
        return "not-movable"
    departing = state.departing
    if departing is not None and departing["state"] in _STOPPED_STATES:
        return "stopped"
    decision = _decisions(state.receiving).get(device["deviceId"]) or _decisions(departing).get(
        device["deviceId"]
    )
    if decision is None:
        # Past the offer without a decision on it: the client did not consent to this device.
        offered = departing is not None and departing["state"] in {"decided", "completed"}
        return "stopped" if offered else None
    if decision["outcome"] == "take-over":
        return "continued"
    if decision["reasonCode"] == "not-movable":
        return "not-movable"
    if decision["reasonCode"] in _STOPPED_REASONS:
        return "stopped"
    return "alternative"


# Tasks for the administration after a handover (beschikking, eigen bijdrage, transfer price,
# a letter to send by hand): someone acts, but the client has the device meanwhile.
_PAPERWORK_TASKS: frozenset[TaskKind] = frozenset(
    {
        "end-beschikking",
        "eigen-bijdrage-start",
        "eigen-bijdrage-end",
        "transfer-price",
        "letter-not-sent",
    }
)


def _owner(
    device: Mapping[str, Any], outcome: str | None, state: AgentState
) -> dict[str, Any] | None:
    device_id, tasks = device["deviceId"], state.tasks
    # A task about this device first; a task about the whole dossier for its movable devices,
    # except the back office's own paperwork, which does not keep a device from the client.
    own = [t for t in tasks if t.get("deviceId") == device_id]
    if not own and device["movable"]:
        own = [t for t in tasks if t.get("deviceId") is None and t["kind"] not in _PAPERWORK_TASKS]
    if own:
        task = own[0]
        return {"party": task["party"], "kind": task["kind"], "text": task["description"]}
    order = _active_order(state, device_id)
    if outcome == "continued" and order is not None and order["status"] not in _ORDER_DONE:
        return {
            "party": order["supplierName"],
            "kind": "takeover-order",
            "text": f"De leverancier neemt uiterlijk op {order['contactBefore']} contact op "
            f"met de cliënt (status: {order['status']}).",
        }
    return None


def _active_order(state: AgentState, device_id: str) -> dict[str, Any] | None:
    orders = [o for o in state.placed_orders if o["deviceId"] == device_id and o["active"]]
    return orders[-1] if orders else None


def _day(text: str) -> date:
    return datetime.fromisoformat(text).date()


def _arrived(
    device: Mapping[str, Any], outcome: str | None, owner: object, state: AgentState
) -> date | None:
    """The day the client had the device (or its alternative) under the new gemeente."""
    if outcome not in ("continued", "alternative") or owner is not None:
        return None
    order = _active_order(state, device["deviceId"])
    if order is not None:
        return _day(order["updatedAt"]) if order["status"] in _ORDER_DONE else None
    receiving = state.receiving
    if receiving is None:
        return None
    # No order needed: the device came under the new gemeente with its decision.
    decided = [s["at"] for s in receiving["timeline"] if s["toState"] == "decided"]
    return _day(decided[0]) if decided else None


def device_outcomes(
    devices: Sequence[Mapping[str, Any]],
    state: AgentState,
    *,
    today: date,
) -> list[dict[str, Any]]:
    """Per device: outcome, days without it and the owner, as the agents' state says."""
    view = state.departing or state.receiving
    move_date = date.fromisoformat(view["moveDate"]) if view and view["moveDate"] else today
    result = []
    for device in devices:
        outcome = _outcome(device, state)
        owner = _owner(device, outcome, state)
        if outcome in ("not-movable", "stopped"):
            # The device stays where it is: the client never went without it.
            days = 0
        else:
            arrived = _arrived(device, outcome, owner, state)
            days = max(0, ((arrived or today) - move_date).days)
        result.append(
            {
                "deviceId": device["deviceId"],
                "isoCode": device["isoCode"],
                "description": device["description"],
                "outcome": outcome,
                "daysWithoutDevice": days,
                "owner": owner,
            }
        )
    return result

"""The demo's suppliers: the receiving supplier's planner and the settlement, observed.

The demo acts as the receiving supplier's planner: it waits for the takeover order, records that
the client was contacted and that the device was taken over (``POST /v1/orders/{id}/status``, as
a planner's screen would). The departing supplier offers the takeover price on the effective date
by itself (deadline job); the demo waits until the receiving supplier has answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from agent.local.network import LocalSupplier

__all__ = ["SupplierStepFailed", "supplier_steps"]

_POLL_SECONDS = 0.1
_ANSWERED = frozenset({"accepted", "disputed"})


class SupplierStepFailed(Exception):
    """A supplier step of the demo did not happen in time or was refused."""


def _step(what: str, at: str | None = None, detail: str = "") -> dict[str, str]:
    return {"step": what, "at": at or datetime.now(UTC).isoformat(), "detail": detail}


async def _get(http: httpx.AsyncClient, supplier: LocalSupplier, path: str) -> Any:
    answer = await http.get(supplier.base_url + path, headers=supplier.auth())
    if answer.status_code != 200:
        raise SupplierStepFailed(f"{supplier.spec.name} answered {answer.status_code}")
    return answer.json()


async def _until(found: Callable[[], Awaitable[Any]], what: str, deadline: float) -> Any:
    while time.monotonic() < deadline:
        value = await found()
        if value:
            return value
        await asyncio.sleep(_POLL_SECONDS)
    raise SupplierStepFailed(f"no {what} in time")


async def _record(
    http: httpx.AsyncClient, supplier: LocalSupplier, order_id: str, status: str
) -> Any:
    answer = await http.post(
        f"{supplier.base_url}/v1/orders/{order_id}/status",
        json={"status": status},
        headers=supplier.auth(),
    )
    if answer.status_code != 200:
        raise SupplierStepFailed(f"{supplier.spec.name} refused {status}: {answer.status_code}")
    return answer.json()


async def _planner(
    http: httpx.AsyncClient, receiving: LocalSupplier, dossier_id: str, deadline: float
) -> list[dict[str, str]]:
    async def order() -> Any:
        orders = await _get(http, receiving, "/v1/orders")
        return next((o for o in orders if o["dossierId"] == dossier_id), None)

    received = await _until(order, "takeover order", deadline)
    steps = [
        _step(
            "takeover order received",
            received["receivedAt"],
            f"contact the client before the end of {received['contactBefore']}",
        )
    ]
    contacted = await _record(http, receiving, received["orderId"], "client-contacted")
    steps.append(_step("client contacted", contacted["updatedAt"]))
    taken = await _record(http, receiving, received["orderId"], "taken-over")
    steps.append(_step("device taken over", taken["updatedAt"]))
    return steps


async def supplier_steps(
    http: httpx.AsyncClient,
    *,
    receiving: LocalSupplier,
    departing: LocalSupplier,
    dossier_id: str,
    seconds: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the receiving supplier's planner steps and observe the settlement; both timelines."""
    deadline = time.monotonic() + seconds
    received = await _planner(http, receiving, dossier_id, deadline)

    async def leaving() -> Any:
        devices = await _get(http, departing, "/v1/departing-devices")
        return [d for d in devices if d["dossierId"] == dossier_id]

    async def answered() -> Any:
        offered = await _get(http, departing, "/v1/settlements")
        return [s for s in offered if s["dossierId"] == dossier_id and s["state"] in _ANSWERED]

    notices = await _until(leaving, "departure notice", deadline)
    device = notices[0]
    departed = [
        _step(
            "departure notice received",
            detail=f"{device['deviceId']} goes to {device['receivingSupplierName']} "
            f"on {device['effectiveDate']}",
        )
    ]
    settlement = (await _until(answered, "settlement answer", deadline))[0]
    departed.append(
        _step(
            "settlement offered",
            detail=f"{_euro(settlement['amountCents'])}, {settlement['method']}",
        )
    )
    received.append(_step(f"settlement {settlement['state']}", detail="recomputed from the inputs"))
    return _timeline(receiving, "receiving", received), _timeline(departing, "departing", departed)


def _euro(cents: int) -> str:
    # Amounts travel as integer cents; shown as euros only here.
    return f"EUR {cents // 100}.{cents % 100:02d}"


def _timeline(supplier: LocalSupplier, side: str, steps: list[dict[str, str]]) -> dict[str, Any]:
    return {"supplier": supplier.spec.name, "side": side, "steps": steps}

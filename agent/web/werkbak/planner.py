"""The planner's pages (supplier): open orders by contact deadline, one order and its status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from agent.errors import AgentError
from agent.register.names import gemeente_name, person_name
from agent.supplier.desk import PlannerStatus, ReceivedOrder
from agent.web.werkbak.rendering import (
    ServiceDep,
    SessionDep,
    message,
    posted_form,
    redirect,
    render,
    require,
)
from agent.working_days import dutch_date_of
from protocol.messages import Address, Device, PersonName

__all__ = [
    "REASONS",
    "STATUSES",
    "OrderLine",
    "order_page",
    "orders",
    "record_status",
    "router",
]

router = APIRouter(include_in_schema=False)

STATUSES: tuple[tuple[PlannerStatus, str], ...] = (
    ("client-contacted", "Contact met de cliënt gehad"),
    ("taken-over", "Hulpmiddel overgenomen"),
    ("inspected", "Hulpmiddel gekeurd"),
    ("replaced", "Hulpmiddel vervangen"),
    ("problem", "Er is een probleem"),
    ("refused", "Wij weigeren de opdracht"),
)
REASONS = (
    ("client-unreachable", "De cliënt is niet bereikbaar"),
    ("device-not-found", "Het hulpmiddel is niet gevonden"),
    ("device-unsafe", "Het hulpmiddel is niet veilig"),
    ("not-contracted", "Wij hebben geen contract voor dit hulpmiddel"),
    ("no-capacity", "Wij hebben geen capaciteit"),
    ("other", "Een andere reden"),
)
_ERRORS = {
    "unknown_order": "Deze opdracht bestaat niet bij deze leverancier.",
    "order_status_refused": "Deze status past niet bij de opdracht zoals die nu is. Kies bij een "
    "probleem of weigering ook een reden.",
    "wrong_role": "Deze pagina is voor een leverancier.",
}


@dataclass(frozen=True)
class OrderLine:
    """An order with what the planner reads from it."""

    order: ReceivedOrder
    client_name: str
    address: Address | None
    phone: str | None
    email: str | None
    devices: tuple[Device, ...]
    days_left: int
    urgent: bool


def _line(order: ReceivedOrder, today: date) -> OrderLine:
    body: dict[str, Any] = order.order or {}
    try:
        name = person_name(PersonName.model_validate(body["clientName"]))
        address: Address | None = Address.model_validate(body["address"])
        devices = tuple(Device.model_validate(d) for d in body.get("devices", []))
    except (KeyError, ValidationError):
        # A finished order keeps no personal data.
        name, address, devices = "(gegevens gewist)", None, ()
    contact = body.get("contactPreferences", {})
    return OrderLine(
        order=order,
        client_name=name,
        address=address,
        phone=contact.get("phone"),
        email=contact.get("email"),
        devices=devices,
        days_left=(order.contact_before - today).days,
        urgent=bool(body.get("urgent")),
    )


@router.get("/werkbak/opdrachten", response_class=HTMLResponse)
async def orders(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """Open orders: overdue first, then by contact deadline."""
    if isinstance(checked := require(request, session, "planner"), HTMLResponse):
        return checked
    today = dutch_date_of(service.clock.now())
    shown = await service.supplier.orders(open_only=True, viewer=checked.user_name)
    lines = [_line(order, today) for order in shown]
    lines.sort(
        key=lambda line: (not line.order.overdue, not line.urgent, line.order.contact_before)
    )
    return render(
        request, "orders.html", session, title="Opdrachten", lines=lines, gemeente=gemeente_name
    )


@router.get("/werkbak/opdrachten/{order_id}", response_class=HTMLResponse)
async def order_page(
    order_id: str, request: Request, service: ServiceDep, session: SessionDep
) -> Response:
    """One order: the client, the devices, the deadline, and the status forms."""
    if isinstance(checked := require(request, session, "planner"), HTMLResponse):
        return checked
    try:
        order = await service.supplier.order(order_id, viewer=checked.user_name)
    except AgentError as error:
        return message(request, session, error.status, "Dit kan niet", _text(error))
    return render(
        request,
        "order.html",
        session,
        title="Opdracht",
        line=_line(order, dutch_date_of(service.clock.now())),
        statuses=STATUSES,
        reasons=REASONS,
    )


def _text(error: AgentError) -> str:
    return _ERRORS.get(error.code, "Dit lukt nu niet. Probeer het later opnieuw.")


@router.post("/werkbak/opdrachten/{order_id}/status")
async def record_status(
    order_id: str, request: Request, service: ServiceDep, session: SessionDep
) -> Response:
    """Record contact, takeover, a problem or a refusal; the gemeente is told."""
    if isinstance(checked := await posted_form(request, session, "planner"), HTMLResponse):
        return checked
    session, posted = checked
    status = next((code for code, _ in STATUSES if code == posted.get("status")), None)
    reason = next((code for code, _ in REASONS if code == posted.get("reden")), None)
    text = posted.get("toelichting")[:2000] or None
    if status is None:
        return message(request, session, 400, "Kies een status", "Kies wat er is gebeurd.")
    try:
        await service.supplier.record_status(
            order_id,
            status,
            device_id=posted.get("apparaat") or None,
            reason_code=reason if status in ("problem", "refused") else None,
            reason_text=text,
            actor=session.user_name,
        )
    except AgentError as error:
        return message(request, session, error.status, "Dit kan niet", _text(error))
    service.wake()
    return redirect(f"/werkbak/opdrachten/{order_id}?melding=status")

"""The planner's settlement pages (supplier): takeover prices offered and received, and the
answer to an offer that waits for a planner (``takeover.settlement_answered_by = "planner"``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from agent.errors import AgentError
from agent.supplier.settlement import FOR_PLANNER
from agent.web.werkbak.rendering import (
    ServiceDep,
    SessionDep,
    message,
    posted_form,
    redirect,
    render,
    require,
)

__all__ = [
    "DISPUTE_REASONS",
    "INPUT_NAMES",
    "accept",
    "dispute",
    "router",
    "settlement_page",
    "settlements",
]

router = APIRouter(include_in_schema=False)

# The inputs of docs/settlement.md section 2, as the planner reads them.
INPUT_NAMES = (
    ("purchasePriceCents", "Aankoopprijs"),
    ("purchaseDate", "Aankoopdatum"),
    ("transferDate", "Datum van overname"),
    ("economicLifetimeMonths", "Economische levensduur in maanden"),
    ("floorCents", "Laagste bedrag"),
    ("floorBasisPoints", "Laagste bedrag als deel van de aankoopprijs"),
    ("maintenanceState", "Staat van onderhoud"),
)
DISPUTE_REASONS = (
    ("inputs-incorrect", "De gegevens van de berekening kloppen niet"),
    ("device-condition", "De staat van het hulpmiddel is anders"),
    ("method-not-agreed", "Wij hebben deze berekening niet afgesproken"),
    ("other", "Een andere reden"),
)
_ERRORS = {
    "unknown_settlement": "Deze overnameprijs bestaat niet bij deze leverancier.",
    "settlement_not_open": "Deze overnameprijs wacht niet meer op een antwoord. Misschien heeft "
    "een collega haar al beantwoord.",
    "invalid_settlement_answer": "Kies een reden en schrijf in de toelichting waarom u de "
    "overnameprijs betwist.",
}


@router.get("/werkbak/verrekeningen", response_class=HTMLResponse)
async def settlements(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """Takeover prices offered and received; those that wait for a planner first."""
    if isinstance(checked := require(request, session, "planner"), HTMLResponse):
        return checked
    found = await service.supplier.settlements()
    found.sort(key=lambda settlement: settlement.state != FOR_PLANNER)
    return render(
        request,
        "settlements.html",
        session,
        title="Verrekeningen",
        settlements=found,
        input_names=INPUT_NAMES,
        for_planner=FOR_PLANNER,
    )


@router.get("/werkbak/verrekeningen/{settlement_id}", response_class=HTMLResponse)
async def settlement_page(
    settlement_id: str, request: Request, service: ServiceDep, session: SessionDep
) -> Response:
    """One takeover price: the offer's inputs beside our own, and the answer forms."""
    if isinstance(checked := require(request, session, "planner"), HTMLResponse):
        return checked
    try:
        check = await service.supplier.settlement_answers.check(settlement_id)
    except AgentError as error:
        return message(request, session, error.status, "Dit kan niet", _text(error))
    return render(
        request,
        "settlement.html",
        session,
        title="Overnameprijs",
        check=check,
        inputs=INPUT_NAMES,
        reasons=DISPUTE_REASONS,
        for_planner=FOR_PLANNER,
    )


@router.post("/werkbak/verrekeningen/{settlement_id}/accepteren")
async def accept(
    settlement_id: str, request: Request, service: ServiceDep, session: SessionDep
) -> Response:
    """Accept the offered amount; the other supplier is told by a signed message."""
    if isinstance(checked := await posted_form(request, session, "planner"), HTMLResponse):
        return checked
    session, _ = checked
    try:
        await service.supplier.settlement_answers.accept(settlement_id, by=session.user_name)
    except AgentError as error:
        return message(request, session, error.status, "Dit kan niet", _text(error))
    service.wake()
    return redirect(f"/werkbak/verrekeningen/{settlement_id}?melding=geaccepteerd")


@router.post("/werkbak/verrekeningen/{settlement_id}/betwisten")
async def dispute(
    settlement_id: str, request: Request, service: ServiceDep, session: SessionDep
) -> Response:
    """Dispute the offer with a reason; the other supplier is told by a signed message."""
    if isinstance(checked := await posted_form(request, session, "planner"), HTMLResponse):
        return checked
    session, posted = checked
    try:
        await service.supplier.settlement_answers.dispute(
            settlement_id,
            posted.get("reden"),
            posted.get("toelichting")[:2000],
            by=session.user_name,
        )
    except AgentError as error:
        return message(request, session, error.status, "Dit kan niet", _text(error))
    service.wake()
    return redirect(f"/werkbak/verrekeningen/{settlement_id}?melding=betwist")


def _text(error: AgentError) -> str:
    return _ERRORS.get(error.code, "Dit lukt nu niet. Probeer het later opnieuw.")

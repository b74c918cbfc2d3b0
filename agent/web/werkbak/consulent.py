"""The consulent's pages (gemeente): the werkbak of tasks, search, the dossier and its actions.

Every action calls the same service function as the JSON API and leaves a line in the
dossier's timeline with the person and the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from agent.consent.flow import ConsentInput
from agent.core.views import DossierStart
from agent.errors import AgentError
from agent.service import AgentService, DecisionChange
from agent.web.werkbak.rendering import (
    Form,
    ServiceDep,
    SessionDep,
    message,
    posted_form,
    redirect,
    render,
    require,
)
from agent.web.werkbak.sessions import Session
from protocol.messages import CancelReason

__all__ = [
    "change_decision",
    "dossier_action",
    "dossier_page",
    "router",
    "search",
    "search_form",
    "start_form",
    "start_handover",
    "task_action",
    "worklist",
]

router = APIRouter(include_in_schema=False)

_DATA_KINDS = (
    ("identity", "Naam en geboortedatum"),
    ("address", "Nieuw adres en verhuisdatum"),
    ("devices", "De hulpmiddelen"),
    ("indicatie", "De indicatie en beschikking"),
    ("functional-information", "Informatie over wat de cliënt nodig heeft"),
)
_CANCEL_REASONS: tuple[tuple[CancelReason, str], ...] = (
    ("move-cancelled", "De verhuizing gaat niet door"),
    ("move-corrected", "De verhuizing is verbeterd in de BRP"),
    ("client-deceased", "De cliënt is overleden"),
)
# Exceptions for which this gemeente provides the alternative (docs/protocol.md, section 8.6).
_EXCEPTION_REASONS = (
    ("needs-changed", "De cliënt heeft nu iets anders nodig"),
    ("unsafe-or-worn", "Het hulpmiddel is versleten of niet veilig"),
    ("not-in-assortment", "Wij hebben dit hulpmiddel niet in ons aanbod"),
    ("other", "Een andere reden"),
)
_ERRORS = {
    "unknown_dossier": "Dit dossier bestaat niet in deze gemeente.",
    "unknown_task": "Deze taak bestaat niet.",
    "task_not_open": "Deze taak is al afgesloten, of een collega heeft haar genomen.",
    "illegal_transition": "Dat kan niet in de stand waarin het dossier nu is.",
    "consent_missing": "Kies minstens één hulpmiddel. Naam, adres en hulpmiddelen gaan altijd mee.",
    "unknown_provision": "Deze cliënt staat niet in het register van voorzieningen.",
    "nothing_to_move": "Deze cliënt heeft geen hulpmiddel dat mee kan verhuizen, of het nieuwe "
    "adres ligt in deze gemeente.",
    "receiver_not_connected": "De nieuwe gemeente is nog niet aangesloten. Er is een taak gemaakt.",
    "directory_unavailable": "Het register van deelnemers is nu niet bereikbaar. Probeer het "
    "later opnieuw.",
    "registry_unavailable": "Het register van deelnemers is nu niet bereikbaar. Probeer het "
    "later opnieuw.",
    "device_taken_over": "De leverancier heeft dit hulpmiddel al overgenomen. Het besluit kan "
    "niet meer veranderen.",
    "decision_not_changeable": "Het besluit over dit hulpmiddel kan nu niet veranderen. Het "
    "dossier is gestopt of klaar, het besluit is al zo, of het andere hulpmiddel is al geleverd.",
}


def _refused(request: Request, session: Session, error: AgentError) -> HTMLResponse:
    text = _ERRORS.get(error.code, "Dit lukt nu niet. Probeer het later opnieuw.")
    return message(request, session, error.status, "Dit kan niet", text)


async def _act(
    request: Request, session: Session, action: Callable[[], Awaitable[Any]], to: str
) -> Response:
    try:
        await action()
    except AgentError as error:
        return _refused(request, session, error)
    return redirect(to)


# --- the werkbak ----------------------------------------------------------------------------------


@router.get("/werkbak/taken", response_class=HTMLResponse)
async def worklist(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """Open tasks, urgent first and then by deadline, with the client and the devices."""
    if isinstance(checked := require(request, session, "consulent"), HTMLResponse):
        return checked
    session = checked
    items = await service.casework.worklist(actor=session.user_name)
    return render(request, "tasks.html", session, title="Werkbak", items=items)


@router.post("/werkbak/taken/{task_id}/{action}")
async def task_action(
    task_id: str, action: str, request: Request, service: ServiceDep, session: SessionDep
) -> Response:
    """Take a task, hand it back, or close it with a note."""
    if isinstance(checked := await posted_form(request, session, "consulent"), HTMLResponse):
        return checked
    session, posted = checked
    work, actor = service.casework, session.user_name
    back = posted.get("terug") if posted.get("terug").startswith("/werkbak/") else "/werkbak/taken"
    if action == "nemen":
        return await _act(
            request, session, lambda: work.take(task_id, actor=actor), back + "?melding=genomen"
        )
    if action == "teruggeven":
        return await _act(
            request,
            session,
            lambda: work.hand_back(task_id, actor=actor),
            back + "?melding=teruggegeven",
        )
    if action == "afsluiten":
        note = posted.get("notitie")[:2000]
        if not note:
            return message(
                request, session, 400, "Vul een notitie in", "Schrijf kort op wat u heeft gedaan."
            )
        return await _act(
            request,
            session,
            lambda: work.close(task_id, note, actor=actor),
            back + "?melding=afgesloten",
        )
    return message(request, session, 404, "Niet gevonden", "Deze handeling bestaat niet.")


# --- search and the dossier -----------------------------------------------------------------------


@router.get("/werkbak/zoeken", response_class=HTMLResponse)
async def search_form(request: Request, session: SessionDep) -> Response:
    """The search form."""
    if isinstance(checked := require(request, session, "consulent"), HTMLResponse):
        return checked
    return render(request, "search.html", session, title="Zoeken", query="", hits=None)


@router.post("/werkbak/zoeken", response_class=HTMLResponse)
async def search(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """Find a dossier by name, postcode, dossier id, or exactly by BSN.

    A form post, never a query string: a BSN stays out of URLs and access logs, and a search
    (which writes the processing log in the person's name) needs the session's CSRF token.
    """
    if isinstance(checked := await posted_form(request, session, "consulent"), HTMLResponse):
        return checked
    session, posted = checked
    query = posted.get("q")[:100]
    hits = await service.casework.search(query, actor=session.user_name) if query else None
    return render(request, "search.html", session, title="Zoeken", query=query, hits=hits)


@router.get("/werkbak/dossiers/{dossier_id}", response_class=HTMLResponse)
async def dossier_page(
    dossier_id: str, request: Request, service: ServiceDep, session: SessionDep
) -> Response:
    """One dossier: client, devices, consent, timeline, messages, tasks and the actions."""
    if isinstance(checked := require(request, session, "consulent"), HTMLResponse):
        return checked
    session = checked
    try:
        case = await service.casework.case_file(dossier_id, actor=session.user_name)
    except AgentError as error:
        return _refused(request, session, error)
    return render(
        request,
        "dossier.html",
        session,
        title=f"Dossier van {case.client.name}",
        case=case,
        data_kinds=_DATA_KINDS,
        cancel_reasons=_CANCEL_REASONS,
        exception_reasons=_EXCEPTION_REASONS,
    )


@router.post("/werkbak/dossiers/{dossier_id}/{action}")
async def dossier_action(
    dossier_id: str, action: str, request: Request, service: ServiceDep, session: SessionDep
) -> Response:
    """An action on the dossier, with a reason that goes into its timeline."""
    if isinstance(checked := await posted_form(request, session, "consulent"), HTMLResponse):
        return checked
    session, posted = checked
    reason = posted.get("reden")[:500]
    if not reason:
        return message(
            request, session, 400, "Vul een reden in", "Schrijf kort op waarom u dit doet."
        )
    work, actor = service.casework, session.user_name
    page = f"/werkbak/dossiers/{dossier_id}?melding=vastgelegd"

    async def urgent() -> None:
        await work.mark_urgent(dossier_id, reason, actor=actor)

    async def revoke() -> None:
        await service.consent.revoke(dossier_id)
        await work.note(dossier_id, f"persoonlijke link ingetrokken: {reason}", actor=actor)

    async def new_link() -> None:
        await service.consent.issue_new_link(dossier_id)
        await work.note(dossier_id, f"nieuwe persoonlijke link verstuurd: {reason}", actor=actor)

    async def cancel() -> None:
        choice = posted.get("annuleerreden")
        code = next((c for c, _ in _CANCEL_REASONS if c == choice), _CANCEL_REASONS[0][0])
        await work.cancel(dossier_id, code, reason, actor=actor)
        service.wake()

    async def consent() -> None:
        answer = _consent(posted.all("apparaat"), posted.all("gegevens"), posted, actor, service)
        await service.record_consent(dossier_id, answer)
        await work.note(dossier_id, f"toestemming vastgelegd: {reason}", actor=actor)

    actions = {
        "urgent": urgent,
        "link-intrekken": revoke,
        "nieuwe-link": new_link,
        "annuleren": cancel,
        "toestemming": consent,
    }
    if action not in actions:
        return message(request, session, 404, "Niet gevonden", "Deze handeling bestaat niet.")
    try:
        return await _act(request, session, actions[action], page)
    except ValidationError:
        return message(
            request,
            session,
            400,
            "Controleer het formulier",
            "Kies wie toestemming gaf en hoe, en vul bij een vertegenwoordiger de naam in.",
        )


@router.post("/werkbak/dossiers/{dossier_id}/hulpmiddelen/{device_id}/besluit")
async def change_decision(
    dossier_id: str,
    device_id: str,
    request: Request,
    service: ServiceDep,
    session: SessionDep,
) -> Response:
    """Receiving side: change the decision for one device, with the reason, in the timeline."""
    if isinstance(checked := await posted_form(request, session, "consulent"), HTMLResponse):
        return checked
    session, posted = checked
    exception = posted.get("uitkomst") == "uitzondering"
    try:
        change = DecisionChange.model_validate(
            {
                "outcome": "exception" if exception else "take-over",
                "reasonCode": (posted.get("redencode") or None) if exception else None,
                "reasonText": posted.get("reden")[:2000],
                "alternativeOffered": (posted.get("alternatief")[:2000] or None)
                if exception
                else None,
                "doneBy": session.user_name[:100],
            }
        )
    except ValidationError:
        return message(
            request,
            session,
            400,
            "Controleer het formulier",
            "Kies een reden, schrijf de reden op en, bij een uitzondering, wat de cliënt in "
            "plaats van het hulpmiddel krijgt.",
        )
    page = f"/werkbak/dossiers/{dossier_id}?melding=vastgelegd"
    return await _act(
        request, session, lambda: service.change_decision(dossier_id, device_id, change), page
    )


def _consent(
    devices: list[str], kinds: list[str], posted: Form, actor: str, service: AgentService
) -> ConsentInput:
    refused = posted.get("uitkomst") == "geweigerd"
    representative = posted.get("wie") == "representative"
    document: dict[str, Any] = {
        "outcome": "refused" if refused else "given",
        "dataKinds": [] if refused else sorted({"identity", "address", "devices", *kinds}),
        "deviceIds": [] if refused else devices,
        "channel": posted.get("kanaal"),
        "givenBy": "representative" if representative else "client",
        "givenAt": service.clock.now().isoformat(),
        "recordedBy": actor[:100],
    }
    if representative:
        document["representativeName"] = posted.get("vertegenwoordiger-naam") or None
        document["representativeRelation"] = posted.get("vertegenwoordiger-relatie") or None
    return ConsentInput.model_validate(document)


# --- starting a handover by hand ------------------------------------------------------------------


@router.get("/werkbak/nieuw", response_class=HTMLResponse)
async def start_form(request: Request, session: SessionDep) -> Response:
    """The form to start a handover by hand (the client must be in the register)."""
    if isinstance(checked := require(request, session, "consulent"), HTMLResponse):
        return checked
    return render(request, "start.html", session, title="Overdracht starten", errors=[])


@router.post("/werkbak/nieuw")
async def start_handover(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """Start a handover by hand: the client gets a personal link to give consent."""
    if isinstance(checked := await posted_form(request, session, "consulent"), HTMLResponse):
        return checked
    session, posted = checked
    reason = posted.get("reden")[:500]
    try:
        start = DossierStart.model_validate(
            {
                "bsn": posted.get("bsn").replace(" ", ""),
                "moveDate": date.fromisoformat(posted.get("verhuisdatum")),
                "newAddress": {
                    "street": posted.get("straat"),
                    "houseNumber": posted.get("huisnummer"),
                    "postalCode": posted.get("postcode").replace(" ", "").upper(),
                    "city": posted.get("plaats"),
                    "gemeentecode": posted.get("gemeentecode"),
                },
            }
        )
        if not reason:
            raise ValueError("reason")
    except ValueError:  # pydantic's ValidationError is a ValueError
        return render(
            request,
            "start.html",
            session,
            400,
            title="Overdracht starten",
            errors=[
                "Controleer het BSN (9 cijfers), de verhuisdatum, het adres (postcode als "
                "1234AB, gemeentecode van 4 cijfers) en de reden."
            ],
        )
    try:
        view = await service.start_dossier(start)
        await service.casework.note(
            view.dossier_id, f"overdracht met de hand gestart: {reason}", actor=session.user_name
        )
    except AgentError as error:
        return _refused(request, session, error)
    return redirect(f"/werkbak/dossiers/{uuid.UUID(view.dossier_id)}?melding=gestart")

"""What every werkbak page shares: templates, headers, the session, roles and CSRF checks."""

from __future__ import annotations

import hmac
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment

from agent.register.names import euros
from agent.service import AgentService
from agent.settings import WerkbakRole
from agent.web._html import ServiceDep, page_headers, parse_form, templates
from agent.web.werkbak.sessions import COOKIE, Session, Sessions
from agent.working_days import AMSTERDAM
from registry.server_kit.dutch import dutch_date

__all__ = [
    "HOME",
    "SIGN_IN",
    "Form",
    "ServiceDep",
    "SessionDep",
    "csrf_matches",
    "forbidden",
    "form",
    "message",
    "posted_form",
    "redirect",
    "render",
    "require",
    "sessions",
]

HOME = "/werkbak"
SIGN_IN = "/werkbak/inloggen"
# What a page says after an action that redirected to it (``?melding=``): fixed texts only.
_NOTICES = {
    "uitgelogd": "U bent uitgelogd.",
    "genomen": "U heeft de taak genomen.",
    "teruggegeven": "U heeft de taak teruggegeven.",
    "afgesloten": "De taak is afgesloten.",
    "vastgelegd": "Uw handeling is vastgelegd in de tijdlijn.",
    "toestemming": "De toestemming is vastgelegd.",
    "status": "De status is vastgelegd. De gemeente krijgt bericht.",
    "opnieuw": "Het bericht staat weer in de wachtrij.",
    "gestart": "De overdracht is gestart. De cliënt krijgt een persoonlijke link.",
    "geaccepteerd": "U heeft de overnameprijs geaccepteerd. De andere leverancier krijgt bericht.",
    "betwist": "U heeft de overnameprijs betwist. De andere leverancier krijgt bericht.",
}
_STATE_NAMES = {
    "started": "Gestart",
    "waiting-for-consent": "Wacht op toestemming",
    "consent-given": "Toestemming gegeven",
    "consent-refused": "Toestemming geweigerd",
    "consent-expired": "Geen antwoord van de cliënt",
    "consent-withdrawn": "Toestemming ingetrokken",
    "offer-sent": "Dossier verstuurd",
    "offer-received": "Dossier ontvangen",
    "decided": "Besluit genomen",
    "orders-placed": "Opdracht bij leverancier",
    "completed": "Afgerond",
    "cancelled": "Gestopt",
    "failed": "Mislukt",
}
_ORDER_STATUSES = {
    "received": "Ontvangen",
    "client-contacted": "Contact gehad",
    "taken-over": "Overgenomen",
    "inspected": "Gekeurd",
    "replaced": "Vervangen",
    "problem": "Probleem",
    "refused": "Geweigerd",
}
_SETTLEMENT_STATES = {
    "offered": "Aangeboden, wacht op antwoord",
    "waiting": "Wacht tot wij het hulpmiddel hebben overgenomen",
    "for-planner": "Wacht op het antwoord van een planner",
    "accepted": "Geaccepteerd",
    "disputed": "Betwist",
    "superseded": "Vervallen: de leverancier weigerde de opdracht",
}
_MAINTENANCE_STATES = {"good": "goed", "fair": "redelijk", "poor": "slecht"}
_CHANNELS = {
    "online": "Online",
    "phone": "Telefonisch",
    "paper": "Op papier",
    "in-person": "Aan de balie",
}
_ROLE_NAMES = {"consulent": "Consulent", "planner": "Planner", "operator": "Beheerder"}


def sessions(service: AgentService) -> Sessions:
    """The werkbak sessions of this agent."""
    return Sessions(
        database=service.database,
        clock=service.clock,
        minutes=service.settings.werkbak.session_minutes,
    )


async def _session(request: Request, service: ServiceDep) -> Session | None:
    found = await sessions(service).find(request.cookies.get(COOKIE))
    return found if found is not None and not found.pending else None


SessionDep = Annotated[Session | None, Depends(_session)]


@cache
def _environment() -> Environment:
    return templates(
        dutch_time=_dutch_time,
        state_name=lambda state: _STATE_NAMES.get(state, state),
        order_status=lambda status: _ORDER_STATUSES.get(status, status),
        channel_name=lambda channel: _CHANNELS.get(channel, channel),
        euro=euros,
        settlement_state=lambda state: _SETTLEMENT_STATES.get(state, state),
        settlement_input=_settlement_input,
    )


def _settlement_input(value: Any, name: str) -> str:
    """One input of a takeover price calculation as the planner reads it."""
    if value is None:
        return "-"
    if name.endswith("Cents"):
        return euros(int(value))
    if name == "floorBasisPoints":
        return f"{int(value) / 100:g}%".replace(".", ",")
    if name.endswith("Date"):
        return dutch_date(date.fromisoformat(str(value)))
    return _MAINTENANCE_STATES.get(str(value), str(value))


def _dutch_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    local = value.astimezone(AMSTERDAM)
    return f"{dutch_date(local.date())} {local:%H:%M}"


def render(
    request: Request,
    template: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A werkbak page: the layout with the organisation, the person and their menu."""
    service: AgentService = request.app.state.service
    context.setdefault("notice", _NOTICES.get(request.query_params.get("melding", "")))
    html = (
        _environment()
        .get_template(f"werkbak/{template}")
        .render(
            organisation=service.settings.name,
            session=session,
            role_names=_ROLE_NAMES,
            agent_role=service.settings.role,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers=_headers(service))


def _headers(service: AgentService) -> dict[str, str]:
    # Signing out posts a form that redirects to the provider's end_session_endpoint.
    issuer = service.settings.werkbak.oidc_issuer
    if issuer is None:
        return page_headers()
    url = urlsplit(issuer)
    return page_headers(form_targets=(f"{url.scheme}://{url.netloc}",))


def message(
    request: Request, session: Session | None, status_code: int, title: str, *lines: str
) -> HTMLResponse:
    """A page with one message (errors, refusals)."""
    return render(request, "message.html", session, status_code, title=title, lines=lines)


def forbidden(request: Request, session: Session | None) -> HTMLResponse:
    """The answer to a form without its session's CSRF token."""
    return message(
        request,
        session,
        403,
        "Dit formulier is verlopen",
        "Het formulier is niet meer geldig. Laad de pagina opnieuw en probeer het nog een keer.",
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=page_headers())


def require(request: Request, session: Session | None, role: WerkbakRole) -> Session | HTMLResponse:
    """The session when it has ``role``; otherwise the page that says why not."""
    if session is None:
        return message(
            request, None, 401, "Log eerst in", "U bent niet ingelogd, of uw sessie is verlopen."
        )
    if role not in session.roles:
        return message(
            request,
            session,
            403,
            "Geen toegang",
            f"Deze pagina is voor de rol {_ROLE_NAMES[role].lower()}. U heeft die rol niet.",
        )
    return session


class Form:
    """A posted form: one value per field, or all values of a group of checkboxes."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name)
        return values[0].strip() if values else default

    def all(self, name: str) -> list[str]:
        return list(self._fields.get(name, []))


async def posted_form(
    request: Request, session: Session | None, role: WerkbakRole
) -> tuple[Session, Form] | HTMLResponse:
    """The session with ``role`` and the form it posted; otherwise the page that says why not."""
    allowed = require(request, session, role)
    if isinstance(allowed, HTMLResponse):
        return allowed
    posted = await form(request, allowed)
    return forbidden(request, allowed) if posted is None else (allowed, posted)


async def form(request: Request, session: Session) -> Form | None:
    """The posted form, or None when its CSRF token is missing or wrong (or it is too large)."""
    fields = await parse_form(request)
    if fields is None:
        return None
    posted = Form(fields)
    return posted if csrf_matches(session, posted.get("csrf")) else None


def csrf_matches(session: Session, presented: str) -> bool:
    """Whether ``presented`` is the session's CSRF token (constant-time comparison)."""
    return hmac.compare_digest(session.csrf_token.encode(), presented.encode())

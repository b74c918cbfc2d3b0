"""The client's pages on the personal link: consent per device and kind of data, status, withdrawal.

Server-rendered (Jinja2), no JavaScript, Dutch at B1 level. The link is exchanged for a
short-lived session cookie and a 303 to a URL without the token. Forms carry a session-bound
CSRF token.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment

from agent.consent.flow import ConsentInput
from agent.consent.links import LINK_PATH, PageSession
from agent.consent.page import ClientPage, DeviceLine
from agent.consent.progress import device_sentence, handover_done, progress_events
from agent.errors import AgentError, DossierUnknown
from agent.web._html import ServiceDep, https, page_headers, parse_form, templates

__all__ = [
    "consent_answer",
    "consent_page",
    "open_link",
    "router",
    "stylesheet",
    "withdraw",
    "withdraw_page",
]

router = APIRouter(include_in_schema=False)

_COOKIE = "meeverhuizen-sessie"
_HOME = "/mijn-verhuizing"
_RELATIONS = (
    ("authorised-person", "Gemachtigde"),
    ("mentor", "Mentor"),
    ("guardian", "Curator"),
    ("legal-representative", "Wettelijk vertegenwoordiger (bijvoorbeeld ouder)"),
)
_STATE_TEXTS = {
    "waiting-for-consent": "Wij hebben u om toestemming gevraagd.",
    "consent-given": "U heeft toestemming gegeven.",
    "consent-refused": "U heeft geen toestemming gegeven.",
    "consent-expired": "Wij hebben geen antwoord gekregen.",
    "offer-sent": "Wij hebben uw gegevens naar de nieuwe gemeente gestuurd.",
    "decided": "De nieuwe gemeente heeft besloten over uw hulpmiddelen.",
    "orders-placed": "De leverancier heeft de opdracht gekregen.",
    "completed": "De nieuwe gemeente en de leverancier hebben alles van ons ontvangen.",
    "consent-withdrawn": "U heeft uw toestemming ingetrokken.",
    "cancelled": "De overdracht is gestopt.",
    "receiver-not-connected": "Een medewerker stuurt uw gegevens beveiligd naar de nieuwe "
    "gemeente.",
    "wlz-institution": "De overdracht is gestopt, omdat u naar een Wlz-instelling gaat.",
}


@cache
def _environment() -> Environment:
    return templates()


def _render(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    service = request.app.state.service
    context.setdefault("page", None)
    context.setdefault("gemeente", service.settings.name.removeprefix("Gemeente "))
    context.setdefault("phone", service.settings.consent.phone_number)
    html = _environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=page_headers())


def _message(request: Request, status_code: int, title: str, *paragraphs: str) -> HTMLResponse:
    return _render(request, "message.html", status_code, title=title, paragraphs=paragraphs)


def _link_not_valid(request: Request) -> HTMLResponse:
    # One answer for every unknown, expired or revoked link: it tells nothing about the token.
    return _message(
        request,
        404,
        "Deze link werkt niet",
        "Deze link is niet juist, verlopen of ingetrokken.",
        "Heeft u een nieuwe link nodig? Bel dan uw gemeente.",
    )


@router.get(LINK_PATH + "{token}", response_class=HTMLResponse)
async def open_link(token: str, request: Request, service: ServiceDep) -> Response:
    """Exchange the personal link for a page session and go on without the token."""
    address = request.client.host if request.client is not None else "unknown"
    if not service.consent.links.allow_attempt(address):
        answer = _message(
            request,
            429,
            "Even wachten",
            "Er zijn te veel pogingen gedaan. Probeer het over een minuut opnieuw.",
        )
        answer.headers["Retry-After"] = "60"
        return answer
    session = await service.consent.links.redeem(token)
    if session is None:
        return _link_not_valid(request)
    service.consent.links.forgive_attempt(address)
    redirect = RedirectResponse(_HOME, status_code=303, headers=page_headers())
    redirect.set_cookie(
        _COOKIE,
        session.cookie_value,
        max_age=service.settings.consent.session_minutes * 60,
        path=_HOME,
        httponly=True,
        samesite="strict",
        secure=https(request, service.settings.public_base_url),
    )
    return redirect


async def _page_session(request: Request, service: ServiceDep) -> PageSession | None:
    cookie = request.cookies.get(_COOKIE)
    if not cookie:
        return None
    return await service.consent.links.session(cookie)


SessionDep = Annotated[PageSession | None, Depends(_page_session)]


def _no_session(request: Request) -> HTMLResponse:
    return _message(
        request,
        401,
        "Open de link opnieuw",
        "Uw sessie is verlopen of u heeft de pagina niet via uw persoonlijke link geopend.",
        "Open de link uit uw brief, e-mail of sms opnieuw.",
    )


@router.get(_HOME, response_class=HTMLResponse)
async def consent_page(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """The consent form while an answer is awaited; afterwards the status page."""
    if session is None:
        return _no_session(request)
    page = await service.consent.page(session.dossier_id)
    if page.state == "waiting-for-consent":
        return _consent_form(request, page, session, {}, [])
    return _status(request, page)


def _consent_form(
    request: Request,
    page: ClientPage,
    session: PageSession,
    form: Mapping[str, str],
    errors: list[tuple[str, str]],
) -> HTMLResponse:
    return _render(
        request,
        "consent.html",
        400 if errors else 200,
        title="Uw hulpmiddelen verhuizen mee",
        page=page,
        csrf=session.csrf_token,
        form=form,
        errors=errors,
        error_fields={field for field, _ in errors},
        relations=_RELATIONS,
        phone=page.gemeente_phone,
    )


async def _form(request: Request) -> dict[str, str]:
    parsed = await parse_form(request) or {}
    return {key: values[0] for key, values in parsed.items() if values}


def _csrf_ok(session: PageSession, form: Mapping[str, str]) -> bool:
    return hmac.compare_digest(session.csrf_token, form.get("csrf", ""))


def _forbidden(request: Request) -> HTMLResponse:
    return _message(
        request,
        403,
        "Dit formulier is verlopen",
        "Ga terug naar de pagina en probeer het opnieuw.",
    )


@router.post(_HOME + "/toestemming", response_class=HTMLResponse)
async def consent_answer(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """The client's answer: per device yes or no, optional kinds of data, who answers."""
    if session is None:
        return _no_session(request)
    form = await _form(request)
    if not _csrf_ok(session, form):
        return _forbidden(request)
    page = await service.consent.page(session.dossier_id)
    if page.state != "waiting-for-consent":
        return RedirectResponse(_HOME, status_code=303, headers=page_headers())
    answer, errors = _answer(page, form, service.clock.now())
    if answer is None:
        return _consent_form(request, page, session, form, errors)
    try:
        await service.record_consent(session.dossier_id, answer)
    except AgentError:
        return _message(
            request,
            503,
            "Dit lukt nu niet",
            "Uw antwoord is niet opgeslagen. Probeer het later opnieuw of bel uw gemeente.",
        )
    return RedirectResponse(_HOME, status_code=303, headers=page_headers())


def _answer(
    page: ClientPage, form: Mapping[str, str], now: datetime
) -> tuple[ConsentInput | None, list[tuple[str, str]]]:
    refused = form.get("besluit") == "nee"
    errors: list[tuple[str, str]] = []
    chosen: list[str] = []
    for device in page.devices:
        if not device.movable:
            continue
        value = form.get(f"apparaat-{device.device_id}")
        if value == "ja":
            chosen.append(device.device_id)
        elif value != "nee" and not refused:
            errors.append((f"apparaat-{device.device_id}", f"Kies of uw {device.name} mee mag."))
    if not refused and not errors and not chosen:
        first = next(d for d in page.devices if d.movable)
        errors.append(
            (
                f"apparaat-{first.device_id}",
                "Kies bij minstens één hulpmiddel ja. Wilt u niets laten meeverhuizen? "
                "Kies dan 'Ik wil dit niet'.",
            )
        )
    representative = form.get("wie") == "representative" or page.representative_answers
    name = form.get("vertegenwoordiger-naam", "").strip()[:200]
    relation = form.get("vertegenwoordiger-relatie", "")
    if representative and not name:
        errors.append(("vertegenwoordiger-naam", "Vul uw naam in."))
    if representative and relation not in dict(_RELATIONS):
        errors.append(("vertegenwoordiger-relatie", "Kies wat u van de cliënt bent."))
    if errors:
        return None, errors
    kinds = ["identity", "address", "devices"]
    if form.get("indicatie") == "ja" and page.has_indicatie:
        kinds.append("indicatie")
    if form.get("functioneel") == "ja" and page.has_functional_information:
        kinds.append("functional-information")
    document = {
        "outcome": "refused" if refused else "given",
        "dataKinds": [] if refused else kinds,
        "deviceIds": [] if refused else chosen,
        "channel": "online",
        "givenBy": "representative" if representative else "client",
        "givenAt": now.isoformat(),
        **(
            {"representativeName": name, "representativeRelation": relation}
            if representative
            else {}
        ),
    }
    return ConsentInput.model_validate(document), []


def _status(request: Request, page: ClientPage) -> HTMLResponse:
    return _render(
        request,
        "status.html",
        title="Uw verhuizing",
        page=page,
        lines=_status_lines(page),
        device_text=_device_text,
        timeline=_timeline(page),
        can_withdraw=page.state
        in {
            "consent-given",
            "offer-sent",
            "decided",
            "orders-placed",
            "completed",
            "receiver-not-connected",
        },
        phone=page.gemeente_phone,
    )


def _status_lines(page: ClientPage) -> list[str]:
    if page.state == "consent-refused":
        return [
            "U heeft gekozen: uw hulpmiddelen gaan niet mee. Wij sturen geen gegevens.",
            f"Heeft u in uw nieuwe woonplaats een hulpmiddel nodig? Meld u dan bij de gemeente "
            f"{page.receiving_gemeente} (Wmo-loket). Dat kan vanaf uw verhuisdatum.",
        ]
    if page.state == "consent-withdrawn":
        return [
            "U heeft uw toestemming ingetrokken. Wij hebben de gemeente "
            f"{page.receiving_gemeente} en de leverancier gevraagd te stoppen en uw gegevens "
            "te wissen.",
            f"Heeft u een hulpmiddel nodig? Meld u dan bij de gemeente {page.receiving_gemeente}.",
        ]
    if page.state == "consent-expired":
        return [
            "Wij hebben geen antwoord van u gekregen. Wij hebben niets gestuurd.",
            "Wilt u toch dat uw hulpmiddelen meeverhuizen? Bel dan uw gemeente.",
        ]
    if page.state == "receiver-not-connected":
        return [
            f"Dank u voor uw toestemming. De gemeente {page.receiving_gemeente} is nog niet "
            "aangesloten op ons systeem. Daarom stuurt een medewerker van de gemeente "
            f"{page.departing_gemeente} uw gegevens beveiligd naar de gemeente "
            f"{page.receiving_gemeente}.",
            "Deze medewerker belt u binnen een week. U hoort dan hoe het verder gaat. U mag uw "
            "hulpmiddelen gewoon blijven gebruiken.",
        ]
    if page.state == "wlz-institution":
        return [
            "U gaat wonen in een instelling van de Wet langdurige zorg (Wlz). Daar krijgt u "
            "hulpmiddelen via het zorgkantoor. Daarom gaan uw hulpmiddelen niet over naar de "
            f"gemeente {page.receiving_gemeente}.",
            f"U mag ze blijven gebruiken. De gemeente {page.departing_gemeente} regelt de "
            "overdracht met het zorgkantoor. U hoeft zelf niets te doen.",
        ]
    if page.state == "cancelled":
        return [
            "De overdracht van uw hulpmiddelen is gestopt. Er gaan geen gegevens meer weg.",
            f"Heeft u vragen? Bel de gemeente {page.departing_gemeente}.",
        ]
    lines = [line for device in page.devices if (line := device_sentence(page, device))]
    if not lines:
        lines.append(
            f"Wij hebben uw antwoord. De gemeente {page.receiving_gemeente} besluit nu over uw "
            "hulpmiddelen. U hoort dit van ons."
        )
    elif page.state == "completed" and handover_done(page):
        lines.append(
            "De overdracht is klaar. Elk hulpmiddel is bij u en valt nu onder de gemeente "
            f"{page.receiving_gemeente}, of een medewerker van de gemeente werkt eraan. Hierboven "
            "staat wie u kunt bellen."
        )
    else:
        lines.append(
            "De overdracht is nog niet klaar. Hierboven staat wat er nog gebeurt en wie dat doet."
        )
    return lines


def _timeline(page: ClientPage) -> list[tuple[datetime, str]]:
    states = [(at, _STATE_TEXTS[state]) for at, state in page.timeline if state in _STATE_TEXTS]
    return sorted(states + progress_events(page), key=lambda event: event[0])


def _device_text(device: DeviceLine) -> str:
    name = device.name[:1].upper() + device.name[1:]
    if not device.movable:
        return f"{name}: kan niet mee verhuizen (vast aan het huis)."
    if device.outcome == "take-over":
        return f"{name}: gaat mee."
    if device.outcome == "exception":
        extra = f" {device.alternative}" if device.alternative else ""
        if device.follow_up == "gemeente-task":
            # The new gemeente provides the alternative; until then the client keeps the device.
            extra += " Tot u dat heeft, mag u dit hulpmiddel gewoon blijven gebruiken."
        return f"{name}: gaat niet mee. {device.reason_text or ''}{extra}".strip()
    if device.consented:
        return f"{name}: u heeft ja gezegd. De nieuwe gemeente besluit nog."
    return f"{name}: gaat niet mee."


@router.get(_HOME + "/intrekken", response_class=HTMLResponse)
async def withdraw_page(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """Ask the client to confirm the withdrawal."""
    if session is None:
        return _no_session(request)
    page = await service.consent.page(session.dossier_id)
    return _render(
        request,
        "withdraw.html",
        title="Toestemming intrekken",
        page=page,
        csrf=session.csrf_token,
        phone=page.gemeente_phone,
    )


@router.post(_HOME + "/intrekken", response_class=HTMLResponse)
async def withdraw(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """Withdraw the consent: every organisation that received data is told to stop."""
    if session is None:
        return _no_session(request)
    if not _csrf_ok(session, await _form(request)):
        return _forbidden(request)
    try:
        await service.consent.withdraw(session.dossier_id)
    except (AgentError, DossierUnknown):
        return _message(
            request, 409, "Dit lukt niet", "Er is geen toestemming die u kunt intrekken."
        )
    service.wake()
    return RedirectResponse(_HOME, status_code=303, headers=page_headers())


@cache
def _stylesheet() -> bytes:
    return resources.files("agent.web").joinpath("static/consent.css").read_bytes()


@router.get(_HOME + "/stijl.css")
async def stylesheet() -> Response:
    """The pages' style sheet."""
    return Response(
        _stylesheet(),
        media_type="text/css",
        headers={**page_headers(), "Cache-Control": "public, max-age=3600"},
    )

"""Signing in and out of the werkbak: OpenID Connect, or in development a demo sign-in.

Signing out always ends the werkbak session; when the provider offers an
``end_session_endpoint``, the person then goes there to end the provider's session too
(RP-Initiated Logout 1.0), and comes back to ``SIGNED_OUT_PATH`` with the ``state`` we sent.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from agent.settings import WerkbakRole
from agent.web._html import https
from agent.web.werkbak.oidc import (
    CALLBACK_PATH,
    SIGNED_OUT_PATH,
    OidcClient,
    SignInFailed,
    allowed_roles,
)
from agent.web.werkbak.rendering import (
    HOME,
    SIGN_IN,
    ServiceDep,
    SessionDep,
    forbidden,
    form,
    message,
    redirect,
    render,
    sessions,
)
from agent.web.werkbak.sessions import COOKIE
from protocol.logs import log_event

__all__ = [
    "callback",
    "demo_sign_in",
    "home",
    "router",
    "sign_in_page",
    "sign_out",
    "signed_out",
    "start",
]

router = APIRouter(include_in_schema=False)
_log = logging.getLogger("meeverhuizen.agent")
_FIRST_PAGE: dict[WerkbakRole, str] = {
    "consulent": "/werkbak/taken",
    "planner": "/werkbak/opdrachten",
    "operator": "/werkbak/beheer",
}


def _oidc(request: Request, service: ServiceDep) -> OidcClient | None:
    if service.settings.werkbak.oidc_issuer is None:
        return None
    client: OidcClient | None = getattr(request.app.state, "werkbak_oidc", None)
    if client is None:
        client = OidcClient(service.settings, http=service.http, clock=service.clock)
        request.app.state.werkbak_oidc = client
    return client


def _set_cookie(response: Response, request: Request, service: ServiceDep, value: str) -> None:
    secure = https(request, service.settings.public_base_url)
    response.set_cookie(
        COOKIE, value, httponly=True, samesite="lax", secure=secure, path="/werkbak"
    )


@router.get(HOME, response_class=HTMLResponse)
async def home(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """The first page of the person's first role; the sign-in page without a session."""
    if session is None:
        return redirect(SIGN_IN)
    for role in allowed_roles(service.settings):
        if role in session.roles:
            return redirect(_FIRST_PAGE[role])
    return message(request, session, 403, "Geen toegang", "U heeft geen rol in deze werkbak.")


@router.get(SIGN_IN, response_class=HTMLResponse)
async def sign_in_page(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """Sign in with the organisation's account; in development also a demo sign-in."""
    if session is not None:
        return redirect(HOME)
    demo = service.settings.environment == "development"
    cookie = csrf = None
    if demo:
        # The demo form needs a CSRF token before anyone is signed in: a pending session.
        cookie, pending = await sessions(service).start_sign_in({})
        csrf = pending.csrf_token
    answer = render(
        request,
        "sign_in.html",
        None,
        title="Inloggen",
        provider=service.settings.werkbak.oidc_issuer is not None,
        demo=demo,
        roles=allowed_roles(service.settings),
        csrf=csrf,
    )
    if cookie is not None:
        _set_cookie(answer, request, service, cookie)
    return answer


@router.get(SIGN_IN + "/start")
async def start(request: Request, service: ServiceDep) -> Response:
    """Send the person to the provider (authorization code flow with PKCE)."""
    client = _oidc(request, service)
    if client is None:
        return message(request, None, 404, "Inloggen kan niet", "Er is geen inlogdienst ingesteld.")
    try:
        url, kept = await client.authorization_url()
    except SignInFailed as exc:
        log_event(_log, "werkbak_sign_in_failed", reason=str(exc))
        return _provider_down(request)
    cookie, _ = await sessions(service).start_sign_in(kept)
    answer = redirect(url)
    _set_cookie(answer, request, service, cookie)
    return answer


def _provider_down(request: Request) -> HTMLResponse:
    return message(
        request,
        None,
        503,
        "Inloggen lukt nu niet",
        "De inlogdienst van uw organisatie antwoordt niet goed. Probeer het later opnieuw.",
    )


@router.get(CALLBACK_PATH)
async def callback(request: Request, service: ServiceDep) -> Response:
    """The provider sends the person back with a code: verify, then start the session."""
    client = _oidc(request, service)
    cookie = request.cookies.get(COOKIE)
    pending = await sessions(service).find(cookie)
    state = request.query_params.get("state", "")
    code = request.query_params.get("code")
    if (
        client is None
        or pending is None
        or not pending.pending
        or "state" not in pending.sign_in
        or not hmac.compare_digest(pending.sign_in["state"].encode(), state.encode())
        or not code
    ):
        return message(
            request,
            None,
            400,
            "Inloggen is niet gelukt",
            "Het inloggen duurde te lang of is ergens anders begonnen. Begin opnieuw.",
        )
    try:
        identity = await client.identity(code, pending.sign_in)
    except SignInFailed as exc:
        log_event(_log, "werkbak_sign_in_failed", reason=str(exc))
        return message(
            request,
            None,
            403,
            "Inloggen is niet gelukt",
            "De inlogdienst heeft u niet aangemeld voor deze organisatie.",
        )
    if not identity.roles:
        log_event(_log, "werkbak_sign_in_refused", reason="no werkbak role")
        return message(
            request,
            None,
            403,
            "Geen toegang",
            f"U heeft geen rol in de werkbak van {service.settings.name}. Vraag uw beheerder "
            "om een rol.",
        )
    new_cookie, _ = await sessions(service).signed_in(
        cookie,
        user_name=identity.name,
        subject=identity.subject,
        roles=identity.roles,
        at_provider=True,
    )
    log_event(_log, "werkbak_signed_in", roles=",".join(identity.roles))
    answer = redirect(HOME)
    _set_cookie(answer, request, service, new_cookie)
    return answer


@router.post(SIGN_IN + "/demo")
async def demo_sign_in(request: Request, service: ServiceDep) -> Response:
    """Development only: sign in under a name and a role, without a provider."""
    if service.settings.environment != "development":
        return message(request, None, 404, "Niet gevonden", "Deze pagina bestaat niet.")
    cookie = request.cookies.get(COOKIE)
    pending = await sessions(service).find(cookie)
    if pending is None or not pending.pending:
        return forbidden(request, None)
    posted = await form(request, pending)
    if posted is None:
        return forbidden(request, None)
    role = posted.get("rol")
    name = posted.get("naam")[:100] or "Demo-gebruiker"
    roles = allowed_roles(service.settings)
    if role not in roles:
        return forbidden(request, None)
    chosen = next(r for r in roles if r == role)
    new_cookie, _ = await sessions(service).signed_in(
        cookie, user_name=name, subject=f"demo:{name}", roles=(chosen,)
    )
    answer = redirect(HOME)
    _set_cookie(answer, request, service, new_cookie)
    return answer


@router.post("/werkbak/uitloggen")
async def sign_out(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """End the session, then at the provider too when it offers that."""
    if session is None:
        return redirect(SIGN_IN)
    if await form(request, session) is None:
        return forbidden(request, session)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        await sessions(service).end(cookie)
    state = secrets.token_urlsafe(32)
    at_provider = session.sign_in.get("at_provider") is True
    url = await _end_session_url(request, service, state) if at_provider else None
    if url is None:
        log_event(_log, "werkbak_signed_out", at_provider=False)
        answer = redirect(SIGN_IN + "?melding=uitgelogd")
        answer.delete_cookie(COOKIE, path="/werkbak")
        return answer
    # The provider sends the person back with this state: a pending session keeps it.
    pending, _ = await sessions(service).start_sign_in({"sign_out_state": state})
    log_event(_log, "werkbak_signed_out", at_provider=True)
    answer = redirect(url)
    _set_cookie(answer, request, service, pending)
    return answer


async def _end_session_url(request: Request, service: ServiceDep, state: str) -> str | None:
    client = _oidc(request, service)
    if client is None:
        return None  # no provider: there is nothing to end there
    try:
        return await client.end_session_url(state)
    except SignInFailed as exc:
        log_event(_log, "werkbak_sign_out_at_provider_failed", reason=str(exc))
        return None


@router.get(SIGNED_OUT_PATH)
async def signed_out(request: Request, service: ServiceDep) -> Response:
    """The provider sends the person back after signing out there."""
    cookie = request.cookies.get(COOKIE)
    pending = await sessions(service).find(cookie)
    kept = pending.sign_in.get("sign_out_state") if pending and pending.pending else None
    state = request.query_params.get("state", "")
    answer = redirect(SIGN_IN + "?melding=uitgelogd")
    if cookie and isinstance(kept, str) and hmac.compare_digest(kept.encode(), state.encode()):
        await sessions(service).end(cookie)
        answer.delete_cookie(COOKIE, path="/werkbak")
    return answer

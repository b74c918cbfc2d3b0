"""What the client's pages and the werkbak share: the templates, the page headers, the service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, Request
from jinja2 import Environment, PackageLoader, select_autoescape

from agent.service import AgentService
from registry.server_kit.dutch import dutch_date

__all__ = ["ServiceDep", "https", "page_headers", "parse_form", "templates"]

# A larger body is no form of ours: refused before it is parsed.
_MAX_FORM_BYTES = 16_384
# No script at all; styles only from this agent; forms post only to this agent (and, for the
# werkbak's sign-out, redirect to its sign-in provider).
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'{form_targets}; "
    "frame-ancestors 'none'; base-uri 'none'"
)


async def _service(request: Request) -> AgentService:
    service: AgentService = request.app.state.service
    return service


ServiceDep = Annotated[AgentService, Depends(_service)]


def templates(**filters: Callable[..., Any]) -> Environment:
    """The templates under ``web/templates``, autoescaped, with ``dutch_date`` and ``filters``."""
    environment = Environment(
        loader=PackageLoader("agent", "web/templates"),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
    )
    environment.filters["dutch_date"] = _dutch_date
    environment.filters.update(filters)
    return environment


def _dutch_date(value: date | datetime | None) -> str:
    if value is None:
        return "-"
    return dutch_date(value.date() if isinstance(value, datetime) else value)


def page_headers(*, form_targets: tuple[str, ...] = ()) -> dict[str, str]:
    """The headers of every page: no script, no referrer, never cached.

    ``form_targets``: origins besides this agent a form may lead to, also by a redirect after
    it is posted (CSP ``form-action`` covers redirects).
    """
    targets = "".join(f" {origin}" for origin in form_targets)
    return {
        "Content-Security-Policy": _CSP.format(form_targets=targets),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def https(request: Request, public_base_url: str) -> bool:
    """Whether the person reaches this agent over HTTPS: cookies are then ``Secure``."""
    return request.url.scheme == "https" or public_base_url.startswith("https://")


async def parse_form(request: Request) -> dict[str, list[str]] | None:
    """The posted form fields, or None when the body is too large to be one of ours."""
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return None
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)

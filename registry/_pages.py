"""The public monitoring pages: the sums of the daily reports, for people to read.

Server-rendered (Jinja2), no JavaScript, Dutch at B1 level; the same counts as the JSON answers
of ``registry.api.routes.monitoring``, with every count below 5 shown as "minder dan 5".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from registry._state import RegistryState
from registry.api.routes.monitoring import (
    Period,
    complete_months,
    country_view,
    gemeente_view,
    period,
)
from registry.errors import InvalidRegistryInput, ParticipantUnknown
from registry.server_kit.dutch import MONTHS, dutch_date

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_HOME: Final = "/monitoring"
# No script at all; styles only from the registry; forms go only to the registry.
_CSP: Final = (
    "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_BUCKETS: Final = {
    "none": "Geen dag",
    "oneToThree": "1 tot en met 3 dagen",
    "fourToSeven": "4 tot en met 7 dagen",
    "eightToFourteen": "8 tot en met 14 dagen",
    "fifteenToThirty": "15 tot en met 30 dagen",
    "moreThanThirty": "Meer dan 30 dagen",
}
_DEADLINES: Final = {
    "clientContact": "De leverancier belt de cliënt binnen 5 werkdagen",
    "settlementOrder": "De leverancier krijgt op tijd de opdracht bij een prijsvoorstel",
}
_TASKS: Final = {
    "consentRefused": "De cliënt wil niet dat het hulpmiddel meegaat",
    "consentNoAnswer": "De cliënt gaf geen antwoord",
    "receiverNotConnected": "De nieuwe gemeente is nog niet aangesloten",
    "noSupplier": "Er is geen leverancier voor het hulpmiddel",
    "supplierRefused": "De leverancier wil het hulpmiddel niet overnemen",
    "supplierOverdue": "De leverancier belde de cliënt niet op tijd",
    "supplierProblem": "De leverancier meldt een probleem",
    "supplierContactDue": "De leverancier moet de cliënt nog bellen",
    "settlementDisputed": "De leveranciers zijn het niet eens over de prijs",
    "orderStopped": "Een opdracht aan de leverancier is gestopt",
    "emigration": "De cliënt verhuist naar het buitenland",
    "wlzInstitution": "De cliënt gaat naar een instelling van de Wlz",
    "manualCheck": "Iemand moet het dossier nakijken",
    "provideAlternative": "De cliënt krijgt een ander hulpmiddel",
    "fixedDeviceNeed": "Het hulpmiddel zit vast in de woning",
    "endBeschikking": "De beschikking moet stoppen",
    "eigenBijdrageStart": "De eigen bijdrage moet beginnen",
    "eigenBijdrageEnd": "De eigen bijdrage moet stoppen",
    "transferPrice": "De prijs van de overdracht moet worden geregeld",
    "letterNotSent": "Een brief aan de cliënt is niet verstuurd",
    "collectDevice": "Het hulpmiddel moet worden opgehaald",
    "clientDeceased": "De cliënt is overleden",
    "consentWithdrawn": "De cliënt trok de toestemming in",
    "moveWithinRegion": "De cliënt verhuist binnen de regio van de organisatie",
    "settlementUnanswered": "Een prijsvoorstel van een leverancier wacht op antwoord",
}


@dataclass(frozen=True)
class _Row:
    label: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class _Table:
    caption: str
    headings: tuple[str, ...]
    rows: tuple[_Row, ...]


@dataclass(frozen=True)
class _Section:
    heading: str
    intro: str = ""
    tables: tuple[_Table, ...] = field(default_factory=tuple)


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("registry", "web/templates"),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
    )


def _shown(value: int | None) -> str:
    return "minder dan 5" if value is None else str(value)


def _tables(figures: dict[str, int | None], *, suppliers: bool = False) -> tuple[_Table, ...]:
    """The tables of a gemeente, or of the suppliers (who count takeover orders, not days)."""

    def value(name: str) -> str:
        return _shown(figures.get(name))

    def handover(side: str, label: str) -> _Row:
        return _Row(
            label, (value(f"handovers.{side}.started"), value(f"handovers.{side}.completed"))
        )

    if suppliers:
        handovers = _Table(
            "Overnameopdrachten in deze maand",
            ("Opdracht", "Ontvangen", "Overgenomen"),
            (handover("receiving", "Opdrachten aan de nieuwe leverancier"),),
        )
    else:
        handovers = _Table(
            "Overdrachten in deze maand",
            ("Rol van de gemeente", "Begonnen", "Klaar"),
            (
                handover("departing", "Als vertrekkende gemeente"),
                handover("receiving", "Als ontvangende gemeente"),
            ),
        )
    days = _Table(
        "Hoe lang de cliënt na de verhuisdatum zonder hulpmiddel zat",
        ("Dagen zonder hulpmiddel", "Aantal overdrachten"),
        tuple(
            _Row(label, (value(f"daysWithoutDevice.{name}"),)) for name, label in _BUCKETS.items()
        ),
    )
    deadlines = _Table(
        "Termijnen die in deze maand afliepen",
        ("Termijn", "Op tijd", "Te laat"),
        tuple(
            _Row(label, (value(f"deadlines.{name}.met"), value(f"deadlines.{name}.missed")))
            for name, label in _DEADLINES.items()
        ),
    )
    tasks = _Table(
        "Taken die op de laatste dag nog open stonden",
        ("Soort taak", "Aantal"),
        tuple(_Row(label, (value(f"openTasks.{name}"),)) for name, label in _TASKS.items()),
    )
    return (handovers, deadlines, tasks) if suppliers else (handovers, days, deadlines, tasks)


def _page(
    *,
    title: str,
    status_code: int = 200,
    error: str | None = None,
    days: Period | None = None,
    sections: tuple[_Section, ...] = (),
    gemeenten: list[tuple[str, str]],
    months: list[tuple[str, str]],
    gemeentecode: str | None = None,
    json_link: str,
) -> Response:
    html = (
        _templates()
        .get_template("monitoring.html")
        .render(
            title=title,
            error=error,
            period=days,
            period_text=(
                f"de maand {MONTHS[days.first.month - 1]} {days.first.year}: de dagen van "
                f"{dutch_date(days.first)} tot en met {dutch_date(days.last)}"
                if days
                else ""
            ),
            months=months,
            month=days.month if days else "",
            form_action=f"{_HOME}/gemeente" if gemeentecode else _HOME,
            sections=sections,
            gemeenten=gemeenten,
            gemeentecode=gemeentecode,
            json_link=json_link,
        )
    )
    headers = {
        "Content-Security-Policy": _CSP,
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(html, status_code=status_code, headers=headers)


async def _registry(request: Request) -> RegistryState:
    registry: RegistryState = request.app.state.registry
    await registry.ensure_started()
    return registry


_RegistryDep = Annotated[RegistryState, Depends(_registry)]
# A raw string: a wrong month is told on the page itself, not as a JSON problem.
_MonthQuery = Annotated[str, Query(max_length=20)]


def _period(registry: RegistryState, month: str) -> Period:
    try:
        return period(registry, month or None)
    except InvalidRegistryInput as exc:
        raise InvalidRegistryInput(
            "Kies een maand uit de lijst. Daarin staan alleen hele maanden die voorbij zijn."
        ) from exc


def _month_choices(registry: RegistryState) -> list[tuple[str, str]]:
    return [
        (month.month, f"{MONTHS[month.first.month - 1]} {month.first.year}")
        for month in complete_months(registry)
    ]


async def _gemeenten(registry: RegistryState) -> list[tuple[str, str]]:
    rows = await registry.store.gemeenten()
    return sorted(((row.gemeentecode or "", row.name) for row in rows), key=lambda item: item[1])


def _reporting(organisations: int, one: str, more: str) -> str:
    return f"Er kwamen cijfers van {organisations} {one if organisations == 1 else more}."


def _query(days: Period) -> str:
    return f"month={days.month}"


@router.get(_HOME)
async def country_page(registry: _RegistryDep, maand: _MonthQuery = "") -> Response:
    """The whole country: gemeenten and suppliers apart."""
    gemeenten, months = await _gemeenten(registry), _month_choices(registry)
    title = "Hulpmiddelen die meeverhuizen: heel Nederland"
    try:
        days = _period(registry, maand)
    except InvalidRegistryInput as exc:
        return _page(
            title=title,
            status_code=400,
            error=exc.detail,
            gemeenten=gemeenten,
            months=months,
            json_link="/v1/monitoring",
        )
    view = await country_view(registry, days)
    sections = (
        _Section(
            "Gemeenten",
            _reporting(view.gemeenten.organisations, "gemeente of regio", "gemeenten en regio's"),
            _tables(view.gemeenten.figures),
        ),
        _Section(
            "Leveranciers",
            _reporting(view.suppliers.organisations, "leverancier", "leveranciers"),
            _tables(view.suppliers.figures, suppliers=True),
        ),
    )
    return _page(
        title=title,
        days=days,
        sections=sections,
        gemeenten=gemeenten,
        months=months,
        json_link=f"/v1/monitoring?{_query(days)}",
    )


@router.get(_HOME + "/gemeente")
async def gemeente_page(
    registry: _RegistryDep,
    gemeentecode: Annotated[str, Query(max_length=10)] = "",
    maand: _MonthQuery = "",
) -> Response:
    """One gemeente, from the reports of the agent that serves it."""
    gemeenten, months = await _gemeenten(registry), _month_choices(registry)
    names = dict(gemeenten)
    if gemeentecode not in names:
        return _page(
            title="Deze gemeente kennen we niet",
            status_code=404,
            error="Kies een gemeente uit de lijst hieronder.",
            gemeenten=gemeenten,
            months=months,
            json_link="/v1/monitoring",
        )
    title = f"Hulpmiddelen die meeverhuizen: {names[gemeentecode]}"
    json_link = f"/v1/gemeenten/{gemeentecode}/monitoring"
    try:
        days = _period(registry, maand)
        view = await gemeente_view(registry, gemeentecode, days)
    except (InvalidRegistryInput, ParticipantUnknown) as exc:
        return _page(
            title=title,
            status_code=400,
            error=exc.detail,
            gemeenten=gemeenten,
            months=months,
            gemeentecode=gemeentecode,
            json_link=json_link,
        )
    if view.served_by is None:
        intro = f"{view.name} stuurt nog geen cijfers. De gemeente is nog niet aangesloten."
    elif len(view.gemeentecodes) > 1:
        together = ", ".join(names.get(code, code) for code in view.gemeentecodes)
        intro = (
            f"{view.served_by} stuurt de cijfers voor een regio. Deze cijfers gelden voor deze "
            f"gemeenten samen: {together}."
        )
    else:
        intro = f"Deze cijfers stuurde {view.name} zelf."
    tables = () if view.served_by is None else _tables(view.counts.figures)
    section = _Section(view.name, intro, tables)
    return _page(
        title=title,
        days=days,
        sections=(section,),
        gemeenten=gemeenten,
        months=months,
        gemeentecode=gemeentecode,
        json_link=f"{json_link}?{_query(days)}",
    )


@cache
def _stylesheet() -> bytes:
    return resources.files("registry").joinpath("web/monitoring.css").read_bytes()


@router.get(_HOME + "/stijl.css")
async def stylesheet() -> Response:
    """The pages' style sheet."""
    return Response(
        _stylesheet(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )

"""Daily reports: an agent sends its organisation's counts, signed; anyone reads the sums.

The sums a reader gets hide every count below the threshold (``registry.monitoring``); the
stored reports are exact and are never answered one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response

from protocol.roles import PARTICIPANT_ROLES
from registry._reports import PeriodFigures
from registry._state import RegistryState
from registry.api.answers import (
    CountryMonitoringAnswer,
    GemeenteMonitoringAnswer,
    ReportAnswer,
    answer_responses,
    signed_request,
)
from registry.api.deps import RegistryDep
from registry.api.routes.gemeenten import GemeentecodePath
from registry.api.routes.participants import OinPath, verified_request
from registry.errors import (
    InvalidRegistryInput,
    ParticipantNotEnrolled,
    ParticipantUnknown,
    ReportNotPermitted,
    RequestReplayed,
    SignedChangeRejected,
)
from registry.monitoring import REPORT_WINDOW_DAYS, DailyReport, suppress

__all__ = [
    "AMSTERDAM",
    "MONTHS_TO_CHOOSE",
    "CountryView",
    "GemeenteView",
    "Period",
    "PublicFigures",
    "complete_months",
    "country_view",
    "gemeente_view",
    "get_country_monitoring",
    "get_gemeente_monitoring",
    "period",
    "receive_report",
    "router",
]

router = APIRouter(tags=["monitoring"])
AMSTERDAM: Final = ZoneInfo("Europe/Amsterdam")
# Months on the page to choose from, the newest complete month first.
MONTHS_TO_CHOOSE: Final = 24

MonthQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
        description="The month (YYYY-MM), a complete one; default: the last complete month",
    ),
]


@dataclass(frozen=True)
class Period:
    """One calendar month, days from ``first`` to ``last`` included (Europe/Amsterdam)."""

    first: date
    last: date

    @property
    def month(self) -> str:
        """The month as ``YYYY-MM``."""
        return self.first.strftime("%Y-%m")


def _today(registry: RegistryState) -> date:
    return registry.clock.now().astimezone(AMSTERDAM).date()


def _month(first: date) -> Period:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return Period(first, following - timedelta(days=1))


def _settled(registry: RegistryState) -> date:
    """The last day no report can change any more."""
    return _today(registry) - timedelta(days=REPORT_WINDOW_DAYS + 1)


def complete_months(registry: RegistryState, count: int = MONTHS_TO_CHOOSE) -> list[Period]:
    """The last ``count`` settled months, newest first (docs/registry.md, "Monitoring")."""
    months = []
    settled = _settled(registry)
    newest = _month(settled.replace(day=1))
    last = settled if newest.last == settled else newest.first - timedelta(days=1)
    for _ in range(count):
        month = _month(last.replace(day=1))
        months.append(month)
        last = month.first - timedelta(days=1)
    return months


def period(registry: RegistryState, month: str | None) -> Period:
    """The month asked for (``YYYY-MM``), or the last settled one.

    The public sees whole months only, and only once no report can change them: two periods
    that overlap, or a month seen before and after a report, would give a small count away by
    subtraction.
    """
    if month is None:
        return complete_months(registry, 1)[0]
    try:
        asked = _month(date.fromisoformat(f"{month}-01"))
    except ValueError as exc:
        raise InvalidRegistryInput("month is not a month (YYYY-MM)") from exc
    if asked.last > _settled(registry):
        raise InvalidRegistryInput(
            f"month is not settled yet; a month is shown {REPORT_WINDOW_DAYS} days after its end"
        )
    return asked


@dataclass(frozen=True)
class PublicFigures:
    """Counts as the public may see them: how many organisations reported, small counts None."""

    organisations: int
    figures: dict[str, int | None]

    @classmethod
    def of(cls, exact: PeriodFigures) -> PublicFigures:
        """The public side of exact sums (``registry.monitoring.suppress``)."""
        return cls(exact.organisations, suppress(exact.parts))

    def wire(self) -> dict[str, Any]:
        """As ``MonitoringFigures`` on the wire."""
        return {"organisations": self.organisations, "figures": self.figures}


@dataclass(frozen=True)
class GemeenteView:
    """What the public sees of one gemeente: its name, who reports for it, its counts."""

    gemeentecode: str
    name: str
    period: Period
    served_by: str | None
    gemeentecodes: tuple[str, ...]
    counts: PublicFigures


@dataclass(frozen=True)
class CountryView:
    """What the public sees of the country: gemeenten and suppliers apart."""

    period: Period
    gemeenten: PublicFigures
    suppliers: PublicFigures


async def gemeente_view(registry: RegistryState, gemeentecode: str, days: Period) -> GemeenteView:
    """One gemeente's counts over ``days``, from the agent that serves it."""
    own = next(
        (row for row in await registry.store.gemeenten() if row.gemeentecode == gemeentecode), None
    )
    if own is None:
        raise ParticipantUnknown(f"no gemeente with code {gemeentecode}")
    serving = await registry.store.gemeente(gemeentecode)
    if serving.oin is None:
        nobody = PublicFigures.of(PeriodFigures(()))
        return GemeenteView(gemeentecode, own.name, days, None, (gemeentecode,), nobody)
    figures = await registry.reports.of_organisation(serving.oin, first=days.first, last=days.last)
    return GemeenteView(
        gemeentecode=gemeentecode,
        name=own.name,
        period=days,
        served_by=serving.name,
        gemeentecodes=tuple(serving.gemeentecodes),
        counts=PublicFigures.of(figures),
    )


async def country_view(registry: RegistryState, days: Period) -> CountryView:
    """The country's counts over ``days``."""
    gemeenten = await registry.reports.of_kind("gemeente", first=days.first, last=days.last)
    suppliers = await registry.reports.of_kind("supplier", first=days.first, last=days.last)
    return CountryView(days, PublicFigures.of(gemeenten), PublicFigures.of(suppliers))


@router.get(
    "/monitoring", responses=answer_responses(CountryMonitoringAnswer, InvalidRegistryInput)
)
async def get_country_monitoring(
    request: Request, registry: RegistryDep, month: MonthQuery = None
) -> Response:
    """The handovers of the whole country in a month; counts below 5 are null."""
    view = await country_view(registry, period(registry, month))
    data = {
        "month": view.period.month,
        "firstDay": view.period.first.isoformat(),
        "lastDay": view.period.last.isoformat(),
        "gemeenten": view.gemeenten.wire(),
        "suppliers": view.suppliers.wire(),
    }
    return registry.signer.answer(request, data)


@router.get(
    "/gemeenten/{gemeentecode}/monitoring",
    responses=answer_responses(GemeenteMonitoringAnswer, ParticipantUnknown, InvalidRegistryInput),
)
async def get_gemeente_monitoring(
    request: Request,
    registry: RegistryDep,
    gemeentecode: GemeentecodePath,
    month: MonthQuery = None,
) -> Response:
    """The handovers of one gemeente in a month; counts below 5 are null."""
    view = await gemeente_view(registry, gemeentecode, period(registry, month))
    data = {
        "gemeentecode": view.gemeentecode,
        "name": view.name,
        "month": view.period.month,
        "firstDay": view.period.first.isoformat(),
        "lastDay": view.period.last.isoformat(),
        "servedBy": view.served_by,
        "gemeentecodes": list(view.gemeentecodes),
        "counts": view.counts.wire(),
    }
    return registry.signer.answer(request, data)


async def _verified_report(registry: RegistryState, request: Request, oin: str) -> DailyReport:
    report = await verified_request(registry, request, oin, DailyReport, lambda r: r.reported_at)
    today = _today(registry)
    if not today - timedelta(days=REPORT_WINDOW_DAYS) <= report.day <= today:
        raise InvalidRegistryInput(f"day must lie within the last {REPORT_WINDOW_DAYS} days")
    return report


@router.post(
    "/participants/{oin}/daily-reports",
    status_code=201,
    responses=answer_responses(
        ReportAnswer,
        SignedChangeRejected,
        ReportNotPermitted,
        RequestReplayed,
        InvalidRegistryInput,
        ParticipantUnknown,
        ParticipantNotEnrolled,
        status=201,
    ),
    openapi_extra=signed_request("DailyReport"),
)
async def receive_report(request: Request, registry: RegistryDep, oin: OinPath) -> Response:
    """Store an organisation's counts for one day, signed by one of its valid keys."""
    report = await _verified_report(registry, request, oin)
    participant = await registry.store.participant(oin)
    if participant.endpoint is None:
        raise ParticipantNotEnrolled("the participant has not enrolled its agent yet")
    allowed = set(PARTICIPANT_ROLES.get(report.kind, ()))
    if participant.kind != report.kind or not allowed & set(participant.roles):
        raise ReportNotPermitted(f"a {participant.kind} cannot report as a {report.kind}")
    await registry.reports.record(report)
    data = {"oin": report.oin, "day": report.day.isoformat()}
    return registry.signer.answer(request, data, status_code=201)

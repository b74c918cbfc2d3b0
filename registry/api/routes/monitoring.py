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
from pydantic import ValidationError

from protocol.roles import PARTICIPANT_ROLES
from registry._reports import PeriodFigures
from registry._state import RegistryState
from registry.api.answers import (
    CountryMonitoringAnswer,
    GemeenteMonitoringAnswer,
    ReportAnswer,
    answer_responses,
)
from registry.api.deps import RegistryDep
from registry.api.routes.gemeenten import GemeentecodePath
from registry.api.routes.participants import OinPath, invalid_fields, verified_document
from registry.errors import (
    InvalidRegistryInput,
    ParticipantNotEnrolled,
    ParticipantUnknown,
    ReportNotPermitted,
    RequestReplayed,
    SignedChangeRejected,
)
from registry.monitoring import DailyReport, suppress

__all__ = [
    "AMSTERDAM",
    "DEFAULT_PERIOD_DAYS",
    "CountryView",
    "GemeenteView",
    "Period",
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
# Without a period asked for: the four weeks up to and including yesterday.
DEFAULT_PERIOD_DAYS: Final = 28
_LONGEST_PERIOD_DAYS: Final = 366
# A report may be sent again for some time after its day (an agent that was down catches up).
_OLDEST_REPORT_DAYS: Final = 31

FirstDayQuery = Annotated[
    date | None, Query(alias="firstDay", description="First day of the period (default: 28 days)")
]
LastDayQuery = Annotated[
    date | None, Query(alias="lastDay", description="Last day of the period (default: yesterday)")
]


@dataclass(frozen=True)
class Period:
    """Days from ``first`` to ``last``, both included (Europe/Amsterdam)."""

    first: date
    last: date


def _today(registry: RegistryState) -> date:
    return registry.clock.now().astimezone(AMSTERDAM).date()


def period(registry: RegistryState, first: date | None, last: date | None) -> Period:
    """The period asked for, or the default one; a reversed or too long period is refused."""
    last = last or _today(registry) - timedelta(days=1)
    first = first or last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if first > last:
        raise InvalidRegistryInput("firstDay is after lastDay")
    if (last - first).days >= _LONGEST_PERIOD_DAYS:
        raise InvalidRegistryInput(f"a period is at most {_LONGEST_PERIOD_DAYS} days")
    return Period(first, last)


@dataclass(frozen=True)
class GemeenteView:
    """What the public sees of one gemeente: its name, who reports for it, suppressed counts."""

    gemeentecode: str
    name: str
    period: Period
    served_by: str | None
    gemeentecodes: tuple[str, ...]
    organisations: int
    figures: dict[str, int | None]


@dataclass(frozen=True)
class CountryView:
    """What the public sees of the country: gemeenten and suppliers apart, suppressed counts."""

    period: Period
    gemeenten: PeriodFigures
    suppliers: PeriodFigures

    def public(self, figures: PeriodFigures) -> dict[str, int | None]:
        """The counts of ``figures`` as the public may see them."""
        return suppress(figures.figures)


async def gemeente_view(registry: RegistryState, gemeentecode: str, days: Period) -> GemeenteView:
    """One gemeente's counts over ``days``, from the agent that serves it."""
    own = next(
        (row for row in await registry.store.gemeenten() if row.gemeentecode == gemeentecode), None
    )
    if own is None:
        raise ParticipantUnknown(f"no gemeente with code {gemeentecode}")
    serving = await registry.store.gemeente(gemeentecode)
    if serving.oin is None:
        return GemeenteView(gemeentecode, own.name, days, None, (gemeentecode,), 0, {})
    figures = await registry.reports.of_organisation(serving.oin, first=days.first, last=days.last)
    return GemeenteView(
        gemeentecode=gemeentecode,
        name=own.name,
        period=days,
        served_by=serving.name,
        gemeentecodes=tuple(serving.gemeentecodes),
        organisations=figures.organisations,
        figures=suppress(figures.figures),
    )


async def country_view(registry: RegistryState, days: Period) -> CountryView:
    """The country's counts over ``days``."""
    gemeenten = await registry.reports.of_kind("gemeente", first=days.first, last=days.last)
    suppliers = await registry.reports.of_kind("supplier", first=days.first, last=days.last)
    return CountryView(days, gemeenten, suppliers)


def _figures(organisations: int, figures: dict[str, int | None]) -> dict[str, Any]:
    return {"organisations": organisations, "figures": figures}


@router.get(
    "/monitoring", responses=answer_responses(CountryMonitoringAnswer, InvalidRegistryInput)
)
async def get_country_monitoring(
    request: Request,
    registry: RegistryDep,
    first_day: FirstDayQuery = None,
    last_day: LastDayQuery = None,
) -> Response:
    """The handovers of the whole country over a period; counts below 5 are null."""
    view = await country_view(registry, period(registry, first_day, last_day))
    data = {
        "firstDay": view.period.first.isoformat(),
        "lastDay": view.period.last.isoformat(),
        "gemeenten": _figures(view.gemeenten.organisations, view.public(view.gemeenten)),
        "suppliers": _figures(view.suppliers.organisations, view.public(view.suppliers)),
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
    first_day: FirstDayQuery = None,
    last_day: LastDayQuery = None,
) -> Response:
    """The handovers of one gemeente over a period; counts below 5 are null."""
    view = await gemeente_view(registry, gemeentecode, period(registry, first_day, last_day))
    data = {
        "gemeentecode": view.gemeentecode,
        "name": view.name,
        "firstDay": view.period.first.isoformat(),
        "lastDay": view.period.last.isoformat(),
        "servedBy": view.served_by,
        "gemeentecodes": list(view.gemeentecodes),
        "counts": _figures(view.organisations, view.figures),
    }
    return registry.signer.answer(request, data)


async def _verified_report(registry: RegistryState, request: Request, oin: str) -> DailyReport:
    document = await verified_document(registry, request, oin)
    try:
        report = DailyReport.model_validate(document)
    except ValidationError as exc:
        raise invalid_fields(exc) from exc
    if report.oin != oin:
        raise SignedChangeRejected("the signed report names another participant")
    if abs(report.reported_at - registry.clock.now()) > registry.settings.request_clock_skew:
        raise RequestReplayed("reportedAt is outside the allowed window")
    today = _today(registry)
    if not today - timedelta(days=_OLDEST_REPORT_DAYS) <= report.day <= today:
        raise InvalidRegistryInput(f"day must lie within the last {_OLDEST_REPORT_DAYS} days")
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
    # Like an entry change, the route verifies the exact signed bytes itself.
    openapi_extra={
        "parameters": [
            {
                "name": "Digest",
                "in": "header",
                "required": True,
                "description": "SHA-256 of the exact body bytes (RFC 3230): SHA-256=<base64>",
                "schema": {"type": "string"},
            },
            {
                "name": "nlgov-adr-payload-sig",
                "in": "header",
                "required": True,
                "description": "Detached JAdES compact JWS over Digest, by a valid participant key",
                "schema": {"type": "string"},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/DailyReport"}}
            },
        },
    },
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

"""The daily report of an organisation's handovers, and how the public sees the sum of them.

Every agent sends the registry, once a day, counts for its own organisation over one day
(Europe/Amsterdam): handovers started and completed, the days clients were without a device,
deadlines met and missed, and the tasks open at the end of the day. A report is counts only: its
models have fixed fields, each a whole number, and refuse any other field, so no report can
carry a BSN, a name, an address or a dossier id. The agent sends exact counts (signed, to the
registry only); the registry hides every count below :data:`SUPPRESSION_THRESHOLD` wherever it
shows them to the public (its page and its JSON answer), after adding them up
(docs/registry.md, "Monitoring").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from protocol.identifiers import Oin

__all__ = [
    "DAYS_WITHOUT_DEVICE_BUCKETS",
    "REPORT_WINDOW_DAYS",
    "SUPPRESSION_THRESHOLD",
    "Count",
    "DailyReport",
    "DaysWithoutDevice",
    "DeadlineOutcomes",
    "Deadlines",
    "HandoverCounts",
    "Handovers",
    "OpenTasks",
    "ReportCounts",
    "add_counts",
    "bucket_for_days",
    "count_fields",
    "suppress",
]

# Counts below this are never shown on their own (docs/registry.md, "Monitoring").
SUPPRESSION_THRESHOLD: Final = 5
# A report is taken for a day up to this many days back (an agent that was down catches up);
# a month is shown only when no report can change it any more.
REPORT_WINDOW_DAYS: Final = 7
# Fixed buckets of days without a device: (field name, first day, last day or None).
DAYS_WITHOUT_DEVICE_BUCKETS: Final[tuple[tuple[str, int, int | None], ...]] = (
    ("none", 0, 0),
    ("oneToThree", 1, 3),
    ("fourToSeven", 4, 7),
    ("eightToFourteen", 8, 14),
    ("fifteenToThirty", 15, 30),
    ("moreThanThirty", 31, None),
)

# A strict whole number: no string, float or bool is taken for a count.
Count = Annotated[int, Field(strict=True, ge=0, le=10_000_000)]


class _Counts(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        frozen=True,
        validate_by_alias=True,
        validate_by_name=True,
    )


class Handovers(_Counts):
    """Handovers of one side that started, and that completed, in the period."""

    started: Count = 0
    completed: Count = 0


class HandoverCounts(_Counts):
    """Handovers as departing gemeente and as receiving gemeente (or supplier)."""

    departing: Handovers = Handovers()
    receiving: Handovers = Handovers()


class DaysWithoutDevice(_Counts):
    """Completed takeovers by the days from the move date until the device was taken over."""

    none: Count = 0
    one_to_three: Count = 0
    four_to_seven: Count = 0
    eight_to_fourteen: Count = 0
    fifteen_to_thirty: Count = 0
    more_than_thirty: Count = 0


class DeadlineOutcomes(_Counts):
    """Deadlines that came due in the period: met (or no longer needed) and missed."""

    met: Count = 0
    missed: Count = 0


class Deadlines(_Counts):
    """Deadline outcomes per kind of deadline.

    ``clientContact``: the supplier contacts the client within 5 working days of the takeover
    order (normenkader); the receiving gemeente counts its orders, the supplier its own.
    ``settlementOrder``: a price offer that came before its takeover order waits for the order.
    """

    client_contact: DeadlineOutcomes = DeadlineOutcomes()
    settlement_order: DeadlineOutcomes = DeadlineOutcomes()


class OpenTasks(_Counts):
    """Tasks open at the end of the period, per kind of task."""

    consent_refused: Count = 0
    consent_no_answer: Count = 0
    receiver_not_connected: Count = 0
    no_supplier: Count = 0
    supplier_refused: Count = 0
    supplier_overdue: Count = 0
    supplier_problem: Count = 0
    supplier_contact_due: Count = 0
    settlement_disputed: Count = 0
    order_stopped: Count = 0
    emigration: Count = 0
    wlz_institution: Count = 0
    manual_check: Count = 0
    provide_alternative: Count = 0
    fixed_device_need: Count = 0
    end_beschikking: Count = 0
    eigen_bijdrage_start: Count = 0
    eigen_bijdrage_end: Count = 0
    transfer_price: Count = 0
    letter_not_sent: Count = 0
    collect_device: Count = 0
    client_deceased: Count = 0
    consent_withdrawn: Count = 0
    move_within_region: Count = 0
    settlement_unanswered: Count = 0


class ReportCounts(_Counts):
    """Every count of a report; what the registry stores and adds up."""

    handovers: HandoverCounts = HandoverCounts()
    days_without_device: DaysWithoutDevice = DaysWithoutDevice()
    deadlines: Deadlines = Deadlines()
    open_tasks: OpenTasks = OpenTasks()


class DailyReport(ReportCounts):
    """One organisation's counts for one day, signed by its agent with one of its keys."""

    oin: Oin = Field(description="The organisation reporting for itself; the signer's OIN")
    kind: Literal["gemeente", "supplier"] = Field(description="What the organisation is")
    day: date = Field(description="The day (Europe/Amsterdam) the counts are about")
    reported_at: AwareDatetime = Field(description="When the agent made the report")


def bucket_for_days(days: int) -> str:
    """The :class:`DaysWithoutDevice` field (camelCase) that ``days`` falls into."""
    for name, first, last in DAYS_WITHOUT_DEVICE_BUCKETS:
        if days >= first and (last is None or days <= last):
            return name
    return DAYS_WITHOUT_DEVICE_BUCKETS[0][0]


def _leaves(document: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, int]]:
    for name, value in document.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def count_fields(counts: ReportCounts) -> dict[str, int]:
    """Every count by its dotted wire name, e.g. ``handovers.departing.started``."""
    return dict(_leaves(counts.model_dump(by_alias=True, include=set(ReportCounts.model_fields))))


def add_counts(reports: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """The sum per field of reports given as :func:`count_fields`."""
    total = count_fields(ReportCounts())
    for report in reports:
        for name, value in report.items():
            total[name] = total.get(name, 0) + value
    return total


def suppress(parts: Sequence[Mapping[str, int]]) -> dict[str, int | None]:
    """The sum of the organisations' ``parts`` as the public may see it; None where hidden.

    A sum below the threshold is hidden. So is a sum whose parts below the threshold add up to
    1-4: the public sees the parts of 5 or more elsewhere (each gemeente's own page), and the sum
    minus those would give the small ones away. Parts of 0 may follow that way; a 0 counts nobody.
    """
    total = add_counts(parts)
    shown: dict[str, int | None] = {}
    for name, value in total.items():
        hidden = sum(v for part in parts if (v := part.get(name, 0)) < SUPPRESSION_THRESHOLD)
        small = value < SUPPRESSION_THRESHOLD or 0 < hidden < SUPPRESSION_THRESHOLD
        shown[name] = None if small else value
    return shown

"""Daily reports: signed by the organisation itself, stored, and shown with small counts hidden.

The registry checks a report like a signed entry change (a currently valid key of the OIN in the
path, the body naming that OIN, a fresh time) and that the sender reports as what it is. What
the public reads are sums in which every count below 5 is null.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from protocol import canonicalize
from protocol.signing import sign_body
from registry.errors import (
    InvalidRegistryInput,
    ReportNotPermitted,
    RequestReplayed,
    SignedChangeRejected,
)
from registry.monitoring import REPORT_WINDOW_DAYS, SUPPRESSION_THRESHOLD, DailyReport
from tests.registry.conftest import (
    START,
    UTRECHT_OIN,
    Enrolled,
    Registry,
    enrol_gemeente,
    enrol_supplier,
    gemeente_oin,
)

# In February 2025, the last complete month on START (3 March 2025): what is shown by default.
DAY = date(2025, 2, 27)


def report(oin: str, *, kind: str = "gemeente", day: date = DAY, **counts: Any) -> DailyReport:
    return DailyReport.model_validate(
        {"oin": oin, "kind": kind, "day": day.isoformat(), "reportedAt": START.isoformat()} | counts
    )


def utrecht_counts(started: int, completed: int, missed: int) -> dict[str, Any]:
    return {
        "handovers": {"departing": {"started": started, "completed": completed}},
        "daysWithoutDevice": {"none": 7, "oneToThree": 2},
        "deadlines": {"clientContact": {"met": 9, "missed": missed}},
        "openTasks": {"consentNoAnswer": 6, "manualCheck": 1},
    }


def settle(registry: Registry) -> None:
    """Past the days in which reports of February may still come: February is shown."""
    registry.clock.set(START + timedelta(days=REPORT_WINDOW_DAYS + 1))


async def send(registry: Registry, sender: Enrolled, daily: DailyReport) -> None:
    await registry.client().send_daily_report(daily, private_jwk=sender.private_jwk)


async def test_a_report_is_stored_and_shown_with_counts_below_five_hidden(
    registry: Registry,
) -> None:
    utrecht = await enrol_gemeente(registry)
    await send(registry, utrecht, report(utrecht.oin, **utrecht_counts(12, 5, 4)))

    settle(registry)
    answer = await registry.http.get("/v1/gemeenten/0344/monitoring")
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert (data["name"], data["servedBy"], data["gemeentecodes"]) == (
        "Utrecht",
        "Utrecht",
        ["0344"],
    )
    assert (data["month"], data["firstDay"], data["lastDay"]) == (
        "2025-02",
        "2025-02-01",
        "2025-02-28",
    )
    figures = data["counts"]["figures"]
    assert data["counts"]["organisations"] == 1
    assert figures["handovers.departing.started"] == 12
    assert figures["handovers.departing.completed"] == 5
    assert figures["deadlines.clientContact.met"] == 9
    assert figures["openTasks.consentNoAnswer"] == 6
    # Below the threshold, zero included: never shown on its own.
    for hidden in (
        "deadlines.clientContact.missed",
        "daysWithoutDevice.oneToThree",
        "openTasks.manualCheck",
        "handovers.receiving.started",
    ):
        assert figures[hidden] is None, hidden
    assert all(value is None or value >= SUPPRESSION_THRESHOLD for value in figures.values())


async def test_the_country_adds_the_gemeenten_up_before_hiding(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    amsterdam = await enrol_gemeente(registry, "0363", gemeente_oin(7))
    await send(registry, utrecht, report(utrecht.oin, **utrecht_counts(3, 2, 3)))
    await send(registry, amsterdam, report(amsterdam.oin, **utrecht_counts(3, 2, 1)))

    settle(registry)
    gemeente = (await registry.http.get("/v1/gemeenten/0363/monitoring")).json()["data"]
    assert gemeente["counts"]["figures"]["handovers.departing.started"] is None
    country = (await registry.http.get("/v1/monitoring")).json()["data"]
    figures = country["gemeenten"]["figures"]
    assert country["gemeenten"]["organisations"] == 2
    assert figures["handovers.departing.started"] == 6
    assert figures["deadlines.clientContact.missed"] is None  # 3 + 1
    assert figures["openTasks.consentNoAnswer"] == 12
    assert country["suppliers"] == {
        "organisations": 0,
        "figures": dict.fromkeys(figures, None),
    }


async def test_a_total_that_would_give_a_small_count_away_is_hidden(registry: Registry) -> None:
    """12 shown for Amsterdam and a total of 15 would tell that Utrecht has 3."""
    utrecht = await enrol_gemeente(registry)
    amsterdam = await enrol_gemeente(registry, "0363", gemeente_oin(7))
    await send(registry, utrecht, report(utrecht.oin, **utrecht_counts(3, 0, 0)))
    await send(registry, amsterdam, report(amsterdam.oin, **utrecht_counts(12, 0, 0)))

    settle(registry)
    amsterdam_figures = (await registry.http.get("/v1/gemeenten/0363/monitoring")).json()["data"]
    assert amsterdam_figures["counts"]["figures"]["handovers.departing.started"] == 12
    country = (await registry.http.get("/v1/monitoring")).json()["data"]["gemeenten"]["figures"]
    assert country["handovers.departing.started"] is None
    # Both 9 met and 7 + 7 days without a device: no small part in them, so shown.
    assert country["deadlines.clientContact.met"] == 18
    assert country["daysWithoutDevice.none"] == 14


async def test_the_month_asked_for_is_shown(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    await send(registry, utrecht, report(utrecht.oin, **utrecht_counts(5, 5, 5)))
    settle(registry)
    january = (await registry.http.get("/v1/monitoring?month=2025-01")).json()["data"]
    assert (january["month"], january["lastDay"]) == ("2025-01", "2025-01-31")
    assert january["gemeenten"]["organisations"] == 0
    february = (await registry.http.get("/v1/monitoring?month=2025-02")).json()["data"]
    assert february["gemeenten"]["figures"]["handovers.departing.started"] == 5


async def test_open_tasks_are_those_of_the_last_day_and_flows_add_up(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    await send(
        registry,
        utrecht,
        report(utrecht.oin, day=DAY - timedelta(days=1), **utrecht_counts(5, 5, 5)),
    )
    await send(registry, utrecht, report(utrecht.oin, **utrecht_counts(5, 5, 5)))

    settle(registry)
    figures = (await registry.http.get("/v1/gemeenten/0344/monitoring")).json()["data"]["counts"][
        "figures"
    ]
    assert figures["handovers.departing.started"] == 10
    assert figures["openTasks.consentNoAnswer"] == 6


async def test_a_newer_report_of_a_day_replaces_it_and_an_older_one_is_refused(
    registry: Registry,
) -> None:
    utrecht = await enrol_gemeente(registry)
    await send(registry, utrecht, report(utrecht.oin, **utrecht_counts(5, 5, 5)))
    registry.clock.advance(timedelta(minutes=1))
    newer = report(utrecht.oin, **utrecht_counts(8, 5, 5)).model_copy(
        update={"reported_at": registry.clock.now()}
    )
    await send(registry, utrecht, newer)
    with pytest.raises(RequestReplayed):
        await send(registry, utrecht, report(utrecht.oin, **utrecht_counts(20, 5, 5)))

    settle(registry)
    figures = (await registry.http.get("/v1/gemeenten/0344/monitoring")).json()["data"]["counts"][
        "figures"
    ]
    assert figures["handovers.departing.started"] == 8


async def post_as_utrecht(
    registry: Registry, body: DailyReport, private_jwk: dict[str, Any]
) -> httpx.Response:
    """``body`` signed with ``private_jwk``, posted to Utrecht's daily reports."""
    signed = sign_body(
        canonicalize(body.model_dump(mode="json", by_alias=True)),
        private_jwk,
        signing_time=registry.clock.now(),
    )
    return await registry.http.post(
        f"/v1/participants/{UTRECHT_OIN}/daily-reports",
        content=signed.body,
        headers=signed.headers(),
    )


async def test_a_report_for_another_organisation_is_refused(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    supplier = await enrol_supplier(registry)
    # Signed by the supplier, naming Utrecht: Utrecht's keys do not know the supplier's key.
    with pytest.raises(SignedChangeRejected):
        await send(registry, supplier, report(utrecht.oin, **utrecht_counts(50, 5, 5)))
    # Signed by the supplier for itself but posted as Utrecht's.
    supplier_report = report(supplier.oin, kind="supplier")
    answer = await post_as_utrecht(registry, supplier_report, supplier.private_jwk)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    # Signed by Utrecht, naming the supplier in the body.
    answer = await post_as_utrecht(registry, supplier_report, utrecht.private_jwk)
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("signed-change-rejected")
    settle(registry)
    country = (await registry.http.get("/v1/monitoring")).json()["data"]
    assert country["gemeenten"]["organisations"] == 0


async def test_a_supplier_cannot_report_as_a_gemeente(registry: Registry) -> None:
    supplier = await enrol_supplier(registry)
    with pytest.raises(ReportNotPermitted):
        await send(registry, supplier, report(supplier.oin, kind="gemeente"))
    await send(registry, supplier, report(supplier.oin, kind="supplier"))


async def test_a_tampered_report_is_refused(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    document = report(utrecht.oin, **utrecht_counts(5, 5, 5)).model_dump(mode="json", by_alias=True)
    signed = sign_body(canonicalize(document), utrecht.private_jwk, signing_time=START)
    tampered = signed.body.replace(b'"started":5', b'"started":500')
    assert tampered != signed.body
    answer = await registry.http.post(
        f"/v1/participants/{utrecht.oin}/daily-reports",
        content=tampered,
        headers=signed.headers(),
    )
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("signed-change-rejected")


@pytest.mark.parametrize(
    "change",
    [
        {"bsn": "999993653"},
        {"handovers": {"departing": {"started": 1, "dossierId": "d-1"}}},
        {"openTasks": {"consentNoAnswer": "6"}},
        {"openTasks": {"consentNoAnswer": -1}},
        {"deadlines": {"clientContact": {"met": 1.5}}},
    ],
)
async def test_a_report_with_anything_but_counts_is_refused(
    registry: Registry, change: dict[str, Any]
) -> None:
    utrecht = await enrol_gemeente(registry)
    document = report(utrecht.oin).model_dump(mode="json", by_alias=True) | change
    signed = sign_body(canonicalize(document), utrecht.private_jwk, signing_time=START)
    answer = await registry.http.post(
        f"/v1/participants/{utrecht.oin}/daily-reports",
        content=signed.body,
        headers=signed.headers(),
    )
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["type"].endswith("invalid-registry-input")
    assert "999993653" not in answer.text


async def test_a_report_for_a_day_in_the_future_or_long_ago_is_refused(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    for day in (date(2025, 3, 4), date(2025, 2, 23)):
        with pytest.raises(InvalidRegistryInput):
            await send(registry, utrecht, report(utrecht.oin, day=day))
    # A week back is still taken: an agent that was down catches up.
    await send(registry, utrecht, report(utrecht.oin, day=date(2025, 2, 24)))


async def test_a_bad_period_is_a_problem(registry: Registry) -> None:
    # Only whole months that are over: no overlapping periods to subtract from each other.
    for query in (
        "month=2025-03",
        "month=2025-04",
        "month=2025-13",
        "month=morgen",
        "month=2025-2",
    ):
        answer = await registry.http.get(f"/v1/monitoring?{query}")
        assert answer.status_code == 400, query
        assert answer.headers["content-type"].startswith("application/problem+json")
    answer = await registry.http.get("/v1/gemeenten/9999/monitoring")
    assert answer.status_code == 404


def _objects(schema: dict[str, Any], definitions: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object schema reachable from ``schema``, references followed."""
    if "$ref" in schema:
        return _objects(definitions[schema["$ref"].rsplit("/", 1)[1]], definitions)
    found = [schema] if schema.get("type") == "object" else []
    for part in schema.get("properties", {}).values():
        found.extend(_objects(part, definitions))
    return found


def test_no_report_can_carry_a_personal_field() -> None:
    """Only four fixed fields name anything; every other field, at every level, is a count."""
    schema = DailyReport.model_json_schema(by_alias=True)
    definitions = schema.get("$defs", {})
    objects = _objects(schema, definitions)
    assert len(objects) >= 5
    identifying = {"oin", "kind", "day", "reportedAt"}
    for found in objects:
        assert found.get("additionalProperties") is False, found.get("title")
        for name, field in found["properties"].items():
            if found is schema and name in identifying:
                continue
            if "$ref" in field:
                continue
            assert field["type"] == "integer", (found.get("title"), name)
    # The fields that name something say only which organisation reports, and for which day.
    assert set(schema["properties"]) - identifying == {
        "handovers",
        "daysWithoutDevice",
        "deadlines",
        "openTasks",
    }
    assert schema["properties"]["oin"]["pattern"] == "^[0-9]{20}$"


@pytest.mark.parametrize(
    "path", [(), ("handovers",), ("handovers", "departing"), ("openTasks",), ("deadlines",)]
)
@pytest.mark.parametrize(
    "personal",
    [
        {"bsn": "999993653"},
        {"name": "J. Jansen"},
        {"address": {"street": "Damrak", "houseNumber": 1}},
        {"dossierId": "3f1c2a"},
    ],
)
def test_a_personal_field_is_refused_at_every_level(
    path: tuple[str, ...], personal: dict[str, Any]
) -> None:
    document: dict[str, Any] = report(UTRECHT_OIN).model_dump(mode="json", by_alias=True)
    target = document
    for name in path:
        target = target[name]
    target.update(personal)
    with pytest.raises(ValidationError) as caught:
        DailyReport.model_validate(document)
    assert {error["type"] for error in caught.value.errors()} == {"extra_forbidden"}

"""The daily report counts what the agent's tables hold: dossiers, transitions, deadlines, tasks.

Two in-process agents (Utrecht departs, Amsterdam receives) run a real handover, and with the
suppliers and the real registry of ``test_supplier_flow`` a takeover; the counts of a day are then
read back as the registry would receive them. Runs on SQLite and PostgreSQL.
"""

# The World fixtures are imported from test_supplier_flow; test arguments reuse their names.
# ruff: noqa: F811

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from agent.app import create_app
from agent.core.deadlines import cancel_deadlines, schedule_deadline
from agent.core.tasks import TASK_KINDS
from agent.monitoring.figures import count_day
from agent.service import AgentService
from agent.supplier.settlement import ORDER_AWAITED
from agent.working_days import AMSTERDAM
from registry.monitoring import DailyReport, OpenTasks
from tests.agent.conftest import (
    AMSTERDAM_OIN,
    START,
    UTRECHT_OIN,
    Agents,
    FakeDirectory,
    agent_settings,
)
from tests.agent.test_supplier_flow import (  # noqa: F401 - fixtures used by name
    PREFERRED,
    World,
    database_urls,
    start_time,
    takeover_settings,
    world,
)

# After the move date (1 April 2025): the takeover completes four days after it.
HANDOVER_DAY = date(2025, 4, 5)
MORNING = datetime(2025, 4, 5, 8, 30, tzinfo=UTC)


async def counts(service: AgentService, day: date) -> DailyReport:
    async with service.database.reading() as session:
        return await count_day(
            session, oin=service.settings.oin, kind="gemeente", day=day, now=service.clock.now()
        )


async def open_tasks_by_kind(service: AgentService) -> dict[str, int]:
    tasks = await service.tasks.list("open")
    return {kind.replace("-", "_"): n for kind, n in Counter(t.kind for t in tasks).items()}


def test_the_report_has_a_field_for_every_kind_of_task() -> None:
    assert {kind.replace("-", "_") for kind in TASK_KINDS} == set(OpenTasks.model_fields)


async def test_the_daily_report_is_a_job_unless_turned_off(database_url: str) -> None:
    async def jobs(**overrides: object) -> set[str]:
        settings = agent_settings(database_url, gemeente="utrecht", **overrides)
        app = create_app(settings, registry=FakeDirectory())
        async with app.router.lifespan_context(app):
            service: AgentService = app.state.service
            return {job.name for job in service.hooks.jobs}

    assert "daily-report" in await jobs()
    # The demo's scenarios: their clock runs ahead of the registry's.
    assert "daily-report" not in await jobs(daily_reports=False)
    assert "deadlines" in await jobs(daily_reports=False)


async def test_a_completed_handover_is_counted_on_both_sides(agents: Agents) -> None:
    agents.clock.set(MORNING)
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    await agents.settle()
    assert (await agents.receiving.dossier(dossier_id)).state == "completed"

    departing = await counts(agents.departing, HANDOVER_DAY)
    receiving = await counts(agents.receiving, HANDOVER_DAY)
    assert (departing.oin, receiving.oin) == (UTRECHT_OIN, AMSTERDAM_OIN)
    assert departing.handovers.model_dump() == {
        "departing": {"started": 1, "completed": 1},
        "receiving": {"started": 0, "completed": 0},
    }
    assert receiving.handovers.model_dump() == {
        "departing": {"started": 0, "completed": 0},
        "receiving": {"started": 1, "completed": 1},
    }
    # Completed four days after the move date; only the receiving side counts the days.
    assert receiving.days_without_device.four_to_seven == 1
    assert sum(receiving.days_without_device.model_dump().values()) == 1
    assert sum(departing.days_without_device.model_dump().values()) == 0
    # The tasks open at the end of the day, per kind, are the agent's open tasks.
    for service, report in ((agents.departing, departing), (agents.receiving, receiving)):
        expected = await open_tasks_by_kind(service)
        assert expected, "the handover leaves work for a person"
        assert {k: v for k, v in report.open_tasks.model_dump().items() if v} == expected

    # The day before and the day after: nothing started or completed.
    for day in (HANDOVER_DAY - timedelta(days=1), HANDOVER_DAY + timedelta(days=1)):
        other = await counts(agents.receiving, day)
        assert other.handovers.receiving.model_dump() == {"started": 0, "completed": 0}
    # Tasks did not exist yet the day before.
    earlier = await counts(agents.receiving, HANDOVER_DAY - timedelta(days=1))
    assert sum(earlier.open_tasks.model_dump().values()) == 0


async def test_a_task_done_during_the_day_is_not_open_at_its_end(agents: Agents) -> None:
    agents.clock.set(MORNING)
    dossier_id = await agents.start_dossier()
    await agents.give_consent(dossier_id)
    await agents.settle()
    task = (await agents.receiving.tasks.list("open"))[0]
    agents.clock.advance(timedelta(hours=2))
    await agents.receiving.tasks.complete(task.id, done_by="consulent 12")

    report = await counts(agents.receiving, HANDOVER_DAY)
    expected = await open_tasks_by_kind(agents.receiving)
    assert {k: v for k, v in report.open_tasks.model_dump().items() if v} == expected
    agents.clock.advance(timedelta(days=1))
    # Counted again a day later, the day's end is still what counts.
    assert await counts(agents.receiving, HANDOVER_DAY) == report.model_copy(
        update={"reported_at": agents.clock.now()}
    )


async def test_deadlines_of_the_day_are_met_when_stopped_and_missed_when_they_fired(
    agents: Agents,
) -> None:
    service = agents.receiving
    due = datetime(2025, 4, 5, 10, 0, tzinfo=UTC)
    agents.clock.set(due - timedelta(days=5))
    kind = ORDER_AWAITED
    async with service.database.transaction() as session:
        for subject in ("settlement-1", "settlement-2", "settlement-3"):
            await schedule_deadline(
                session, kind=kind, subject=subject, due_at=due, now=agents.clock.now()
            )
        # Due the next day: not a deadline of this day.
        await schedule_deadline(
            session,
            kind=kind,
            subject="settlement-4",
            due_at=due + timedelta(days=1),
            now=agents.clock.now(),
        )
        # The takeover order came before the wait ended: it stops.
        await cancel_deadlines(session, subject="settlement-1", kinds=(kind,))
    agents.clock.set(due + timedelta(minutes=5))
    await service.deadlines.run_due()

    report = await counts(service, HANDOVER_DAY)
    # Fired (one fires now), or not fired yet but past its time: missed all the same.
    assert report.deadlines.settlement_order.model_dump() == {"met": 1, "missed": 2}
    assert report.deadlines.client_contact.model_dump() == {"met": 0, "missed": 0}


async def report_of(service: AgentService, day: date) -> DailyReport:
    async with service.database.reading() as session:
        return await count_day(
            session,
            oin=service.settings.oin,
            kind=service.settings.role,
            day=day,
            now=service.clock.now(),
        )


async def test_a_supplier_counts_its_takeover_orders_and_sends_them_to_the_registry(
    world: World,
) -> None:
    await world.contract_preferred_then_next()
    await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    supplier = world.suppliers[PREFERRED[3]]
    # Still waiting, the last day to call not over: not counted yet.
    waiting = await report_of(supplier, date.fromisoformat(order["contactBefore"]))
    assert waiting.deadlines.client_contact.model_dump() == {"met": 0, "missed": 0}
    await world.planner(PREFERRED, order["orderId"], status="client-contacted")
    await world.planner(PREFERRED, order["orderId"], status="taken-over", deviceId="dev-1")
    day = START.astimezone(AMSTERDAM).date()

    counted = await report_of(supplier, day)
    assert (counted.oin, counted.kind) == (PREFERRED[0], "supplier")
    assert counted.handovers.model_dump() == {
        "departing": {"started": 0, "completed": 0},
        "receiving": {"started": 1, "completed": 1},
    }
    # The client was called in time: met for the supplier and for the gemeente, on the last day
    # to call (3 March + 5 working days), and on no other day.
    contact_day = date.fromisoformat(order["contactBefore"])
    for service in (supplier, world.amsterdam):
        at_due = await report_of(service, contact_day)
        assert at_due.deadlines.client_contact.model_dump() == {"met": 1, "missed": 0}
        before = await report_of(service, contact_day - timedelta(days=1))
        assert before.deadlines.client_contact.model_dump() == {"met": 0, "missed": 0}

    # The job signs and sends the supplier's week; the registry takes it as a supplier's.
    assert await supplier.daily_reports.run() is False
    metrics = supplier.metrics.render().decode()
    assert 'meeverhuizen_daily_reports_total{outcome="sent"} 7.0' in metrics
    assert "meeverhuizen_daily_reports_unsent 0.0" in metrics

"""The agent's scheduled jobs: each one registered by a capability runs."""

from __future__ import annotations

from pathlib import Path

from agent.runtime import open_service, run_scheduler
from tests.agent.conftest import agent_settings


async def test_every_job_is_scheduled_including_those_that_wait_one_interval(
    tmp_path: Path,
) -> None:
    settings = agent_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}", gemeente="utrecht"
    )
    async with open_service(settings) as service, run_scheduler(service) as scheduler:
        jobs = {job.name: job for job in scheduler.get_jobs()}
        # The consent reminders first run one interval after the start, not at it.
        assert "consent-reminders" in jobs
        assert {name for name, job in jobs.items() if job.next_run_time is None} == set()

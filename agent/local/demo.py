"""``meeverhuizen demo``: one scenario of a move, end to end, as real processes on loopback.

A registry, two gemeente agents (Utrecht 0344 departs, Amsterdam 0363 receives) and two supplier
agents start as uvicorn servers on 127.0.0.1 with SQLite in a temporary folder
(``scenario_network``). The scenario (``agent.local.scenarios``; ``--scenario list`` lists them)
imports its client in Utrecht, pushes the BRP event of the move and plays the outside world: the
client opens the letter's link and answers on the page, the suppliers' planners record contact
and takeover. Afterwards the summary reads, from the agents' own APIs, where every device ended
and who acts next (``agent.local.outcomes``). Every process stops at the end, unless a
``keep_running`` hook holds them (each organisation's werkbak works meanwhile). Each process is
waited for by its readiness for as long as it makes progress; a failed run keeps its folder with
the logs and says where it is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from agent.errors import AgentError
from agent.local.network import AMSTERDAM, UTRECHT, LocalNetwork, local_network
from agent.local.outcomes import device_outcomes, open_tasks, read_state
from agent.local.scenario_steps import (
    ScenarioRun,
    ScenarioStepFailed,
    scenario_today,
    start_by_brp,
)
from agent.local.scenarios import (
    SCENARIO_SUPPLIERS,
    SCENARIOS,
    Scenario,
    scenario_client,
    scenario_settings,
)
from agent.local.starting import DEFAULT_START_SECONDS
from registry.errors import RegistryError

__all__ = [
    "DemoFailed",
    "DemoSummary",
    "render_summary",
    "run_demo",
    "run_scenario",
    "scenario_lines",
    "scenario_network",
]

_STATE_WORDS = {
    "started": "handover started",
    "waiting-for-consent": "waiting for the client's consent",
    "consent-given": "the client gave consent",
    "consent-refused": "the client refused consent",
    "consent-withdrawn": "the client withdrew consent",
    "receiver-not-connected": "the receiving gemeente has no agent: a consulent sends the dossier",
    "wlz-institution": "Wlz institution: the Wmo takeover stopped",
    "offer-sent": "dossier sent to the receiving gemeente",
    "offer-received": "dossier received from the departing gemeente",
    "decided": "a decision was made for each device",
    "orders-placed": "orders placed with the suppliers",
    "completed": "handover completed",
    "cancelled": "handover cancelled",
    "failed": "handover failed",
}


class DemoFailed(AgentError):
    """A demo process did not start or an API call of the demo was refused."""

    code = "demo_failed"
    title = "The demo could not run"
    status = 500


@dataclass(frozen=True)
class DemoSummary:
    """What one scenario did: both dossiers, each device's outcome and owner, open tasks."""

    scenario: str
    completed: bool
    dossier_id: str | None
    elapsed_seconds: float
    departing: dict[str, Any]
    receiving: dict[str, Any]
    devices: tuple[dict[str, Any], ...]
    open_tasks: tuple[dict[str, Any], ...] = ()
    urgent: bool = False
    # What the scenario saw on the way: letters, consent, status page, planners' steps.
    seen: dict[str, Any] = field(default_factory=dict)
    # The folder with the processes' logs when it was kept (a scenario that did not finish).
    logs: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """Machine-readable summary (camelCase; no BSN, no personal link)."""
        seen = dict(self.seen)
        # The letters hold the personal link, a key to the client's page: only their names.
        letters = sorted(seen.pop("letters", {}))
        return {
            "scenario": self.scenario,
            "completed": self.completed,
            "dossierId": self.dossier_id,
            "elapsedSeconds": round(self.elapsed_seconds, 3),
            "urgent": self.urgent,
            "departing": self.departing,
            "receiving": self.receiving,
            "devices": list(self.devices),
            "openTasks": list(self.open_tasks),
            "letters": letters,
            "logs": None if self.logs is None else str(self.logs),
            **seen,
        }


def scenario_lines() -> list[str]:
    """One line per scenario: its name and its description (Dutch / English)."""
    width = max(len(name) for name in SCENARIOS)
    return [f"{name.ljust(width)}  {s.description}" for name, s in SCENARIOS.items()]


@asynccontextmanager
async def scenario_network(
    folder: Path,
    *,
    start_seconds: float = DEFAULT_START_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> AsyncIterator[LocalNetwork]:
    """The network every scenario runs on (see ``agent.local.scenarios``)."""
    settings = scenario_settings(folder / "letters", folder / "scenario-clock")
    async with local_network(
        folder,
        suppliers=SCENARIO_SUPPLIERS,
        agent_settings=settings,
        start_seconds=start_seconds,
        on_wait=on_wait,
    ) as network:
        yield network


def _werkbak_addresses(network: LocalNetwork) -> dict[str, str]:
    addresses = {agent.spec.name: f"{agent.base_url}/werkbak" for agent in network.agents.values()}
    for supplier in network.suppliers.values():
        addresses[supplier.spec.name] = f"{supplier.base_url}/werkbak"
    return addresses


def _side(name: str, code: str, view: Any) -> dict[str, Any]:
    return {
        "gemeente": name,
        "gemeentecode": code,
        "state": None if view is None else view["state"],
        "timeline": [] if view is None else list(view["timeline"]),
    }


async def run_scenario(
    network: LocalNetwork,
    scenario: Scenario,
    *,
    seconds: float = 60.0,
    today: date | None = None,
    on_link: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Run one scenario on a running network; the outcome per device read from the agents."""
    began = time.monotonic()
    day = today or scenario_today(network)
    bsn, client = scenario_client(scenario, day)
    # No kept-alive connections: a server may close an idle one just as it is reused.
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(timeout=10.0, limits=fresh) as http,
        httpx.AsyncClient(timeout=10.0, follow_redirects=False, limits=fresh) as browser,
    ):
        run = ScenarioRun(
            network=network,
            http=http,
            browser=browser,
            letters=network.folder / "letters",
            today=day,
            bsn=bsn,
            client=client,
            destination=dict(scenario.destination),
            move_date=day + timedelta(days=scenario.move_in_days),
            deadline=began + seconds,
            departing_key=UTRECHT.key,
        )
        finished = True
        try:
            await start_by_brp(run)
            for step in scenario.steps:
                await step(run)
                if run.link is not None and on_link is not None:
                    on_link(run.link)
                    on_link = None
        except ScenarioStepFailed as exc:
            finished = False
            run.seen["failedStep"] = str(exc)
        state = await read_state(http, network, run.dossier_id)
    devices = device_outcomes(client["devices"], state, today=run.today)
    # Every device ends with an outcome or with someone who acts on it.
    accounted = all(d["outcome"] is not None or d["owner"] is not None for d in devices)
    view = state.departing or {}
    return DemoSummary(
        scenario=scenario.name,
        completed=finished and accounted,
        dossier_id=run.dossier_id,
        elapsed_seconds=time.monotonic() - began,
        departing=_side(UTRECHT.name, UTRECHT.gemeentecode, state.departing),
        receiving=_side(
            AMSTERDAM.name
            if scenario.destination["gemeentecode"] == AMSTERDAM.gemeentecode
            else f"Gemeente {scenario.destination['city']}",
            str(scenario.destination["gemeentecode"]),
            state.receiving,
        ),
        devices=tuple(devices),
        open_tasks=tuple(open_tasks(state)),
        urgent=bool(view.get("urgent")),
        seen=run.seen | {"scenarioDate": day.isoformat(), "scenarioEndDate": run.today.isoformat()},
    )


def run_demo(
    *,
    scenario: str = "standard",
    timeout: float = 60.0,
    folder: Path | None = None,
    on_link: Callable[[str], None] | None = None,
    start_seconds: float = DEFAULT_START_SECONDS,
    on_wait: Callable[[str], None] | None = None,
    on_werkbak: Callable[[dict[str, str]], None] | None = None,
    keep_running: Callable[[DemoSummary], Awaitable[None]] | None = None,
) -> DemoSummary:
    """Run one scenario; the processes stop at the end, and the folder goes unless it failed.

    ``timeout`` bounds the scenario once every process is ready; starting them may take up to
    ``start_seconds``, as long as they make progress, and ``on_wait`` hears what is waited for.
    ``on_link`` gets the client's personal link as soon as the letter is written; it is a
    loopback address that works only while the demo runs. ``on_werkbak`` gets the werkbak
    address of each organisation (demo sign-in, no provider). ``keep_running`` is awaited with
    the summary while every process still runs (e.g. until Ctrl-C). Without ``folder`` the demo
    works in a new temporary folder, removed after a successful run and kept after a failed one.
    Raises :class:`DemoFailed` for an unknown scenario, when a process does not start or an
    API call is refused; its detail names the folder with the logs.
    """
    if scenario not in SCENARIOS:
        raise DemoFailed(f"unknown scenario {scenario!r}; see --scenario list")
    temporary = folder is None
    work = Path(tempfile.mkdtemp(prefix="meeverhuizen-demo-")) if folder is None else folder

    async def run() -> DemoSummary:
        async with scenario_network(work, start_seconds=start_seconds, on_wait=on_wait) as network:
            if on_werkbak is not None:
                on_werkbak(_werkbak_addresses(network))
            summary = await run_scenario(
                network, SCENARIOS[scenario], seconds=timeout, on_link=on_link
            )
            if keep_running is not None:
                await keep_running(summary)
        return summary

    try:
        summary = asyncio.run(run())
    except (OSError, RuntimeError, RegistryError, httpx.HTTPError) as exc:
        raise DemoFailed(f"{type(exc).__name__}: {exc}\nThe logs are kept in {work}") from exc
    if not summary.completed:
        return dataclasses.replace(summary, logs=work)
    if temporary:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _time(text: str) -> str:
    return datetime.fromisoformat(text).astimezone().strftime("%H:%M:%S.%f")[:-3]


def _timeline_lines(side: dict[str, Any]) -> list[str]:
    lines = [f"{side['gemeente']} ({side['gemeentecode']}): {side['state'] or 'no dossier'}"]
    for step in side["timeline"]:
        words = _STATE_WORDS.get(step["toState"], step["toState"])
        lines.append(f"  {_time(step['at'])}  {words}  ({step['cause']})")
    return lines


def _device_lines(devices: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["Devices:"]
    for device in devices:
        outcome = device["outcome"] or "no outcome yet"
        lines.append(
            f"  {device['description']} ({device['isoCode']}): {outcome}, "
            f"{device['daysWithoutDevice']} days without it"
        )
        owner = device["owner"]
        lines.append(
            "    nothing left to do"
            if owner is None
            else f"    next: {owner['party']} ({owner['kind']}): {owner['text']}"
        )
    return lines


def _task_lines(tasks: Sequence[dict[str, Any]]) -> list[str]:
    if not tasks:
        return ["Open tasks: none"]
    lines = ["Open tasks:"]
    lines += [f"  {task['party']} ({task['kind']}): {task['text']}" for task in tasks]
    return lines


def _page_lines(seen: dict[str, Any]) -> list[str]:
    page = seen.get("statusPage")
    if not page:
        return []
    lines = ["The client's status page said (the link works only while the demo runs):"]
    return [*lines, *(f"  {line}" for line in page)]


def render_summary(summary: DemoSummary) -> str:
    """The timeline of both dossiers, each device's outcome and owner, in plain words."""
    result = "ended with every device accounted for" if summary.completed else "NOT finished"
    failed = summary.seen.get("failedStep")
    lines = [
        f"Scenario {summary.scenario}: {result} in {summary.elapsed_seconds:.1f} s"
        + (" (urgent)" if summary.urgent else ""),
        *([f"  step failed: {failed}"] if failed else []),
        "",
        *_timeline_lines(summary.departing),
        "",
        *_timeline_lines(summary.receiving),
        "",
        *_device_lines(summary.devices),
        "",
        *_task_lines(summary.open_tasks),
        "",
        *_page_lines(summary.seen),
    ]
    return "\n".join(lines).rstrip()

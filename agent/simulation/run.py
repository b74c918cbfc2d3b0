"""One simulation from start to report: the network, the year, the readout, the figures.

The network: a registry and ``processes`` ``agent host`` processes on 127.0.0.1 that host every
gemeente (342) and one regional supplier per depot (``geography.SUPPLIER_DEPOTS``), each gemeente
contracting the supplier of the depot nearest to it. Each host's shared address for messages is a
fault proxy (``faults.DropProxy``) when the drop rate is above 0.
"""

from __future__ import annotations

import asyncio
import random
import resource
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from agent.local.hosted import HostedNetwork, LoopbackTransport, gemeente_oin, hosted_network
from agent.local.network import GemeenteSpec
from agent.local.processes import cpu_seconds, free_port
from agent.local.starting import DEFAULT_START_SECONDS
from agent.simulation.driver import Driver, run_year
from agent.simulation.faults import DropProxy
from agent.simulation.geography import (
    SUPPLIER_DEPOTS,
    GravityModel,
    load_gemeenten,
    regions,
)
from agent.simulation.readout import read_network
from agent.simulation.report import DeadlineResult, RunFacts, build_report
from agent.simulation.world import plan_moves, supplier_specs
from agent.working_days import dutch_date_of

__all__ = ["SimulationOptions", "simulate"]

# A kept-alive connection is dropped well before the agents' server closes an idle one (5 s),
# so a request never goes out on a connection the server is closing.
_LIMITS = httpx.Limits(max_connections=32, keepalive_expiry=1.0)
# Simulated days between two runs of each organisation's deadline job.
_DEADLINE_DAYS = 4


@dataclass(frozen=True)
class SimulationOptions:
    """What ``meeverhuizen simulate`` is asked to run (docs/simulation.md)."""

    moves: int = 40_000
    # Only the most populous gemeenten (all 342 when None): a smaller country, for a quick run.
    gemeenten: int | None = None
    processes: int = 2
    seed: int = 1
    days: int = 365
    # Days after the last day of moves, so the last requests can expire and orders complete.
    tail_days: int = 35
    day_seconds: float = 0.5
    drop_rate: float = 0.02
    restarts: int = 2
    folder: Path | None = None
    start_seconds: float = DEFAULT_START_SECONDS


def _agent_settings(options: SimulationOptions, folder: Path) -> dict[str, Any]:
    return {
        "scenario_clock_file": folder / "clock",
        # The registry checks reports against its own (wall) clock; the simulation counts itself.
        "daily_reports": False,
        "consent.letter_directory": folder / "letters",
        # Every run of each organisation's jobs wakes its scheduler (a statement only when
        # something is due), so with hundreds of organisations on two cores deadlines fire every
        # few simulated days, not on the hour (docs/simulation.md).
        "takeover.deadline_interval_seconds": _DEADLINE_DAYS * options.day_seconds,
        "consent.job_interval_seconds": 2 * _DEADLINE_DAYS * options.day_seconds,
        # A day passes in a fraction of a second, so the milliseconds a message is on its way
        # are hours of simulated time: the signing time may differ by what 10 s of wall time is.
        "clock_skew_seconds": int(10 / options.day_seconds * 86400),
        "outbox_base_delay_seconds": 0.5,
        "outbox_max_delay_seconds": 5.0,
    }


async def _with_network(
    options: SimulationOptions,
    folder: Path,
    on_day: Callable[[int], None],
) -> dict[str, Any]:
    began = time.monotonic()
    gemeenten = load_gemeenten()
    if options.gemeenten is not None:
        largest = sorted(gemeenten, key=lambda g: g.population, reverse=True)
        gemeenten = tuple(largest[: options.gemeenten])
    rng = random.Random(options.seed)  # noqa: S311 - a repeatable simulation, not a secret
    moves = plan_moves(rng, GravityModel(gemeenten), options.moves, days=options.days)
    depot_of = regions(gemeenten, SUPPLIER_DEPOTS)
    depots: dict[str, list[str]] = defaultdict(list)
    for code, depot in depot_of.items():
        depots[depot].append(code)
    suppliers = supplier_specs(dict(depots))
    supplier_by_depot = {spec.key.removeprefix("leverancier-"): spec for spec in suppliers}
    specs = [
        GemeenteSpec(f"g{g.code}", f"Gemeente {g.name}", g.code, gemeente_oin(g.code))
        for g in gemeenten
    ]
    (folder / "letters").mkdir()
    proxy_ports = [free_port() for _ in range(options.processes)]
    cpu_before_kill: list[float] = []
    async with (
        hosted_network(
            folder,
            gemeenten=specs,
            suppliers=suppliers,
            processes=options.processes,
            agent_settings=_agent_settings(options, folder),
            endpoint_ports=proxy_ports if options.drop_rate > 0 else None,
            start_seconds=options.start_seconds,
        ) as network,
        httpx.AsyncClient(transport=LoopbackTransport(limits=_LIMITS), timeout=60.0) as http,
        AsyncExitStack() as stack,
    ):
        proxies = [
            DropProxy(port, host.port, options.drop_rate, random.Random(options.seed + n))  # noqa: S311
            for n, (port, host) in enumerate(zip(proxy_ports, network.hosts, strict=True))
        ]
        for proxy in proxies if options.drop_rate > 0 else []:
            await proxy.start()
            stack.push_async_callback(proxy.close)
        started = time.monotonic()
        start = dutch_date_of(datetime.now(UTC))
        driver = Driver(
            network=network,
            moves=moves,
            suppliers={code: supplier_by_depot[depot] for code, depot in depot_of.items()},
            start=start,
            clock_file=folder / "clock",
            letters=folder / "letters",
            http=http,
        )
        await driver.import_clients()
        total_days = options.days + options.tail_days
        restart_days = {
            (n + 1) * options.days // (options.restarts + 1): n % options.processes
            for n in range(options.restarts)
        }
        network_cpu = _NetworkCpu(network, cpu_before_kill)
        restarts = await run_year(
            driver,
            days=total_days,
            day_seconds=options.day_seconds,
            restart_days=restart_days,
            on_day=on_day,
            start_seconds=options.start_seconds,
            before_restart=network_cpu.before_restart,
        )
        today = start + timedelta(days=total_days - 1)
        readout = await read_network(network, http, moves, driver.dossiers, today)
        cpu = network_cpu.total()
    contacts = driver.contacts
    met = sum(1 for c in contacts if c.on <= c.contact_before)
    moved = [
        d for m in readout.moves for d in m.devices if d.outcome in ("continued", "alternative")
    ]
    deadlines = (
        DeadlineResult("clientContact", met, len(contacts) - met + driver.uncontacted()),
        DeadlineResult("consentAnswer", readout.consent_answered, readout.consent_expired),
        DeadlineResult(
            "deviceOnMoveDay",
            sum(1 for d in moved if d.days_without_device == 0),
            sum(1 for d in moved if d.days_without_device > 0),
        ),
    )
    facts = RunFacts(
        moves=len(moves),
        gemeenten=len(gemeenten),
        suppliers=len(suppliers),
        processes=options.processes,
        simulated_days=total_days,
        wall_seconds=time.monotonic() - began,
        cpu_seconds=cpu,
        drop_rate=options.drop_rate,
        restarts=restarts,
        dead_letters=readout.dead_letters,
        tasks=readout.tasks,
        deadlines=deadlines,
        seed=options.seed,
        stray_dossiers=readout.stray_dossiers,
    )
    report = build_report(readout.moves, facts)
    report["run"] |= {
        "setUpSeconds": round(started - began, 1),
        "dropped": {
            "beforeDelivery": sum(p.dropped_before for p in proxies),
            "afterDelivery": sum(p.dropped_after for p in proxies),
            "connections": sum(p.passed for p in proxies),
        },
        "daySeconds": options.day_seconds,
    }
    return report


class _NetworkCpu:
    """CPU of the registry, the hosts (also before each was killed) and this process."""

    def __init__(self, network: HostedNetwork, killed: list[float]) -> None:
        self._network = network
        self._killed = killed

    def before_restart(self, host: int) -> None:
        self._killed.append(cpu_seconds(self._network.hosts[host].pid))

    def total(self) -> float:
        processes = [self._network.registry, *self._network.hosts]
        own = resource.getrusage(resource.RUSAGE_SELF)
        return (
            sum(cpu_seconds(p.pid) for p in processes)
            + sum(self._killed)
            + own.ru_utime
            + own.ru_stime
        )


def simulate(options: SimulationOptions, on_day: Callable[[int], None]) -> dict[str, Any]:
    """Run the simulation; the report (``agent.simulation.report``) as a JSON-able dict.

    Without ``options.folder`` it works in a new temporary folder, removed afterwards.
    """
    if options.folder is not None:
        options.folder.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_with_network(options, options.folder, on_day))
    with tempfile.TemporaryDirectory(prefix="meeverhuizen-simulation-") as work:
        return asyncio.run(_with_network(options, Path(work), on_day))

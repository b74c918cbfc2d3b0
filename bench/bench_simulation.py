"""Simulation benchmark: what the network of ``meeverhuizen simulate`` costs while nothing happens.

Run: ``.venv/bin/python bench/bench_simulation.py [--gemeenten 342] [--processes 2]
[--idle-seconds 10]``

Starts the simulation's network (a registry and ``--processes`` ``agent host`` processes with the
gemeenten, on SQLite) twice: once with the scheduled jobs at the simulation's intervals for a
day of 0.5 s (deadlines every 2 s, consent every 4 s, delivery every 5 s), and as the baseline in
the same run with every job once an hour. Printed per run: seconds until every host is ready, and
the CPU each host used while idle, as a share of one core. The difference is what the
organisations' own schedulers cost before any move is simulated.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from agent.local.hosted import gemeente_oin, hosted_network
from agent.local.network import GemeenteSpec
from agent.local.processes import cpu_seconds
from agent.simulation.geography import load_gemeenten

_HOUR = 3600.0


async def _measure(
    count: int, processes: int, idle: float, jobs: tuple[float, float, float]
) -> tuple[float, list[float]]:
    deadlines, consent, delivery = jobs
    largest = sorted(load_gemeenten(), key=lambda g: g.population, reverse=True)[:count]
    specs = [GemeenteSpec(f"g{g.code}", g.name, g.code, gemeente_oin(g.code)) for g in largest]
    settings = {
        "daily_reports": False,
        "takeover.deadline_interval_seconds": deadlines,
        "consent.job_interval_seconds": consent,
        "delivery_interval_seconds": delivery,
    }
    with tempfile.TemporaryDirectory() as directory:
        began = time.perf_counter()
        async with hosted_network(
            Path(directory), gemeenten=specs, processes=processes, agent_settings=settings
        ) as network:
            started = time.perf_counter() - began
            await asyncio.sleep(3.0)
            before = [cpu_seconds(host.pid) for host in network.hosts]
            await asyncio.sleep(idle)
            after = [cpu_seconds(host.pid) for host in network.hosts]
    return started, [(b - a) / idle for a, b in zip(before, after, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gemeenten", type=int, default=342)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    arguments = parser.parse_args()
    runs = {
        "jobs once an hour (baseline)": (_HOUR, _HOUR, _HOUR),
        "simulation (2 s / 4 s / 5 s)": (2.0, 4.0, 5.0),
    }
    print(
        f"{arguments.gemeenten} gemeenten on {arguments.processes} hosts, SQLite; "
        f"idle {arguments.idle_seconds:.0f} s"
    )
    print(f"{'scheduled jobs':<32}{'start s':>9}  idle CPU per host")
    for label, jobs in runs.items():
        started, shares = asyncio.run(
            _measure(arguments.gemeenten, arguments.processes, arguments.idle_seconds, jobs)
        )
        print(f"{label:<32}{started:>9.1f}  " + "  ".join(f"{share:.0%}" for share in shares))


if __name__ == "__main__":
    main()

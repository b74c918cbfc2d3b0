"""Hosting benchmark: memory and idle CPU of one `agent host` process per number of organisations.

Run: ``.venv/bin/python bench/bench_hosting.py [--database postgresql|sqlite]
[--organisations 10,100,342] [--idle-seconds 20] [--delivery-interval 5]``

For each count N, one ``meeverhuizen agent host`` process serves N gemeenten (on PostgreSQL one
database with a schema each, on SQLite a file each); the baseline, measured in the same run, is one
``meeverhuizen agent serve`` process for one gemeente. Each process starts, migrates its tables and
runs its scheduler (delivery, deadlines); no registry answers, so it holds no dossiers. Printed per
process: seconds until ``/v1/health`` answers, resident memory (VmRSS) after ``--idle-seconds``
idle and its peak (VmHWM), and the CPU it used while idle, as a share of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx
from bench_agent import memory_mb, peak_rss_mb
from local_databases import DATABASE_KINDS, DatabaseKind, fresh_databases

from agent.local.network import write_settings
from agent.local.processes import HOST, ServerProcess, cpu_seconds, free_port
from protocol.jwk import generate_private_jwk, public_jwk


@dataclass(frozen=True)
class Figures:
    label: str
    organisations: int
    start_seconds: float
    rss_mb: float
    peak_rss_mb: float
    idle_cpu_share: float


def _organisation(
    folder: Path, number: int, code: str, database_url: str, port: int, delivery: float
) -> Path:
    """The settings file of gemeente ``code`` (the ``number``-th hosted here)."""
    key = folder / f"key-{code}.json"
    key.write_text(json.dumps(generate_private_jwk("EdDSA")), "utf-8")
    values: dict[str, object] = {
        "oin": f"00000001{number:08d}0000",
        "gemeentecode": code,
        "name": f"Gemeente {code}",
        "signing_key_file": str(key),
        "registry_url": f"http://{HOST}:{free_port()}",  # nobody listens: no registry traffic
        "registry_trust_anchor_file": str(folder / "anchor.json"),
        "database_url": database_url,
        "public_base_url": f"http://g{code}.test:{port}",
        "endpoint_url": f"http://{HOST}:{port}",
        "daily_reports": False,
        "delivery_interval_seconds": delivery,
    }
    if database_url.startswith("postgresql"):
        values["database_schema"] = f"g{code}"
    path = folder / f"g{code}.toml"
    write_settings(path, values)
    return path


async def _measure(server: ServerProcess, label: str, count: int, idle: float) -> Figures:
    began = time.perf_counter()
    server.start()
    try:
        async with httpx.AsyncClient() as http:
            await server.wait_ready(http, seconds=600.0)
        started = time.perf_counter() - began
        cpu_before = cpu_seconds(server.pid)
        await asyncio.sleep(idle)
        cpu = cpu_seconds(server.pid) - cpu_before
        return Figures(
            label,
            count,
            started,
            memory_mb(server.pid, "VmRSS"),
            peak_rss_mb(server.pid),
            cpu / idle,
        )
    finally:
        server.stop()


async def run(kind: DatabaseKind, counts: list[int], idle: float, delivery: float) -> list[Figures]:
    table = resources.files("registry").joinpath("data/gemeenten.csv").read_text("utf-8")
    codes = [row["code"] for row in csv.DictReader(table.splitlines())]
    figures = []
    with tempfile.TemporaryDirectory() as directory, fresh_databases(kind, Path(directory)) as dbs:
        folder = Path(directory)
        (folder / "anchor.json").write_text(json.dumps(public_jwk(generate_private_jwk("EdDSA"))))
        # The baseline: one gemeente in an agent of its own.
        port = free_port()
        single = _organisation(folder, 0, codes[0], dbs.create("single"), port, delivery)
        with single.open("a", encoding="utf-8") as handle:
            handle.write(f'host = "{HOST}"\nport = {port}\n')
        serve = ServerProcess(
            "agent serve",
            ("agent", "serve", "--config", str(single), "--log-level", "warning"),
            port,
            folder / "serve.log",
            "/v1/health",
        )
        figures.append(await _measure(serve, "agent serve (baseline)", 1, idle))
        for count in counts:
            port = free_port()
            shared = dbs.create(f"hosted{count}") if kind == "postgresql" else None
            files = [
                _organisation(
                    folder, number, code, shared or dbs.create(f"h{count}-{code}"), port, delivery
                ).name
                for number, code in enumerate(codes[1 : count + 1], start=1)
            ]
            hosting = folder / f"hosting-{count}.toml"
            write_settings(
                hosting,
                {
                    "public_base_url": f"http://{HOST}:{port}",
                    "host": HOST,
                    "port": port,
                    "organisations": files,
                },
            )
            host = ServerProcess(
                f"agent host ({count})",
                ("agent", "host", "--config", str(hosting), "--log-level", "warning"),
                port,
                folder / f"host-{count}.log",
                "/v1/health",
            )
            figures.append(await _measure(host, "agent host", count, idle))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=DATABASE_KINDS, default="postgresql")
    parser.add_argument("--organisations", default="10,100,342")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument(
        "--delivery-interval",
        type=float,
        default=5.0,
        help="Each organisation's delivery_interval_seconds (the agent's default: 5).",
    )
    arguments = parser.parse_args()
    counts = [int(part) for part in arguments.organisations.split(",")]
    figures = asyncio.run(
        run(arguments.database, counts, arguments.idle_seconds, arguments.delivery_interval)
    )
    baseline = figures[0]
    print(
        f"database: {arguments.database}; idle {arguments.idle_seconds:.0f} s per process; "
        f"delivery pass every {arguments.delivery_interval:g} s"
    )
    print(
        f"{'process':<24}{'orgs':>5}{'start s':>9}{'RSS MB':>9}{'peak MB':>9}"
        f"{'MB/org':>9}{'vs N x serve':>14}{'idle CPU':>10}"
    )
    for row in figures:
        per_org = row.rss_mb / row.organisations
        separate = baseline.rss_mb * row.organisations
        print(
            f"{row.label:<24}{row.organisations:>5}{row.start_seconds:>9.1f}{row.rss_mb:>9.1f}"
            f"{row.peak_rss_mb:>9.1f}{per_org:>9.1f}{row.rss_mb / separate:>14.2f}"
            f"{row.idle_cpu_share:>10.1%}"
        )


if __name__ == "__main__":
    main()

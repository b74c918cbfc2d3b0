"""CPU per SQL statement through the agent's database drivers, against a synchronous baseline.

Run: ``.venv/bin/python bench/bench_statements.py [--statements N]`` (default 3,000). One
connection each executes ``SELECT 1`` N times through SQLAlchemy: the async engine on aiosqlite
(a SQLite file) and on psycopg (PostgreSQL at 127.0.0.1:5432, skipped when none listens), and the
synchronous pysqlite engine as the baseline. Printed: process CPU time and wall time per
statement, and each driver's CPU against the baseline. This is the fixed cost every statement of
a handover pays before the database does any work (docs/performance.md, Agent).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRESQL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_SELECT = text("SELECT 1")
_BASELINE = "pysqlite (sync engine, baseline)"


def _postgresql_listens() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), 1).close()
    except OSError:
        return False
    return True


async def _async_statements(url: str, count: int) -> tuple[float, float]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(_SELECT)
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(count):
                await connection.execute(_SELECT)
            return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await engine.dispose()


def _sync_statements(url: str, count: int) -> tuple[float, float]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(_SELECT)
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(count):
                connection.execute(_SELECT)
            return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=3_000)
    count = parser.parse_args().statements
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        sqlite = Path(folder) / "bench.sqlite"
        aiosqlite = f"sqlite+aiosqlite:///{sqlite}"
        results["aiosqlite (async engine)"] = await _async_statements(aiosqlite, count)
        if _postgresql_listens():
            results["psycopg (async engine)"] = await _async_statements(POSTGRESQL, count)
        results[_BASELINE] = _sync_statements(f"sqlite:///{sqlite}", count)
    baseline_cpu = results[_BASELINE][0]
    print(f"{count:,} x SELECT 1, one connection each")
    print(f"{'driver':<34}{'CPU us':>9}{'wall us':>9}{'CPU vs baseline':>17}")
    for name, (cpu, wall) in results.items():
        ratio = cpu / baseline_cpu
        print(f"{name:<34}{cpu / count * 1e6:>9.0f}{wall / count * 1e6:>9.0f}{ratio:>16.1f}x")


if __name__ == "__main__":
    asyncio.run(main())

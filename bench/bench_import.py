"""Register import benchmark: a 10,000-client JSON import against a 5,000-client one.

Run: ``.venv/bin/python bench/bench_import.py --database sqlite|postgresql [--rounds R]``
(default 3; ``bench/bench_agent.py`` runs it too, as its last phase).

In-process, the path of ``meeverhuizen agent import``: ``agent.register.store.Register`` on
``agent.storage.database.Database``, each import into a fresh, migrated, empty database of the
chosen kind (a SQLite file in a temporary folder, or a new PostgreSQL database). The clock covers
``Register.import_provisions`` only: parsing the JSON in a worker thread, validating every client,
and storing them in one transaction. The two sizes take turns, R rounds; the ratio is of the
medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from local_databases import DATABASE_KINDS, DatabaseKind, Databases, fresh_databases

from agent.local.synthetic import synthetic_clients, valid_bsns
from agent.register.store import Register
from agent.storage.database import Database
from protocol.clock import SystemClock

SIZES = (5_000, 10_000)


async def import_seconds(databases: Databases, content: bytes, name: str) -> float:
    """Seconds for one JSON import into a fresh database."""
    url = databases.create(name)
    database = Database(url)
    try:
        await database.create_tables()
        register = Register(database=database, clock=SystemClock())
        began = time.perf_counter()
        await register.import_provisions(content, "json")
        return time.perf_counter() - began
    finally:
        await database.dispose()
        databases.drop(url)


async def compare_imports(kind: DatabaseKind, rounds: int) -> dict[int, list[float]]:
    """Seconds per import of each size, the sizes taking turns."""
    contents = {size: json.dumps(synthetic_clients(valid_bsns(size))).encode() for size in SIZES}
    seconds: dict[int, list[float]] = {size: [] for size in SIZES}
    with (
        tempfile.TemporaryDirectory(prefix="bench-import-") as folder,
        fresh_databases(kind, Path(folder)) as databases,
    ):
        for round_number in range(rounds):
            for size in SIZES:
                name = f"import_{size}_{round_number}"
                seconds[size].append(await import_seconds(databases, contents[size], name))
    return seconds


def report(kind: DatabaseKind, seconds: dict[int, list[float]]) -> None:
    for size in SIZES:
        runs = ", ".join(f"{s:.2f}" for s in seconds[size])
        label = f"import {size:,} clients ({kind})"
        print(f"{label:<34}{statistics.median(seconds[size]):10.2f} s  (median; runs {runs})")
    small, large = (statistics.median(seconds[size]) for size in SIZES)
    label = f"ratio import {SIZES[1]:,} / {SIZES[0]:,}"
    print(f"{label:<34}{large / small:10.2f}    (target <= 2.2)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=DATABASE_KINDS, default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    report(arguments.database, await compare_imports(arguments.database, arguments.rounds))


if __name__ == "__main__":
    asyncio.run(main())

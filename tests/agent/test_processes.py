"""End to end over real uvicorn processes on 127.0.0.1: the happy path and a SIGKILL crash test.

After the run the agents' SQLite files are read directly: every dossier completed exactly once on
both sides, every sent message stored once by its receiver, every receipt kept.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from agent.local.network import AMSTERDAM, UTRECHT, LocalAgent, LocalNetwork, local_network
from agent.local.synthetic import DEVICE_IDS, synthetic_clients, valid_bsns
from tests.agent.conftest import DEPARTING_HAPPY_PATH, RECEIVING_HAPPY_PATH

pytestmark = pytest.mark.slow

FAST_RETRIES = {
    "outbox_base_delay_seconds": 0.2,
    "outbox_max_delay_seconds": 1.0,
    "delivery_interval_seconds": 0.5,
}
NEW_ADDRESS = {
    "street": "Damrak",
    "houseNumber": 1,
    "postalCode": "1012LG",
    "city": "Amsterdam",
    "gemeentecode": "0363",
}


class Reachable(Protocol):
    """An agent's address and the headers of a case system's request to it."""

    @property
    def base_url(self) -> str: ...

    def auth(self) -> dict[str, str]: ...


async def call(
    http: httpx.AsyncClient, agent: Reachable, method: str, path: str, **options: Any
) -> Any:
    answer = await http.request(method, agent.base_url + path, headers=agent.auth(), **options)
    assert answer.status_code < 300, answer.text
    return answer.json()


async def start_dossiers(http: httpx.AsyncClient, utrecht: Reachable, bsns: list[str]) -> list[str]:
    await call(http, utrecht, "POST", "/v1/provisions/imports", json=synthetic_clients(bsns))
    move_date = (date.today() + timedelta(days=21)).isoformat()
    dossier_ids = []
    for bsn in bsns:
        body = {"bsn": bsn, "moveDate": move_date, "newAddress": NEW_ADDRESS}
        dossier_ids.append(
            (await call(http, utrecht, "POST", "/v1/dossiers", json=body))["dossierId"]
        )
    return dossier_ids


async def give_consent(http: httpx.AsyncClient, utrecht: Reachable, dossier_id: str) -> None:
    consent = {
        "dataKinds": ["identity", "address", "devices", "indicatie"],
        "deviceIds": list(DEVICE_IDS),
        "channel": "online",
        "givenBy": "client",
        "givenAt": datetime.now(UTC).isoformat(),
    }
    await call(http, utrecht, "POST", f"/v1/dossiers/{dossier_id}/consent", json=consent)


async def completed(http: httpx.AsyncClient, agent: LocalAgent) -> set[str]:
    """Ids of completed dossiers; empty while the agent is down."""
    try:
        answer = await http.get(
            f"{agent.base_url}/v1/dossiers?state=completed", headers=agent.auth()
        )
    except httpx.HTTPError:
        return set()
    return {row["dossierId"] for row in answer.json()} if answer.status_code == 200 else set()


async def wait_until_completed(
    http: httpx.AsyncClient, network: LocalNetwork, dossier_ids: list[str], seconds: float
) -> None:
    """Every dossier completed on both sides and every outbox quiet (a message sent after the
    decision, such as the device transfer, may still be on its way when the dossiers complete)."""
    deadline = time.monotonic() + seconds
    expected = set(dossier_ids)
    while time.monotonic() < deadline:
        done = [await completed(http, agent) for agent in network.agents.values()]
        if all(expected <= ids for ids in done) and not pending(network):
            return
        await asyncio.sleep(0.2)
    logs = "\n".join(agent.server.log_tail() for agent in network.agents.values())
    raise AssertionError(f"not every dossier completed in {seconds} s\n{logs}")


def pending(network: LocalNetwork) -> int:
    """Outbox messages still to be delivered, in every agent."""
    query = "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
    return sum(rows(agent.database_path, query)[0][0] for agent in network.agents.values())


def rows(database: Path, query: str, *parameters: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query, parameters).fetchall()


def check_side(database: Path, dossier_ids: list[str], side: str, states: list[str]) -> None:
    dossiers = dict(rows(database, "SELECT id, state FROM dossiers WHERE side = ?", side))
    assert dossiers == dict.fromkeys(dossier_ids, "completed")
    timelines: dict[str, list[str]] = {}
    for dossier_id, to_state in rows(
        database, "SELECT dossier_id, to_state FROM transitions ORDER BY id"
    ):
        timelines.setdefault(dossier_id, []).append(to_state)
    # Every transition once: a replayed message applied twice would add a second one.
    assert timelines == dict.fromkeys(dossier_ids, states)


def check_messages(sender: Path, receiver: Path, message_type: str, dossier_ids: list[str]) -> None:
    sent = rows(
        sender,
        "SELECT message_id, dossier_id, state, receipt_body FROM outbox "
        "WHERE kind = 'message' AND message_type = ?",
        message_type,
    )
    assert [row[2] for row in sent] == ["delivered"] * len(dossier_ids)
    assert sorted(row[1] for row in sent) == sorted(dossier_ids)
    stored = rows(
        receiver,
        "SELECT message_id, receipt_body FROM inbound_messages WHERE message_type = ?",
        message_type,
    )
    # No message lost, none stored twice: the same ids on both sides, each once.
    assert Counter(row[0] for row in stored) == Counter(row[0] for row in sent)
    receipts = dict(stored)
    for message_id, _, _, receipt in sent:
        assert receipt == receipts[message_id]
        assert json.loads(receipt)["body"]["receivedMessageId"] == message_id


def check_everything(network: LocalNetwork, dossier_ids: list[str]) -> None:
    utrecht = network.agents[UTRECHT.key].database_path
    amsterdam = network.agents[AMSTERDAM.key].database_path
    check_side(utrecht, dossier_ids, "departing", DEPARTING_HAPPY_PATH)
    check_side(amsterdam, dossier_ids, "receiving", RECEIVING_HAPPY_PATH)
    check_messages(utrecht, amsterdam, "dossier-offer", dossier_ids)
    check_messages(amsterdam, utrecht, "device-decision", dossier_ids)
    # The bed is lent by Utrecht: its ownership moves to Amsterdam.
    check_messages(utrecht, amsterdam, "device-transfer", dossier_ids)
    for database in (utrecht, amsterdam):
        decisions = rows(
            database, "SELECT dossier_id, COUNT(*) FROM continued_provisions GROUP BY dossier_id"
        )
        assert dict(decisions) == dict.fromkeys(dossier_ids, 3)
    taken_over = rows(
        amsterdam, "SELECT COUNT(*) FROM continued_provisions WHERE outcome = 'take-over'"
    )
    assert taken_over == [(2 * len(dossier_ids),)]


async def test_happy_path_over_real_processes(tmp_path: Path) -> None:
    async with (
        local_network(tmp_path, agent_settings=FAST_RETRIES) as network,
        httpx.AsyncClient(timeout=10.0) as http,
    ):
        utrecht = network.agents[UTRECHT.key]
        dossier_ids = await start_dossiers(http, utrecht, valid_bsns(2))
        for dossier_id in dossier_ids:
            await give_consent(http, utrecht, dossier_id)
        await wait_until_completed(http, network, dossier_ids, 30.0)
    check_everything(network, dossier_ids)


async def restart(http: httpx.AsyncClient, agent: LocalAgent) -> None:
    agent.server.start()
    await agent.server.wait_ready(http, seconds=60.0)


async def test_sigkill_during_a_batch_loses_nothing_and_applies_nothing_twice(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("MEEVERHUIZEN_CRASH_SEED", time.time_ns() % 1_000_000))
    chance = random.Random(seed)
    print(f"crash test seed {seed} (MEEVERHUIZEN_CRASH_SEED to repeat)")
    async with (
        local_network(tmp_path, agent_settings=FAST_RETRIES) as network,
        httpx.AsyncClient(timeout=10.0) as http,
    ):
        utrecht, amsterdam = network.agents[UTRECHT.key], network.agents[AMSTERDAM.key]
        dossier_ids = await start_dossiers(http, utrecht, valid_bsns(30))
        # The receiver is down while the offers are queued: they wait in the outbox.
        amsterdam.server.kill()
        consents = asyncio.gather(*(give_consent(http, utrecht, d) for d in dossier_ids))
        await consents
        await restart(http, amsterdam)
        for _ in range(4):
            await asyncio.sleep(chance.uniform(0.0, 0.4))
            victims = chance.choice([(utrecht,), (amsterdam,), (utrecht, amsterdam)])
            for victim in victims:
                victim.server.kill()
            await asyncio.gather(*(restart(http, victim) for victim in victims))
        await wait_until_completed(http, network, dossier_ids, 90.0)
    check_everything(network, dossier_ids)
    # The outage was real: offers met a closed port first and were retried with the same id.
    failed = rows(
        utrecht.database_path,
        "SELECT COUNT(DISTINCT message_id) FROM delivery_attempts WHERE error LIKE 'network:%'",
    )
    assert failed[0][0] > 0

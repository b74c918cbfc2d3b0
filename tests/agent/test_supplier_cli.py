"""CLI for a supplier's planner: orders list, contact, takeover; deadlines survive a restart."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from agent.cli import cli
from agent.runtime import open_service
from agent.settings import load_settings
from agent.storage.tables import OutboxRow
from protocol.clock import FrozenClock
from protocol.messages import Message, parse_message
from tests.agent.conftest import FakeDirectory
from tests.conftest import write_agent_config

SUPPLIER_OIN = "00000003876543210000"
GEMEENTE_OIN = "00000001002564440000"
ORDER_ID = "5f0c8a52-8d7e-4b8e-9a43-0d2b1c6f7e11"


def _config(tmp_path: Path) -> Path:
    supplier = {
        "oin": SUPPLIER_OIN,
        "role": "supplier",
        "kvk_number": "87654321",
        "name": "Zorgtechniek",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'supplier.sqlite'}",
        "public_base_url": "http://zorgtechniek.test",
    }
    return write_agent_config(tmp_path / "supplier.toml", supplier)


def _order_message(now: datetime) -> Message:
    return parse_message(
        {
            "protocolVersion": "1.0",
            "messageId": str(uuid.uuid4()),
            "dossierId": str(uuid.uuid4()),
            "messageType": "takeover-order",
            "sender": {"oin": GEMEENTE_OIN, "role": "receiving-gemeente"},
            "receiver": {"oin": SUPPLIER_OIN, "role": "receiving-supplier"},
            "createdAt": now.isoformat(),
            "body": {
                "orderId": ORDER_ID,
                "clientName": {"initials": "J.", "surname": "Jansen"},
                "address": {
                    "street": "Damrak",
                    "houseNumber": 1,
                    "postalCode": "1012LG",
                    "city": "Amsterdam",
                    "gemeentecode": "0363",
                },
                "contactPreferences": {"channels": ["phone"], "phoneNumber": "+31 20 1234567"},
                "moveDate": "2025-04-01",
                "devices": [
                    {
                        "deviceId": "dev-1",
                        "isoCode": "12 23 03",
                        "description": "Scootmobiel",
                        "customMade": False,
                        "movable": True,
                        "ownership": "huur",
                    }
                ],
                "contactBefore": "2025-04-30",
                "urgent": False,
            },
        }
    )


async def _receive_order(config: Path, now: datetime) -> None:
    settings = load_settings(config)
    clock = FrozenClock(now)
    async with (
        open_service(settings, clock=clock, registry=FakeDirectory()) as service,
        service.database.transaction() as session,
    ):
        await service.hooks.apply(session, _order_message(now), now)


async def _statuses(config: Path) -> list[dict[str, Any]]:
    settings = load_settings(config)
    async with (
        open_service(settings, registry=FakeDirectory()) as service,
        service.database.reading() as session,
    ):
        rows = await session.scalars(select(OutboxRow).order_by(OutboxRow.sequence))
        return [json.loads(row.body)["body"] for row in rows]


async def _fire(config: Path, now: datetime) -> tuple[int, list[str]]:
    settings = load_settings(config)
    async with open_service(settings, clock=FrozenClock(now), registry=FakeDirectory()) as service:
        fired = await service.deadlines.run_due()
        return fired, [task.kind for task in await service.tasks.list("open")]


def test_planner_lists_contacts_and_takes_over(tmp_path: Path) -> None:
    config = _config(tmp_path)
    asyncio.run(_receive_order(config, datetime(2025, 4, 23, 9, 0, tzinfo=UTC)))
    runner = CliRunner()

    listed = runner.invoke(cli, ["orders", "list", "--config", str(config), "--open"])
    assert listed.exit_code == 0, listed.output
    [order] = json.loads(listed.output)
    assert (order["order_id"], order["status"], order["contact_before"]) == (
        ORDER_ID,
        "received",
        "2025-04-30",
    )
    assert "Jansen" not in listed.output  # the list holds no personal data

    contacted = runner.invoke(cli, ["orders", "contact", "--config", str(config), ORDER_ID])
    assert contacted.exit_code == 0, contacted.output
    taken = runner.invoke(cli, ["orders", "takeover", "--config", str(config), ORDER_ID])
    assert taken.exit_code == 0, taken.output
    assert "taken-over" in taken.output
    again = runner.invoke(cli, ["orders", "contact", "--config", str(config), ORDER_ID])
    assert again.exit_code != 0
    assert "order_status_refused" in again.output

    statuses = asyncio.run(_statuses(config))
    assert [(s["orderId"], s["status"]) for s in statuses] == [
        (ORDER_ID, "received"),
        (ORDER_ID, "client-contacted"),
        (ORDER_ID, "taken-over"),
    ]
    still_open = runner.invoke(cli, ["orders", "list", "--config", str(config), "--open"])
    assert json.loads(still_open.output) == []


def test_deadlines_survive_a_restart(tmp_path: Path) -> None:
    config = _config(tmp_path)
    # Wednesday 23 April 2025; the order says contact before Wednesday 30 April.
    asyncio.run(_receive_order(config, datetime(2025, 4, 23, 9, 0, tzinfo=UTC)))
    # A new process (restart): before the reminder nothing fires.
    assert asyncio.run(_fire(config, datetime(2025, 4, 28, 12, 0, tzinfo=UTC))) == (0, [])
    # After the end of Tuesday 29 April (Amsterdam): the reminder, from the stored deadline.
    assert asyncio.run(_fire(config, datetime(2025, 4, 29, 22, 30, tzinfo=UTC))) == (
        1,
        ["supplier-contact-due"],
    )
    fired, kinds = asyncio.run(_fire(config, datetime(2025, 4, 30, 22, 30, tzinfo=UTC)))
    assert fired == 1
    assert sorted(kinds) == ["supplier-contact-due", "supplier-overdue"]
    # Each deadline fires once.
    assert asyncio.run(_fire(config, datetime(2025, 5, 30, 12, 0, tzinfo=UTC)))[0] == 0
    assert date(2025, 4, 30).isoformat() in json.dumps(
        json.loads(CliRunner().invoke(cli, ["orders", "list", "--config", str(config)]).output)
    )

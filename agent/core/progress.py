"""Departing side: the receiving gemeente's progress per device, read from what it sent.

Every ``handover-progress`` is stored as received (``inbound``); the latest state of each
device is the one the receiving gemeente changed last (``changedAt``), so a late retry of an
older report never hides a newer one (docs/protocol.md, section 8.11).
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.storage.tables import InboundMessageRow
from protocol.messages import DeviceProgress, HandoverProgress

__all__ = ["received_progress"]


async def received_progress(session: AsyncSession, dossier_id: str) -> dict[str, DeviceProgress]:
    """The latest progress the receiving gemeente reported, by device id."""
    bodies = await session.scalars(
        select(InboundMessageRow.body)
        .where(
            InboundMessageRow.dossier_id == dossier_id,
            InboundMessageRow.message_type == "handover-progress",
        )
        .order_by(InboundMessageRow.received_at)
    )
    latest: dict[str, DeviceProgress] = {}
    for body in bodies:
        if not body:
            continue
        progress = HandoverProgress.model_validate(json.loads(body)["body"])
        for device in progress.devices:
            known = latest.get(device.device_id)
            if known is None or device.changed_at >= known.changed_at:
                latest[device.device_id] = device
    return latest

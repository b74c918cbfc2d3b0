"""The register's rows: an import replaces clients by BSN; a handover reads one client back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.register.imports import ImportFormat, read_import
from agent.register.models import ImportResult, RegisterClient
from agent.storage.database import Database
from agent.storage.tables import ClientRow, DeviceRow
from protocol.clock import Clock
from protocol.messages import WireModel

__all__ = [
    "Register",
    "ReplacedHook",
    "add_continued_provisions",
    "forget_loaded_clients",
    "load_client",
    "remove_device",
    "store_import",
]

# Clients read and stored per group: each group's Python work on the event loop stays well under
# 50 ms, so requests are served between groups, and only one group is held in memory at a time.
_CHUNK = 50
_LOADED = "meeverhuizen.loaded_clients"


# Told, in the import's transaction, which clients (BSNs) an import replaced.
ReplacedHook = Callable[[AsyncSession, Sequence[str], datetime], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class Register:
    """The register of current provisions of one gemeente."""

    database: Database
    clock: Clock
    _replaced: list[ReplacedHook] = field(default_factory=list)

    def on_replaced(self, hook: ReplacedHook) -> None:
        """Run ``hook`` with the BSNs of each group of clients an import replaced."""
        self._replaced.append(hook)

    async def import_provisions(
        self,
        content: bytes,
        import_format: ImportFormat,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportResult:
        """Apply the whole import in one transaction (all or nothing).

        Clients are read and validated in a worker thread, group by group, and each group is
        stored before the next is read; a problem anywhere rolls everything back.
        ``progress(done, total)`` is told after each group stored (the CLI's progress bar).
        """
        groups = read_import(content, import_format, chunk_size=_CHUNK)
        now = self.clock.now()
        clients = devices = 0
        async with self.database.transaction() as session:
            while (chunk := await asyncio.to_thread(next, groups, None)) is not None:
                await store_import(session, chunk.clients, now=now)
                for hook in self._replaced:
                    await hook(session, [client.bsn for client in chunk.clients], now)
                clients += len(chunk.clients)
                devices += sum(len(client.devices) for client in chunk.clients)
                if progress is not None:
                    progress(chunk.done, chunk.total)
        return ImportResult(clients=clients, devices=devices)


async def store_import(
    session: AsyncSession, clients: Sequence[RegisterClient], *, now: datetime
) -> None:
    """Replace each imported client's record (by BSN) inside the caller's transaction."""
    forget_loaded_clients(session)
    bsns = [client.bsn for client in clients]
    replaced = select(ClientRow.id).where(ClientRow.bsn.in_(bsns))
    # Rows of this session are not kept in step: loaded clients are forgotten above.
    unsynchronised = {"synchronize_session": False}
    await session.execute(
        delete(DeviceRow).where(DeviceRow.client_id.in_(replaced)),
        execution_options=unsynchronised,
    )
    await session.execute(
        delete(ClientRow).where(ClientRow.bsn.in_(bsns)), execution_options=unsynchronised
    )
    stored = await session.execute(
        insert(ClientRow).returning(ClientRow.id, ClientRow.bsn, sort_by_parameter_order=True),
        [
            {"bsn": c.bsn, "details": _wire(c, exclude={"bsn", "devices"}), "imported_at": now}
            for c in clients
        ],
    )
    ids = {bsn: client_id for client_id, bsn in stored}
    devices = [
        {
            "client_id": ids[client.bsn],
            "device_id": device.device_id,
            "iso_code": device.iso_code,
            "movable": device.movable,
            "details": _wire(device),
        }
        for client in clients
        for device in client.devices
    ]
    await session.execute(insert(DeviceRow), devices)


async def add_continued_provisions(
    session: AsyncSession, client: RegisterClient, *, now: datetime
) -> None:
    """Receiving side: the client and the devices taken over join this gemeente's register.

    A client already in the register keeps the devices it had; a device with the same id is
    replaced. So the next move of this client finds every device it now has here.
    """
    existing = await load_client(session, client.bsn)
    if existing is not None:
        taken_over = {device.device_id for device in client.devices}
        kept = tuple(d for d in existing.devices if d.device_id not in taken_over)
        client = client.model_copy(update={"devices": kept + client.devices})
    await store_import(session, [client], now=now)


async def remove_device(session: AsyncSession, bsn: str, device_id: str) -> None:
    """A device of the register is not provided here after all (a decision changed).

    A client left without a device has no provision here: the client leaves the register too.
    """
    forget_loaded_clients(session)
    client = select(ClientRow.id).where(ClientRow.bsn == bsn).scalar_subquery()
    unsynchronised = {"synchronize_session": False}
    await session.execute(
        delete(DeviceRow).where(DeviceRow.client_id == client, DeviceRow.device_id == device_id),
        execution_options=unsynchronised,
    )
    left = select(DeviceRow.id).where(DeviceRow.client_id == ClientRow.id).exists()
    await session.execute(
        delete(ClientRow).where(ClientRow.bsn == bsn, ~left), execution_options=unsynchronised
    )


def forget_loaded_clients(session: AsyncSession) -> None:
    """After a change to clients in this session: :func:`load_client` reads them again."""
    session.info.pop(_LOADED, None)


async def load_client(session: AsyncSession, bsn: str) -> RegisterClient | None:
    """The register's record of the client with this BSN, or None.

    Read once per session (a handover's steps read the client several times in a transaction);
    a change in the same session calls :func:`forget_loaded_clients`.
    """
    loaded: dict[str, RegisterClient | None] = session.info.setdefault(_LOADED, {})
    if bsn in loaded:
        return loaded[bsn]
    rows = (
        await session.execute(
            select(ClientRow.details, DeviceRow.details.label("device"))
            .outerjoin(DeviceRow, DeviceRow.client_id == ClientRow.id)
            .where(ClientRow.bsn == bsn)
            .order_by(DeviceRow.id)
        )
    ).all()
    client = (
        RegisterClient.model_validate(
            {
                **rows[0].details,
                "bsn": bsn,
                "devices": [row.device for row in rows if row.device is not None],
            }
        )
        if rows
        else None
    )
    loaded[bsn] = client
    return client


def _wire(model: WireModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = model.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude=exclude
    )
    return document

"""The consulent's worklist, search and actions, each on behalf of a named person."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.casework.files import CaseFile, Client, client_of, read_case_file
from agent.casework.search_index import dossiers_by_name, dossiers_by_postcode
from agent.core.context import AgentContext
from agent.core.dossiers import Dossiers
from agent.core.tasks import Task, Tasks
from agent.errors import DossierUnknown
from agent.storage.tables import DossierRow, TaskRow
from protocol.messages import CancelReason

__all__ = ["CaseWork", "DossierHit", "WorkItem"]

_BSN = re.compile(r"^[0-9]{9}$")
_POSTCODE = re.compile(r"^([0-9]{4}) ?([A-Za-z]{2})$")


@dataclass(frozen=True)
class WorkItem:
    """An open task with the client's name and devices: one line of the werkbak."""

    task: Task
    client_name: str | None
    devices: tuple[str, ...]
    urgent: bool


@dataclass(frozen=True)
class DossierHit:
    """A dossier found by a search."""

    dossier_id: str
    client_name: str
    side: str
    state: str
    move_date: str | None


class CaseWork:
    """The consulent's work: every read of a client's data is logged with the person."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers, tasks: Tasks) -> None:
        self._agent = agent
        self._dossiers = dossiers
        self._tasks = tasks

    # --- the werkbak ----------------------------------------------------------------------------

    async def worklist(self, *, actor: str) -> list[WorkItem]:
        """Open tasks: urgent first, then by deadline (none last), then oldest first.

        The list shows each client's name: one processing log record per dossier, with ``actor``.
        """
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            rows = list(await session.scalars(select(TaskRow).where(TaskRow.state == "open")))
            items = []
            shown: set[str] = set()
            for row in rows:
                dossier = await session.get(DossierRow, row.dossier_id) if row.dossier_id else None
                client = await client_of(session, dossier) if dossier is not None else None
                if dossier is not None and dossier.id not in shown:
                    shown.add(dossier.id)
                    await self._agent.log.record(
                        session, "werkbak-worklist-viewed", dossier, now, actor=actor
                    )
                items.append(
                    WorkItem(
                        Task.model_validate(row),
                        client.name if client else None,
                        _movable(client),
                        bool(dossier and dossier.urgent),
                    )
                )
        far = datetime.max.replace(tzinfo=self._agent.clock.now().tzinfo)
        items.sort(
            key=lambda item: (
                not item.urgent,
                item.task.due_at or far,
                item.task.created_at,
                item.task.id,
            )
        )
        return items

    async def take(self, task_id: str, *, actor: str) -> Task:
        """``actor`` takes the task."""
        return await self._tasks.take(task_id, by=actor)

    async def hand_back(self, task_id: str, *, actor: str) -> Task:
        """``actor`` hands the task back to the werkbak."""
        return await self._tasks.hand_back(task_id, by=actor)

    async def close(self, task_id: str, note: str, *, actor: str) -> Task:
        """Close the task with a note; the note goes into the dossier's timeline too."""
        task = await self._tasks.complete(task_id, done_by=actor, note=note)
        if task.dossier_id is not None:
            await self.note(task.dossier_id, f"taak afgesloten: {note}", actor=actor)
        return task

    # --- finding and reading --------------------------------------------------------------------

    async def search(self, query: str, *, actor: str) -> list[DossierHit]:
        """Dossiers by dossier id, BSN (exact), postcode or the start of each word of a name.

        Every dossier found is a processing log record with ``actor``: the search showed its
        client's name.
        """
        text = query.strip()
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            found = await self._find(session, text)
            hits = []
            for dossier, client in found:
                await self._agent.log.record(session, "werkbak-search", dossier, now, actor=actor)
                hits.append(
                    DossierHit(
                        dossier.id,
                        client.name,
                        dossier.side,
                        dossier.state,
                        dossier.move_date.isoformat() if dossier.move_date else None,
                    )
                )
            return hits

    async def _find(self, session: AsyncSession, text: str) -> list[tuple[DossierRow, Client]]:
        if not text:
            return []
        if _BSN.match(text):
            query = select(DossierRow).where(DossierRow.client_bsn == text)
            return [(d, await client_of(session, d)) for d in await session.scalars(query)]
        try:
            dossier_id = str(uuid.UUID(text))
        except ValueError:
            pass
        else:
            dossier = await session.get(DossierRow, dossier_id)
            return [(dossier, await client_of(session, dossier))] if dossier else []
        # The index (agent.casework.search_index), not every dossier's client.
        if _POSTCODE.match(text):
            dossiers = await dossiers_by_postcode(session, text)
        else:
            dossiers = await dossiers_by_name(session, text)
        return [(dossier, await client_of(session, dossier)) for dossier in dossiers]

    async def case_file(self, dossier_id: str, *, actor: str) -> CaseFile:
        """The dossier's page; the view is a processing log record with ``actor``."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            # The view adds its processing record and changes no dossier: no lock.
            dossier = await _dossier(session, dossier_id, lock=False)
            await self._agent.log.record(
                session, "werkbak-dossier-viewed", dossier, now, actor=actor
            )
            return await read_case_file(session, dossier, now)

    # --- actions with a reason ------------------------------------------------------------------

    async def note(self, dossier_id: str, text: str, *, actor: str) -> None:
        """A line in the dossier's timeline: what ``actor`` did and why (no state change)."""
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await _dossier(session, dossier_id, lock=True)
            await self._note_in(session, dossier, text, actor, now)

    async def mark_urgent(self, dossier_id: str, reason: str, *, actor: str) -> None:
        """The client cannot be without a device: urgent first in the werkbak and in the offer.

        The rules and the stored reason are ``Dossiers.mark_urgent``'s, as for the API.
        """
        await self._dossiers.mark_urgent(_key(dossier_id), reason=reason)
        await self.note(dossier_id, f"urgent gemaakt: {reason}", actor=actor)

    async def cancel(
        self, dossier_id: str, reason: CancelReason, explanation: str, *, actor: str
    ) -> None:
        """Cancel the handover; a partner that got a message is told (``Dossiers.cancel_in``).

        A final dossier cannot be cancelled: ``Dossiers.transition`` refuses it.
        """
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            dossier = await _dossier(session, dossier_id, lock=True)
            cause = f"geannuleerd door {actor}: {explanation}"
            await self._dossiers.cancel_in(session, dossier, reason=reason, cause=cause, now=now)

    async def _note_in(
        self, session: AsyncSession, dossier: DossierRow, text: str, actor: str, now: datetime
    ) -> None:
        self._dossiers.note(session, dossier, f"{actor}: {text}", now)
        await self._agent.log.record(session, "werkbak-dossier-changed", dossier, now, actor=actor)


def _key(dossier_id: str) -> str:
    try:
        return str(uuid.UUID(dossier_id))
    except ValueError:
        raise DossierUnknown("no dossier with this id") from None


async def _dossier(session: AsyncSession, dossier_id: str, *, lock: bool) -> DossierRow:
    """The dossier; ``lock`` (FOR UPDATE) when the transaction changes it."""
    dossier = await session.get(DossierRow, _key(dossier_id), with_for_update=lock)
    if dossier is None:
        raise DossierUnknown("no dossier with this id")
    return dossier


def _movable(client: Client | None) -> tuple[str, ...]:
    if client is None:
        return ()
    return tuple(device.description for device in client.devices if device.movable)

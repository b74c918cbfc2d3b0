"""BRP events handled: stored once in an inbox (by source and id) and acted on, in one transaction.

A crash can neither lose nor double-process an event. Nothing about people without provisions is
kept: their events are reduced to id, source, type, subject and time, and counted. A move out of
this gemeente starts a dossier; a move in asks the departing gemeente for one (when enabled); a
correction, a withdrawn move or a death stops the dossier; an emigration is a task.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agent.brp.events import KEPT_SUBJECTS, CloudEvent, PersonData
from agent.core.context import AgentContext
from agent.core.dossiers import RECEIVING_ROLES, Dossiers
from agent.core.states import DEPARTING_TRANSITIONS, RECEIVING_TRANSITIONS
from agent.core.tasks import open_task
from agent.core.views import DossierStart
from agent.errors import AgentError, registry_failure
from agent.register.names import devices_phrase, gemeente_name, person_name
from agent.register.store import forget_loaded_clients, load_client
from agent.storage.tables import (
    BrpEventCountRow,
    BrpEventRow,
    ClientRow,
    DeviceRow,
    DossierRow,
    FeedCursorRow,
)
from agent.working_days import dutch_date_of
from protocol.messages import Address, CancelReason, DossierRequest
from registry.errors import ParticipantNotEnrolled, ParticipantUnknown, RegistryError

__all__ = ["BrpEvents", "HandlingReport"]

_log = logging.getLogger("agent.brp")


@dataclass
class HandlingReport:
    """What one call to :meth:`BrpEvents.receive` did."""

    received: int = 0
    duplicates: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Outcome:
    name: str
    keep: bool = False
    dossier_id: str | None = None


@dataclass
class _Batch:
    """One batch being handled: its transaction and time, and what it needs from the database,
    loaded with a few queries."""

    session: AsyncSession
    now: datetime
    movable: dict[str, bool]
    open_dossiers: dict[str, list[DossierRow]]
    departing_oins: dict[str, str | None]
    served: frozenset[str]  # the gemeenten this agent serves (a regional service: several)


_IRRELEVANT = _Outcome("irrelevant")


class BrpEvents:
    """Stores and handles BRP events for one agent (push endpoint and feed reader call this)."""

    def __init__(
        self, agent: AgentContext, *, dossiers: Dossiers, committed: Callable[[], None]
    ) -> None:
        self._agent = agent
        self._dossiers = dossiers
        self._committed = committed

    async def receive(
        self, events: Sequence[CloudEvent], *, cursor: tuple[str, str] | None = None
    ) -> HandlingReport:
        """Store the new events and handle them in one transaction; duplicates are skipped.

        ``cursor`` (feed url, last event id) is stored in the same transaction (pull).
        """
        served = await self._served(events)
        departing_oins = await self._departing_oins(events, served)
        for attempt in (1, 2):
            try:
                return await self._receive_once(events, served, departing_oins, cursor)
            except IntegrityError:
                # The same event arrived twice at once; the other transaction stored it first.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _receive_once(
        self,
        events: Sequence[CloudEvent],
        served: frozenset[str],
        departing_oins: dict[str, str | None],
        cursor: tuple[str, str] | None,
    ) -> HandlingReport:
        report = HandlingReport(received=len(events))
        now = self._agent.clock.now()
        async with self._agent.database.transaction() as session:
            fresh = await _new_events(session, events)
            report.duplicates = len(events) - len(fresh)
            batch = await self._load(session, now, fresh, departing_oins, served)
            counts: dict[tuple[str, str], int] = {}
            for event in fresh:
                outcome = await self._handle_safely(batch, event)
                session.add(_row(event, outcome, now))
                counts[(event.type, outcome.name)] = counts.get((event.type, outcome.name), 0) + 1
                report.outcomes[outcome.name] = report.outcomes.get(outcome.name, 0) + 1
            await _count(session, counts)
            if cursor is not None:
                await _store_cursor(session, cursor, now)
        if any(name != "irrelevant" for name in report.outcomes):
            self._committed()
        _log.info(
            "brp_events_handled",
            extra={"received": report.received, "duplicates": report.duplicates},
        )
        return report

    async def _served(self, events: Iterable[CloudEvent]) -> frozenset[str]:
        """The gemeenten this agent serves, asked of the registry (before the transaction) only
        when a move names a gemeente other than the configured one."""
        configured = self._agent.settings.gemeentecode or ""
        if all(code == configured for event in events for code in _move_gemeenten(event)):
            return frozenset({configured})
        return await self._agent.served_or_own()

    async def _departing_oins(
        self, events: Iterable[CloudEvent], served: frozenset[str]
    ) -> dict[str, str | None]:
        """OINs of departing gemeenten to ask for a dossier (looked up before the transaction)."""
        if not self._agent.settings.brp_dossier_requests:
            return {}
        codes = {
            previous for event in events if (previous := _moved_in_from(event, served)) is not None
        }
        found: dict[str, str | None] = {}
        for code in sorted(codes):
            try:
                entry = await self._agent.directory.gemeente(code, message_type="dossier-request")
                # Never a request to this agent itself (a region it could not look up just now).
                found[code] = None if entry.oin == self._agent.settings.oin else entry.oin
            except (ParticipantUnknown, ParticipantNotEnrolled):
                found[code] = None
            except RegistryError as exc:
                raise registry_failure(exc) from exc
        return found

    async def _load(
        self,
        session: AsyncSession,
        now: datetime,
        events: Sequence[CloudEvent],
        departing_oins: dict[str, str | None],
        served: frozenset[str],
    ) -> _Batch:
        bsns = {event.data.burgerservicenummer for event in events if event.data is not None}
        movable: dict[str, bool] = {}
        open_dossiers: dict[str, list[DossierRow]] = {}
        if bsns:
            rows = await session.execute(
                select(ClientRow.bsn, DeviceRow.movable)
                .join(DeviceRow, DeviceRow.client_id == ClientRow.id)
                .where(ClientRow.bsn.in_(bsns))
            )
            for bsn, device_movable in rows:
                movable[bsn] = movable.get(bsn, False) or device_movable
            dossiers = await session.scalars(
                select(DossierRow).where(DossierRow.client_bsn.in_(bsns))
            )
            for dossier in dossiers:
                if _can_cancel(dossier):
                    open_dossiers.setdefault(dossier.client_bsn or "", []).append(dossier)
        return _Batch(session, now, movable, open_dossiers, departing_oins, served)

    async def _handle_safely(self, batch: _Batch, event: CloudEvent) -> _Outcome:
        if event.data is None or event.kind is None:
            return _IRRELEVANT
        try:
            # Each handler checks before it changes anything, so a refusal leaves no half change.
            return await self._handle(batch, event, event.data)
        except AgentError as exc:
            _log.warning("brp_event_not_handled", extra={"event_id": event.id, "code": exc.code})
            return _Outcome(f"refused:{exc.code}"[:40])

    async def _handle(self, batch: _Batch, event: CloudEvent, data: PersonData) -> _Outcome:
        bsn = data.burgerservicenummer
        if event.kind in ("cancelled", "corrected", "died"):
            return await self._stop(batch, event, data, batch.open_dossiers.get(bsn, []))
        moved_in_from = _moved_in_from(event, batch.served)
        if moved_in_from is not None:
            return await self._request(batch, event, data, moved_in_from)
        if bsn not in batch.movable:
            return _IRRELEVANT
        if event.kind == "binnengemeentelijk":
            return await self._update_address(batch.session, data)
        if event.kind == "emigratie":
            return await self._emigration(batch, event, batch.open_dossiers.get(bsn, []))
        if event.kind == "buitengemeentelijk" and batch.movable[bsn]:
            return await self._start(batch, event, data)
        return _IRRELEVANT

    async def _start(self, batch: _Batch, event: CloudEvent, data: PersonData) -> _Outcome:
        session, now = batch.session, batch.now
        previous = data.vorige_gemeente_van_inschrijving
        if previous is not None and previous.code not in batch.served:
            return _IRRELEVANT
        address = _address(data)
        move_date = None if data.verblijfplaats is None else data.verblijfplaats.start
        if address is None or move_date is None:
            description = (
                f"Het BRP meldt een verhuizing naar een andere gemeente (bericht {event.id}), "
                "maar zonder bruikbaar adres of datum. Zoek de cliënt op en start de overdracht "
                "met de hand (POST /v1/dossiers)."
            )
            await open_task(session, "manual-check", description, now)
            return _Outcome("task-opened", keep=True)
        if address.gemeentecode in batch.served:
            if previous is None or previous.code == address.gemeentecode:
                return _IRRELEVANT
            return await self._within_region(batch, event, previous.code, address.gemeentecode)
        open_dossiers = batch.open_dossiers.setdefault(data.burgerservicenummer, [])
        if any(d.side == "departing" for d in open_dossiers):
            return _Outcome("dossier-already-open")
        # A move announced for a future date starts now, with the move date in the future.
        start = DossierStart(bsn=data.burgerservicenummer, move_date=move_date, new_address=address)
        dossier = await self._dossiers.start_in(
            session,
            start,
            cause=f"BRP event {event.id} ({event.type})",
            now=now,
            gemeentecode=None if previous is None else previous.code,
        )
        open_dossiers.append(dossier)
        return _Outcome("dossier-started", keep=True, dossier_id=dossier.id)

    async def _within_region(
        self, batch: _Batch, event: CloudEvent, previous: str, new: str
    ) -> _Outcome:
        """A move between two gemeenten this agent serves: no other party to hand over to."""
        name, devices = await _client_in_words(batch.session, _event_bsn(event))
        description = (
            f"{name} verhuist van {gemeente_name(previous)} naar {gemeente_name(new)} "
            f"(BRP-bericht {event.id}). Beide gemeenten horen bij deze organisatie, dus er gaat "
            f"geen overdracht naar een andere gemeente. Zet de voorziening over naar "
            f"{gemeente_name(new)} en laat {devices} bij de cliënt."
        )
        await open_task(batch.session, "move-within-region", description, batch.now)
        return _Outcome("task-opened", keep=True)

    async def _update_address(self, session: AsyncSession, data: PersonData) -> _Outcome:
        address = _address(data, default_gemeentecode=self._agent.settings.gemeentecode)
        if address is None:
            return _Outcome("address-incomplete")
        client = await session.scalar(
            select(ClientRow).where(ClientRow.bsn == data.burgerservicenummer)
        )
        if client is None:
            return _IRRELEVANT
        wire = address.model_dump(mode="json", by_alias=True, exclude_none=True)
        client.details = {**client.details, "address": wire}
        forget_loaded_clients(session)
        return _Outcome("address-updated")

    async def _emigration(
        self, batch: _Batch, event: CloudEvent, dossiers: list[DossierRow]
    ) -> _Outcome:
        session, now = batch.session, batch.now
        departing = [d for d in dossiers if d.side == "departing"]
        for dossier in departing:
            await self._dossiers.cancel_in(
                session, dossier, reason="move-corrected", cause=f"BRP event {event.id}", now=now
            )
        name, devices = await _client_in_words(session, _event_bsn(event))
        description = (
            f"{name} is naar het buitenland verhuisd (BRP-bericht {event.id}). Er is geen "
            f"overdracht. Beëindig de voorziening en regel dat {devices} terugkomen."
        )
        await open_task(session, "emigration", description, now)
        return _Outcome("emigration-flagged", keep=True)

    async def _stop(
        self, batch: _Batch, event: CloudEvent, data: PersonData, dossiers: list[DossierRow]
    ) -> _Outcome:
        session, now = batch.session, batch.now
        reason: CancelReason = {
            "cancelled": "move-cancelled",
            "corrected": "move-corrected",
            "died": "client-deceased",
        }.get(event.kind or "", "other")  # type: ignore[assignment]
        start = None if data.verblijfplaats is None else data.verblijfplaats.start
        stopped = None
        for dossier in list(dossiers):
            # A correction names the original start date; only that move is void.
            if reason != "client-deceased" and start is not None and dossier.move_date != start:
                continue
            await self._dossiers.cancel_in(
                session, dossier, reason=reason, cause=f"BRP event {event.id} ({reason})", now=now
            )
            dossiers.remove(dossier)
            stopped = dossier.id
            if reason == "client-deceased" and dossier.side == "departing":
                await self._deceased_task(session, dossier, now)
        if stopped is None:
            return _IRRELEVANT
        return _Outcome("dossier-stopped", dossier_id=stopped)

    async def _deceased_task(
        self, session: AsyncSession, dossier: DossierRow, now: datetime
    ) -> None:
        name, devices = await _client_in_words(session, dossier.client_bsn or "")
        await open_task(
            session,
            "client-deceased",
            f"{name} is overleden. De overdracht naar de nieuwe gemeente is gestopt. Beëindig "
            f"de voorziening en spreek met de familie af wanneer {devices} worden opgehaald.",
            now,
            dossier_id=dossier.id,
        )

    async def _request(
        self, batch: _Batch, event: CloudEvent, data: PersonData, previous: str
    ) -> _Outcome:
        session, now = batch.session, batch.now
        oin = batch.departing_oins.get(previous)
        if oin is None:
            return _Outcome("departing-not-connected")
        if batch.open_dossiers.get(data.burgerservicenummer):
            return _Outcome("dossier-already-open")
        move_date = None if data.verblijfplaats is None else data.verblijfplaats.start
        request = DossierRequest(
            bsn=data.burgerservicenummer,
            move_date=move_date or dutch_date_of(now),
            previous_gemeentecode=previous,
            new_address=_address(data),
        )
        # No dossier of our own yet: the request's id is its dossier id until the offer comes.
        request_id = str(uuid.uuid4())
        await self._agent.outgoing.message(
            session, request_id, request, now, to=oin, roles=RECEIVING_ROLES
        )
        return _Outcome("dossier-requested", dossier_id=request_id)


async def _client_in_words(session: AsyncSession, bsn: str) -> tuple[str, str]:
    """The client's name and every device of theirs, as a task names them."""
    client = await load_client(session, bsn)
    if client is None:
        return "De cliënt", "de hulpmiddelen"
    return person_name(client.name), devices_phrase(client.devices)


def _move_gemeenten(event: CloudEvent) -> tuple[str, ...]:
    """The gemeenten a move between gemeenten names (none for any other event)."""
    data = event.data
    if event.kind not in ("buitengemeentelijk", "immigratie") or data is None:
        return ()
    named = (data.gemeente_van_inschrijving, data.vorige_gemeente_van_inschrijving)
    return tuple(gemeente.code for gemeente in named if gemeente is not None)


def _moved_in_from(event: CloudEvent, served: frozenset[str]) -> str | None:
    """The gemeente a client moved in from, when it is not one this agent serves."""
    data = event.data
    if event.kind not in ("buitengemeentelijk", "immigratie") or data is None:
        return None
    new, previous = data.gemeente_van_inschrijving, data.vorige_gemeente_van_inschrijving
    if new is None or previous is None or new.code not in served or previous.code in served:
        return None
    return previous.code


def _event_bsn(event: CloudEvent) -> str:
    """The BSN an event is about ('' without data)."""
    return "" if event.data is None else event.data.burgerservicenummer


def _can_cancel(dossier: DossierRow) -> bool:
    table = DEPARTING_TRANSITIONS if dossier.side == "departing" else RECEIVING_TRANSITIONS
    return "cancelled" in table.get(dossier.state, frozenset())


def _address(data: PersonData, *, default_gemeentecode: str | None = None) -> Address | None:
    place = data.verblijfplaats
    gemeente = data.gemeente_van_inschrijving
    code = gemeente.code if gemeente is not None else default_gemeentecode
    if place is None or code is None:
        return None
    values = {
        "street": place.straat,
        "houseNumber": place.huisnummer,
        "houseLetter": place.huisletter,
        "houseNumberAddition": place.huisnummertoevoeging,
        "postalCode": place.postcode,
        "city": place.woonplaats,
        "gemeentecode": code,
    }
    try:
        return Address.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError:
        return None


async def _new_events(session: AsyncSession, events: Sequence[CloudEvent]) -> list[CloudEvent]:
    """The events not stored before, each (source, id) once."""
    if not events:
        return []
    ids = {event.id for event in events}
    stored = await session.execute(
        select(BrpEventRow.source, BrpEventRow.event_id).where(BrpEventRow.event_id.in_(ids))
    )
    seen = {(source, event_id) for source, event_id in stored}
    fresh = []
    for event in events:
        key = (event.source, event.id)
        if key not in seen:
            seen.add(key)
            fresh.append(event)
    return fresh


def _row(event: CloudEvent, outcome: _Outcome, now: datetime) -> BrpEventRow:
    data = None
    if outcome.keep and event.data is not None:
        data = event.data.model_dump(mode="json", by_alias=True, exclude_none=True)
    return BrpEventRow(
        source=event.source,
        event_id=event.id,
        type=event.type,
        # A subject outside the BRP's own values may be personal data (the NL GOV profile's
        # example carries a BSN there): it is not kept.
        subject=event.subject if event.subject in KEPT_SUBJECTS else None,
        time=event.time,
        received_at=now,
        outcome=outcome.name,
        dossier_id=outcome.dossier_id,
        data=data,
    )


async def _count(session: AsyncSession, counts: Mapping[tuple[str, str], int]) -> None:
    for (event_type, outcome), number in sorted(counts.items()):
        row = await session.get(BrpEventCountRow, (event_type, outcome))
        if row is None:
            session.add(BrpEventCountRow(type=event_type, outcome=outcome, count=number))
        else:
            row.count += number


async def _store_cursor(session: AsyncSession, cursor: tuple[str, str], now: datetime) -> None:
    feed_url, last_id = cursor
    row = await session.get(FeedCursorRow, feed_url)
    if row is None:
        session.add(FeedCursorRow(feed_url=feed_url, last_event_id=last_id, updated_at=now))
    else:
        row.last_event_id, row.updated_at = last_id, now

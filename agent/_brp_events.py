"""BRP move events (issue 5): CloudEvents checked, stored once in an inbox, and handled.

Events follow the BRP API Gebeurtenissen work (type ``nl.brp.verhuisd`` with a subject, or the
dotted form ``nl.brp.verhuisd.<subject>``; ``nl.brp.verblijfplaats-gecorrigeerd``;
``nl.brp.overleden``) in CloudEvents 1.0 structured JSON mode. ``docs/brp-events.md`` gives the
exact shape. An event is stored (deduplicated by source and id) and handled in one transaction,
so a crash can neither lose nor double-process it. Nothing about people without provisions is
kept: their events are reduced to id, source, type, subject and time, and counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from agent._db import Base, ClientRow, DeviceRow, DossierRow
from agent._register import forget_loaded_clients
from agent._states import DEPARTING_TRANSITIONS, RECEIVING_TRANSITIONS
from agent._tasks import open_task
from agent._views import DossierStart
from agent.errors import (
    AgentError,
    DirectoryUnavailable,
    EventBatchTooLarge,
    EventInvalid,
    MessageNotHandled,
)
from protocol.identifiers import Bsn, Gemeentecode
from protocol.messages import Address, CancelReason, DossierRequest, Message
from registry.errors import ParticipantNotEnrolled, ParticipantUnknown, RegistryError

if TYPE_CHECKING:
    from agent._service import AgentService

__all__ = [
    "BRP_TYPES",
    "MOVE_CANCELLED",
    "BrpEventCountRow",
    "BrpEventRow",
    "BrpEvents",
    "CloudEvent",
    "FeedCursorRow",
    "HandlingReport",
    "on_dossier_request",
    "parse_events",
]

_log = logging.getLogger("agent.brp")

VERHUISD: Final = "nl.brp.verhuisd"
CORRECTED: Final = "nl.brp.verblijfplaats-gecorrigeerd"
DIED: Final = "nl.brp.overleden"
# Own type (documented): the BRP work has no event for an announced move that is withdrawn.
MOVE_CANCELLED: Final = "nl.meeverhuizen.brp.verhuizing-ingetrokken"
Kind = Literal[
    "buitengemeentelijk", "binnengemeentelijk", "emigratie", "immigratie", "corrected", "died",
    "cancelled",
]  # fmt: skip
# (type, subject) -> kind; the dotted forms are those seen in the BRP work's feature files.
_KINDS: Final[dict[tuple[str, str | None], Kind]] = {
    (VERHUISD, "buitengemeentelijk"): "buitengemeentelijk",
    (VERHUISD, "binnengemeentelijk"): "binnengemeentelijk",
    (VERHUISD, "emigratie"): "emigratie",
    (VERHUISD, "immigratie"): "immigratie",
    ("nl.brp.verhuisd.buitengemeentelijk", None): "buitengemeentelijk",
    ("nl.brp.verhuisd.intergemeentelijk", None): "buitengemeentelijk",
    ("nl.brp.verhuisd.binnengemeentelijk", None): "binnengemeentelijk",
    ("nl.brp.verhuisd.emigratie", None): "emigratie",
    ("nl.brp.verhuisd.naar-buitenland", None): "emigratie",
    ("nl.brp.verhuisd.immigratie", None): "immigratie",
    ("nl.brp.ingeschreven.immigratie", None): "immigratie",
    (CORRECTED, None): "corrected",
    (DIED, None): "died",
    (MOVE_CANCELLED, None): "cancelled",
}
_SUBJECTS: Final[frozenset[str | None]] = frozenset(subject for _, subject in _KINDS)
BRP_TYPES: Final[frozenset[str]] = frozenset(event_type for event_type, _ in _KINDS)
_MAX_ID = 200
_MAX_SOURCE = 500
_ATTRIBUTE_CHARACTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")

# --- event data (BRP field names) ---------------------------------------------------------------


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _Code(_Data):
    code: Gemeentecode


class _AddressFunction(_Data):
    code: Literal["W", "B"]  # woonadres, briefadres


class _Datum(_Data):
    datum: date


class _Verblijfplaats(_Data):
    """The new address (BRP ``verblijfplaats``); ``functieAdres`` B is a briefadres."""

    straat: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        validation_alias=AliasChoices("straat", "officieleStraatnaam", "korteStraatnaam"),
    )
    huisnummer: int | None = Field(default=None, gt=0)
    huisletter: str | None = Field(default=None, pattern=r"^[A-Za-z]$")
    huisnummertoevoeging: str | None = Field(default=None, min_length=1, max_length=4)
    postcode: str | None = Field(default=None, pattern=r"^[1-9][0-9]{3}[A-Z]{2}$")
    woonplaats: str | None = Field(default=None, min_length=1, max_length=80)
    functie_adres: _AddressFunction | None = Field(default=None, alias="functieAdres")
    datum_aanvang_adreshouding: date | None = Field(default=None, alias="datumAanvangAdreshouding")
    datum_van: _Datum | None = Field(default=None, alias="datumVan")

    @property
    def start(self) -> date | None:
        if self.datum_aanvang_adreshouding is not None:
            return self.datum_aanvang_adreshouding
        return None if self.datum_van is None else self.datum_van.datum


class _PersonData(_Data):
    burgerservicenummer: Bsn
    gemeente_van_inschrijving: _Code | None = Field(default=None, alias="gemeenteVanInschrijving")
    vorige_gemeente_van_inschrijving: _Code | None = Field(
        default=None, alias="vorigeGemeenteVanInschrijving"
    )
    verblijfplaats: _Verblijfplaats | None = None


@dataclass(frozen=True)
class CloudEvent:
    """One accepted event: its context attributes and, for BRP person events, its data."""

    source: str
    id: str
    type: str
    subject: str | None
    time: datetime | None
    kind: Kind | None
    data: _PersonData | None
    raw_data: Mapping[str, Any] | None = field(default=None, repr=False)


# --- parsing ------------------------------------------------------------------------------------


def parse_events(body: bytes, *, batch: bool, max_events: int) -> list[CloudEvent]:
    """Parse a structured-mode body; :class:`EventInvalid` names the first bad field."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventInvalid("the body is not JSON") from exc
    if not batch:
        return [parse_event(document, "")]
    if not isinstance(document, list):
        raise EventInvalid("a batch is a JSON array of events")
    if len(document) > max_events:
        raise EventBatchTooLarge(f"a batch holds at most {max_events} events")
    return [parse_event(raw, f"[{index}].") for index, raw in enumerate(document)]


def parse_event(raw: Any, prefix: str = "") -> CloudEvent:
    """Check one event's context attributes (CloudEvents 1.0, NL GOV profile) and its data."""
    if not isinstance(raw, dict):
        raise EventInvalid(f"{prefix or 'event'}: an event is a JSON object")
    if raw.get("specversion") != "1.0":
        raise EventInvalid(f"{prefix}specversion: must be 1.0")
    event_id = _text(raw, "id", prefix, _MAX_ID)
    source = _text(raw, "source", prefix, _MAX_SOURCE)
    event_type = _text(raw, "type", prefix, 200)
    subject = raw.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise EventInvalid(f"{prefix}subject: must be a string")
    for name in raw:
        if not set(name) <= _ATTRIBUTE_CHARACTERS or len(name) > 20:
            raise EventInvalid(f"{prefix}attribute names use a-z and 0-9 only (20 at most)")
    kind = _KINDS.get((event_type, subject)) or _KINDS.get((event_type, None))
    data = None if kind is None else _person_data(raw, prefix)
    return CloudEvent(
        source=source,
        id=event_id,
        type=event_type,
        subject=subject,
        time=_time(raw.get("time"), prefix),
        kind=kind,
        data=data,
    )


def _text(raw: Mapping[str, Any], name: str, prefix: str, limit: int) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise EventInvalid(f"{prefix}{name}: required, a string of 1 to {limit} characters")
    return value


def _time(value: Any, prefix: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise EventInvalid(f"{prefix}time: must be an RFC 3339 timestamp with offset")
    return moment


def _person_data(raw: Mapping[str, Any], prefix: str) -> _PersonData:
    content_type = raw.get("datacontenttype", "application/json")
    if content_type != "application/json":
        raise EventInvalid(f"{prefix}datacontenttype: must be application/json")
    try:
        return _PersonData.model_validate(raw.get("data"))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        # Never the value: it may be a BSN.
        message = str(error["msg"]).removeprefix("Value error, ")
        raise EventInvalid(f"{prefix}data{'.' + where if where else ''}: {message}") from exc


# --- storage ------------------------------------------------------------------------------------


class BrpEventRow(Base):
    """The inbox: one row per (source, id), kept reduced unless the person has provisions."""

    __tablename__ = "brp_events"

    source: Mapped[str] = mapped_column(String(_MAX_SOURCE), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(_MAX_ID), primary_key=True)
    type: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    time: Mapped[datetime | None]
    received_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(40))
    dossier_id: Mapped[str | None] = mapped_column(String(36))
    # Only for a client in the register (a task may need it); None for everyone else.
    data: Mapped[dict[str, Any] | None]


class BrpEventCountRow(Base):
    """How many events of a type had an outcome (irrelevant events are only counted)."""

    __tablename__ = "brp_event_counts"

    type: Mapped[str] = mapped_column(String(200), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int]


class FeedCursorRow(Base):
    """Pull: the id of the last feed event stored, per feed (moved with the events it covers)."""

    __tablename__ = "brp_feed_cursors"

    feed_url: Mapped[str] = mapped_column(String(500), primary_key=True)
    last_event_id: Mapped[str] = mapped_column(String(_MAX_ID))
    updated_at: Mapped[datetime]


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
    """What one batch needs from the database, loaded with a few queries."""

    movable: dict[str, bool]
    open_dossiers: dict[str, list[DossierRow]]
    departing_oins: dict[str, str | None]


_IRRELEVANT = _Outcome("irrelevant")


class BrpEvents:
    """Stores and handles BRP events for one agent (push endpoint and feed reader call this)."""

    def __init__(self, service: AgentService) -> None:
        self._service = service
        self._settings = service.settings

    async def receive(
        self, events: Sequence[CloudEvent], *, cursor: tuple[str, str] | None = None
    ) -> HandlingReport:
        """Store the new events and handle them in one transaction; duplicates are skipped.

        ``cursor`` (feed url, last event id) is stored in the same transaction (pull).
        """
        departing_oins = await self._departing_oins(events)
        for attempt in (1, 2):
            try:
                return await self._receive_once(events, departing_oins, cursor)
            except IntegrityError:
                # The same event arrived twice at once; the other transaction stored it first.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _receive_once(
        self,
        events: Sequence[CloudEvent],
        departing_oins: dict[str, str | None],
        cursor: tuple[str, str] | None,
    ) -> HandlingReport:
        report = HandlingReport(received=len(events))
        now = self._service.clock.now()
        async with self._service.database.transaction() as session:
            fresh = await _new_events(session, events)
            report.duplicates = len(events) - len(fresh)
            batch = await self._load(session, fresh, departing_oins)
            counts: dict[tuple[str, str], int] = {}
            for event in fresh:
                outcome = await self._handle_safely(session, event, batch, now)
                session.add(_row(event, outcome, now))
                counts[(event.type, outcome.name)] = counts.get((event.type, outcome.name), 0) + 1
                report.outcomes[outcome.name] = report.outcomes.get(outcome.name, 0) + 1
            await _count(session, counts)
            if cursor is not None:
                await _store_cursor(session, cursor, now)
        if any(name != "irrelevant" for name in report.outcomes):
            self._service.wake()
        _log.info(
            "brp_events_handled",
            extra={"received": report.received, "duplicates": report.duplicates},
        )
        return report

    async def _departing_oins(self, events: Iterable[CloudEvent]) -> dict[str, str | None]:
        """OINs of departing gemeenten to ask for a dossier (looked up before the transaction)."""
        if not self._settings.brp_dossier_requests:
            return {}
        codes = {
            previous for event in events if (previous := self._moved_in_from(event)) is not None
        }
        found: dict[str, str | None] = {}
        for code in sorted(codes):
            try:
                entry = await self._service.directory.gemeente(code, message_type="dossier-request")
                found[code] = entry.oin
            except (ParticipantUnknown, ParticipantNotEnrolled):
                found[code] = None
            except RegistryError as exc:
                raise DirectoryUnavailable(exc.detail) from exc
        return found

    def _moved_in_from(self, event: CloudEvent) -> str | None:
        data = event.data
        if event.kind not in ("buitengemeentelijk", "immigratie") or data is None:
            return None
        new, previous = data.gemeente_van_inschrijving, data.vorige_gemeente_van_inschrijving
        ours = self._settings.gemeentecode
        if new is None or previous is None or new.code != ours or previous.code == ours:
            return None
        return previous.code

    async def _load(
        self,
        session: AsyncSession,
        events: Sequence[CloudEvent],
        departing_oins: dict[str, str | None],
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
        return _Batch(movable, open_dossiers, departing_oins)

    async def _handle_safely(
        self, session: AsyncSession, event: CloudEvent, batch: _Batch, now: datetime
    ) -> _Outcome:
        if event.data is None or event.kind is None:
            return _IRRELEVANT
        try:
            # Each handler checks before it changes anything, so a refusal leaves no half change.
            return await self._handle(session, event, event.data, batch, now)
        except AgentError as exc:
            _log.warning("brp_event_not_handled", extra={"event_id": event.id, "code": exc.code})
            return _Outcome(f"refused:{exc.code}"[:40])

    async def _handle(
        self,
        session: AsyncSession,
        event: CloudEvent,
        data: _PersonData,
        batch: _Batch,
        now: datetime,
    ) -> _Outcome:
        bsn = data.burgerservicenummer
        if event.kind in ("cancelled", "corrected", "died"):
            return await self._stop(session, event, data, batch.open_dossiers.get(bsn, []), now)
        moved_in_from = self._moved_in_from(event)
        if moved_in_from is not None:
            return await self._request(session, event, data, moved_in_from, batch, now)
        if bsn not in batch.movable:
            return _IRRELEVANT
        if event.kind == "binnengemeentelijk":
            return await self._update_address(session, event, data)
        if event.kind == "emigratie":
            return await self._emigration(session, event, batch.open_dossiers.get(bsn, []), now)
        if event.kind == "buitengemeentelijk" and batch.movable[bsn]:
            return await self._start(session, event, data, batch, now)
        return _IRRELEVANT

    async def _start(
        self,
        session: AsyncSession,
        event: CloudEvent,
        data: _PersonData,
        batch: _Batch,
        now: datetime,
    ) -> _Outcome:
        previous = data.vorige_gemeente_van_inschrijving
        if previous is not None and previous.code != self._settings.gemeentecode:
            return _IRRELEVANT
        address = _address(data)
        move_date = None if data.verblijfplaats is None else data.verblijfplaats.start
        if address is None or move_date is None:
            description = (
                f"BRP event {event.id} reports a move to another gemeente without a usable "
                "address or date: start the handover by hand (POST /v1/dossiers)."
            )
            await open_task(session, kind="manual-check", description=description, now=now)
            return _Outcome("task-opened", keep=True)
        if address.gemeentecode == self._settings.gemeentecode:
            return _IRRELEVANT
        open_dossiers = batch.open_dossiers.setdefault(data.burgerservicenummer, [])
        if any(d.side == "departing" for d in open_dossiers):
            return _Outcome("dossier-already-open")
        # A move announced for a future date starts now, with the move date in the future.
        start = DossierStart(bsn=data.burgerservicenummer, move_date=move_date, new_address=address)
        dossier = await self._service.start_dossier_in(
            session, start, cause=f"BRP event {event.id} ({event.type})", now=now
        )
        open_dossiers.append(dossier)
        return _Outcome("dossier-started", keep=True, dossier_id=dossier.id)

    async def _update_address(
        self, session: AsyncSession, event: CloudEvent, data: _PersonData
    ) -> _Outcome:
        address = _address(data, default_gemeentecode=self._settings.gemeentecode)
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
        self, session: AsyncSession, event: CloudEvent, dossiers: list[DossierRow], now: datetime
    ) -> _Outcome:
        departing = [d for d in dossiers if d.side == "departing"]
        for dossier in departing:
            await self._service.cancel_dossier_in(
                session, dossier, reason="move-corrected", cause=f"BRP event {event.id}", now=now
            )
        description = (
            f"BRP event {event.id}: the client emigrated. No handover; end the provision "
            "and arrange how the device comes back."
        )
        await open_task(session, kind="emigration", description=description, now=now)
        return _Outcome("emigration-flagged", keep=True)

    async def _stop(
        self,
        session: AsyncSession,
        event: CloudEvent,
        data: _PersonData,
        dossiers: list[DossierRow],
        now: datetime,
    ) -> _Outcome:
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
            await self._service.cancel_dossier_in(
                session, dossier, reason=reason, cause=f"BRP event {event.id} ({reason})", now=now
            )
            dossiers.remove(dossier)
            stopped = dossier.id
        if stopped is None:
            return _IRRELEVANT
        return _Outcome("dossier-stopped", dossier_id=stopped)

    async def _request(
        self,
        session: AsyncSession,
        event: CloudEvent,
        data: _PersonData,
        previous: str,
        batch: _Batch,
        now: datetime,
    ) -> _Outcome:
        oin = batch.departing_oins.get(previous)
        if oin is None:
            return _Outcome("departing-not-connected")
        if batch.open_dossiers.get(data.burgerservicenummer):
            return _Outcome("dossier-already-open")
        move_date = None if data.verblijfplaats is None else data.verblijfplaats.start
        request = DossierRequest(
            bsn=data.burgerservicenummer,
            move_date=move_date or now.date(),
            previous_gemeentecode=previous,
            new_address=_address(data),
        )
        request_id = await self._service.send_dossier_request_in(
            session, request, departing_oin=oin, now=now
        )
        return _Outcome("dossier-requested", dossier_id=request_id)


def _can_cancel(dossier: DossierRow) -> bool:
    table = DEPARTING_TRANSITIONS if dossier.side == "departing" else RECEIVING_TRANSITIONS
    return "cancelled" in table.get(dossier.state, frozenset())


def _address(data: _PersonData, *, default_gemeentecode: str | None = None) -> Address | None:
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
        subject=event.subject if event.subject in _SUBJECTS else None,
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


async def on_dossier_request(
    service: AgentService,
    session: AsyncSession,
    message: Message,
    request: DossierRequest,
    now: datetime,
) -> None:
    """Departing side: a gemeente someone moved to asks for the dossier of a move we missed."""
    if request.previous_gemeentecode != service.settings.gemeentecode:
        raise MessageNotHandled("the client did not live in this gemeente")
    if request.new_address is None:
        raise MessageNotHandled("a dossier-request needs newAddress to build the offer")
    open_dossier = await session.scalar(
        select(DossierRow.id)
        .where(DossierRow.client_bsn == request.bsn, DossierRow.side == "departing")
        .where(DossierRow.state.not_in(("completed", "cancelled", "failed")))
        .limit(1)
    )
    if open_dossier is not None:
        return
    movable = await session.scalar(
        select(DeviceRow.id)
        .join(ClientRow, DeviceRow.client_id == ClientRow.id)
        .where(ClientRow.bsn == request.bsn, DeviceRow.movable.is_(True))
        .limit(1)
    )
    if movable is None:
        # No provision with a movable device: nothing is started (the receipt still answers).
        return
    start = DossierStart(
        bsn=request.bsn, move_date=request.move_date, new_address=request.new_address
    )
    cause = f"dossier-request {message.message_id} received"
    dossier = await service.start_dossier_in(session, start, cause=cause, now=now)
    dossier.partner_oin = message.sender.oin

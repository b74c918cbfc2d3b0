"""Registry storage: resolution queries and audited, versioned writes.

Every write runs in one transaction together with its audit event. Entries and keys are never
updated in place; a change inserts a new version.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import secrets
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Engine,
    Row,
    Select,
    and_,
    bindparam,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from protocol.clock import Clock
from protocol.errors import InvalidKey
from protocol.identifiers import is_valid_rsin, oin_for_kvk
from protocol.jwk import public_jwk
from protocol.roles import PARTICIPANT_ROLES, ParticipantKind
from protocol.signing import KeyValidity
from registry._db import (
    AuditEvent,
    Contract,
    EnrolmentCode,
    EntryVersion,
    KeyVersion,
    ParticipantRow,
    SignedRequest,
    session_factory,
)
from registry._migrations import MIGRATIONS
from registry.errors import (
    EnrolmentCodeInvalid,
    InvalidOin,
    InvalidPublicKey,
    InvalidRegistryInput,
    InvalidValidityWindow,
    ParticipantExists,
    ParticipantNotEnrolled,
    ParticipantUnknown,
    PrivateKeyMaterial,
    RegistryKeyUnknown,
    RegistryNotReady,
    RequestReplayed,
    UnknownGemeentecode,
)

__all__ = [
    "AuditRecord",
    "ContractMatch",
    "EntryChange",
    "KeyInput",
    "KeyRecord",
    "ParticipantRecord",
    "RegistryStore",
    "hash_secret",
    "iso_prefix_matches",
    "validate_key_input",
]

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MAX_KEYS_PER_REQUEST = 10
_T = TypeVar("_T")


@dataclass(frozen=True)
class KeyInput:
    """A public key to publish, with its optional validity window."""

    jwk: dict[str, Any]
    not_before: datetime | None = None
    not_after: datetime | None = None


@dataclass(frozen=True)
class KeyRecord(KeyValidity):
    """The newest version of one published key."""

    kid: str
    jwk: dict[str, Any]
    not_before: datetime | None
    not_after: datetime | None
    revoked_at: datetime | None
    revocation_reason: str | None

    def published_at(self, moment: datetime) -> bool:
        """Still usable at or after ``moment``: announced keys of a rotation are included."""
        if self.revoked_at is not None and self.revoked_at <= moment:
            return False
        return self.not_after is None or moment < self.not_after


@dataclass(frozen=True)
class ParticipantRecord:
    """A participant with its current entry and the newest version of each of its keys."""

    kind: str
    name: str
    oin: str | None
    gemeentecode: str | None
    kvk_number: str | None
    endpoint: str | None
    protocol_versions: tuple[str, ...]
    message_types: tuple[str, ...]
    keys: tuple[KeyRecord, ...]
    roles: tuple[str, ...] = ()
    gemeentecodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContractMatch:
    """A contracted supplier for one ISO code on one date."""

    contract_id: str
    oin: str
    name: str
    preference: int
    iso_prefix: str
    valid_from: date
    valid_until: date | None


@dataclass(frozen=True)
class EntryChange:
    """A participant's own change to its entry, already authenticated."""

    endpoint: str | None = None
    protocol_versions: tuple[str, ...] | None = None
    message_types: tuple[str, ...] | None = None
    add_keys: tuple[KeyInput, ...] = ()
    retire_keys: dict[str, datetime] = field(default_factory=dict)
    revoke_keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """One audit event as the operator reads it."""

    recorded_at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


def iso_prefix_matches(prefix: str, iso_code: str) -> bool:
    """ISO 9999 prefix match on whole groups: ``12 22`` covers ``12 22 03``, not ``12 2``."""
    return iso_code == prefix or iso_code.startswith(prefix + " ")


def hash_secret(secret: str) -> str:
    """SHA-256 (hex) under which a one-time secret is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _gemeente_rows() -> list[tuple[str, str]]:
    text = resources.files("registry").joinpath("data", "gemeenten.csv").read_text("utf-8")
    return [(row["code"], row["name"]) for row in csv.DictReader(text.splitlines())]


def _check_window(not_before: Any, not_after: Any) -> None:
    if not_before is not None and not_after is not None and not_after <= not_before:
        raise InvalidValidityWindow("the window ends before (or when) it starts")


def validate_key_input(key: KeyInput) -> dict[str, Any]:
    """The published form of a submitted key; refuses private members and non-signing keys."""
    leaked = _PRIVATE_MEMBERS & set(key.jwk)
    if leaked:
        raise PrivateKeyMaterial(f"private members {sorted(leaked)} must never be sent")
    if key.jwk.get("use", "sig") != "sig":
        raise InvalidPublicKey("only signing keys (use 'sig') are published yet")
    try:
        published = public_jwk(key.jwk)
    except InvalidKey as exc:
        raise InvalidPublicKey(exc.detail) from exc
    _check_window(key.not_before, key.not_after)
    published["use"] = "sig"
    return published


def _check_gemeente_oin(oin: str) -> None:
    # Logius OIN scheme for gemeenten: 00000001 + RSIN + 000.
    if not (oin.startswith("00000001") and oin.endswith("000") and is_valid_rsin(oin[8:17])):
        raise InvalidOin("a gemeente OIN is 00000001, a valid RSIN and 000")


def _latest_keys(rows: Iterable[KeyVersion]) -> tuple[KeyRecord, ...]:
    newest: dict[str, KeyVersion] = {}
    for row in rows:
        current = newest.get(row.kid)
        if current is None or row.id > current.id:
            newest[row.kid] = row
    return tuple(
        KeyRecord(
            kid=row.kid,
            jwk=row.jwk,
            not_before=row.not_before,
            not_after=row.not_after,
            revoked_at=row.revoked_at,
            revocation_reason=row.revocation_reason,
        )
        for row in sorted(newest.values(), key=lambda item: item.id)
    )


# Resolution reads: one Core statement per lookup, built once. The
# newest entry version and the newest version of each key come from correlated subqueries on
# the (participant_id, id) and (participant_id, kid, id) indexes, so a lookup is one round trip.
_PARTICIPANTS = ParticipantRow.__table__
_ENTRIES = EntryVersion.__table__
_KEYS = KeyVersion.__table__
_CONTRACTS = Contract.__table__
_SUPPLIERS = _PARTICIPANTS.alias("suppliers")


def _participant_statement(condition: ColumnElement[bool]) -> Select[Any]:
    entries = _ENTRIES.alias("older_entries")
    keys = _KEYS.alias("older_keys")
    newest_entry = (
        select(func.max(entries.c.id))
        .where(entries.c.participant_id == _PARTICIPANTS.c.id)
        .scalar_subquery()
    )
    newest_keys = (
        select(func.max(keys.c.id))
        .where(keys.c.participant_id == _PARTICIPANTS.c.id)
        .group_by(keys.c.kid)
    )
    joined = _PARTICIPANTS.outerjoin(_ENTRIES, _ENTRIES.c.id == newest_entry).outerjoin(
        _KEYS, and_(_ENTRIES.c.id.is_not(None), _KEYS.c.id.in_(newest_keys))
    )
    return (
        select(
            _PARTICIPANTS.c.kind,
            _PARTICIPANTS.c.name,
            _PARTICIPANTS.c.oin,
            _PARTICIPANTS.c.gemeentecode,
            _PARTICIPANTS.c.kvk_number,
            _PARTICIPANTS.c.roles,
            _PARTICIPANTS.c.gemeentecodes,
            _ENTRIES.c.endpoint,
            _ENTRIES.c.protocol_versions,
            _ENTRIES.c.message_types,
            _KEYS.c.kid,
            _KEYS.c.jwk,
            _KEYS.c.not_before,
            _KEYS.c.not_after,
            _KEYS.c.revoked_at,
            _KEYS.c.revocation_reason,
        )
        .select_from(joined)
        .where(condition)
        .order_by(_KEYS.c.id)
    )


_SERVED = _PARTICIPANTS.alias("served")
# By gemeentecode: the participant whose agent serves the code (itself, or a regional service).
_GEMEENTE_LOOKUP = _participant_statement(
    _PARTICIPANTS.c.id
    == select(func.coalesce(_SERVED.c.served_by_id, _SERVED.c.id))
    .where(_SERVED.c.gemeentecode == bindparam("code"))
    .scalar_subquery()
)
_PARTICIPANT_LOOKUP = _participant_statement(_PARTICIPANTS.c.oin == bindparam("oin"))
# One row per contract that started on or before the date; a gemeente without any still gives
# one row (contract columns NULL), so "unknown gemeente" and "no contract" stay distinct.
_CONTRACT_LOOKUP = (
    select(
        _CONTRACTS.c.id,
        _CONTRACTS.c.iso_prefixes,
        _CONTRACTS.c.valid_from,
        _CONTRACTS.c.valid_until,
        _CONTRACTS.c.preference,
        _SUPPLIERS.c.oin,
        _SUPPLIERS.c.name,
    )
    .select_from(
        _PARTICIPANTS.outerjoin(
            _CONTRACTS,
            and_(
                _CONTRACTS.c.gemeente_id == _PARTICIPANTS.c.id,
                _CONTRACTS.c.valid_from <= bindparam("on"),
            ),
        ).outerjoin(_SUPPLIERS, _SUPPLIERS.c.id == _CONTRACTS.c.supplier_id)
    )
    .where(_PARTICIPANTS.c.gemeentecode == bindparam("code"))
)


def _roles(kind: str, roles: Sequence[str] | None) -> tuple[str, ...]:
    if roles is not None:
        return tuple(roles)
    default: ParticipantKind = "gemeente" if kind == "gemeente" else "supplier"
    return PARTICIPANT_ROLES[default]


def _record_from_rows(rows: Sequence[Row[Any]]) -> ParticipantRecord:
    first = rows[0]
    return ParticipantRecord(
        kind=first.kind,
        name=first.name,
        oin=first.oin,
        gemeentecode=first.gemeentecode,
        kvk_number=first.kvk_number,
        endpoint=first.endpoint,
        protocol_versions=tuple(first.protocol_versions or ()),
        message_types=tuple(first.message_types or ()),
        roles=_roles(first.kind, first.roles),
        gemeentecodes=tuple(first.gemeentecodes or ()),
        keys=tuple(
            KeyRecord(
                kid=row.kid,
                jwk=row.jwk,
                not_before=row.not_before,
                not_after=row.not_after,
                revoked_at=row.revoked_at,
                revocation_reason=row.revocation_reason,
            )
            for row in rows
            if row.kid is not None
        ),
    )


def _match_row(row: Row[Any], iso_code: str, on: date) -> ContractMatch | None:
    if row.id is None or row.oin is None:
        return None
    if row.valid_until is not None and on > row.valid_until:
        return None
    prefixes = [p for p in row.iso_prefixes if iso_prefix_matches(p, iso_code)]
    if not prefixes:
        return None
    return ContractMatch(
        contract_id=row.id,
        oin=row.oin,
        name=row.name,
        preference=row.preference,
        iso_prefix=max(prefixes, key=len),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )


class _AsyncReader:
    """Lookups on a pooled connection of the async engine (PostgreSQL, in-memory SQLite)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def rows(self, statement: Select[Any], parameters: dict[str, Any]) -> list[Row[Any]]:
        async with self._engine.connect() as connection:
            return list((await connection.execute(statement, parameters)).all())

    async def close(self) -> None:
        """The async engine is disposed by the store."""


def _read_only(connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    connection.execute("PRAGMA query_only = ON")


class _SqliteFileReader:
    """Lookups on read-only sqlite3 connections, one worker-thread call per lookup.

    aiosqlite costs one thread hand-off per cursor step (about five per query, plus the
    rollback on return to the pool); running the whole statement in one ``to_thread`` call
    makes a lookup about as cheap as the query itself (docs/performance.md, "Registry").
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine: Engine = create_sync_engine(engine.url.set(drivername="sqlite"))
        event.listen(self._engine, "connect", _read_only)

    def _rows(self, statement: Select[Any], parameters: dict[str, Any]) -> list[Row[Any]]:
        with self._engine.connect() as connection:
            return list(connection.execute(statement, parameters).all())

    async def rows(self, statement: Select[Any], parameters: dict[str, Any]) -> list[Row[Any]]:
        return await asyncio.to_thread(self._rows, statement, parameters)

    async def close(self) -> None:
        self._engine.dispose()


def _reader(engine: AsyncEngine) -> _AsyncReader | _SqliteFileReader:
    url = engine.url
    in_memory = url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    if url.get_backend_name() == "sqlite" and not in_memory:
        return _SqliteFileReader(engine)
    return _AsyncReader(engine)


class RegistryStore:
    """All reads and writes of the registry database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock,
        enrolment_code_ttl: timedelta,
    ) -> None:
        self._engine = engine
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._reader = _reader(engine)
        self._clock = clock
        self._enrolment_code_ttl = enrolment_code_ttl

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions.begin() as session:
            yield session

    async def start(self) -> None:
        """Create the tables and seed all gemeenten on the first start."""
        await MIGRATIONS.upgrade(self._engine)
        if isinstance(self._reader, _SqliteFileReader):
            # WAL: lookups on the reader's connections never wait for a writer, nor block one.
            async with self._engine.connect() as connection:
                await connection.execute(text("PRAGMA journal_mode=WAL"))
        async with self._sessions.begin() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(ParticipantRow)
                .where(ParticipantRow.kind == "gemeente")
            )
            if count:
                return
            now = self._clock.now()
            session.add_all(
                ParticipantRow(
                    kind="gemeente",
                    name=name,
                    gemeentecode=code,
                    created_at=now,
                    roles=list(PARTICIPANT_ROLES["gemeente"]),
                    gemeentecodes=[code],
                )
                for code, name in _gemeente_rows()
            )
            self._audit(session, "system", "gemeenten_seeded", "gemeenten", {"source": "CBS"})

    async def close(self) -> None:
        await self._reader.close()
        await self._engine.dispose()

    async def ping(self) -> None:
        """Raise ``RegistryNotReady`` unless the database answers a trivial query."""
        try:
            async with self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise RegistryNotReady("the database does not answer") from exc

    # Reads.

    async def gemeente(self, gemeentecode: str) -> ParticipantRecord:
        rows = await self._reader.rows(_GEMEENTE_LOOKUP, {"code": gemeentecode})
        if not rows:
            raise ParticipantUnknown(f"no gemeente with code {gemeentecode}")
        return _record_from_rows(rows)

    async def participant(self, oin: str) -> ParticipantRecord:
        rows = await self._reader.rows(_PARTICIPANT_LOOKUP, {"oin": oin})
        if not rows:
            raise ParticipantUnknown(f"no participant with OIN {oin}")
        return _record_from_rows(rows)

    async def gemeenten(self) -> list[ParticipantRow]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ParticipantRow)
                .where(ParticipantRow.kind == "gemeente")
                .order_by(ParticipantRow.gemeentecode)
            )
            return list(rows)

    async def keys(self, oin: str) -> tuple[KeyRecord, ...]:
        """Newest version of every key the participant ever published, revoked ones too."""
        async with self._sessions() as session:
            row = await self._by_oin(session, oin)
            return await self._keys(session, row.id)

    async def contracted_suppliers(
        self, gemeentecode: str, iso_code: str, on: date
    ) -> list[ContractMatch]:
        rows = await self._reader.rows(_CONTRACT_LOOKUP, {"code": gemeentecode, "on": on})
        if not rows:
            raise ParticipantUnknown(f"no gemeente with code {gemeentecode}")
        matches = [match for row in rows if (match := _match_row(row, iso_code, on)) is not None]
        return sorted(matches, key=lambda m: (m.preference, -len(m.iso_prefix), m.name))

    async def audit_events(self, *, limit: int = 100) -> list[AuditRecord]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
            )
            return [
                AuditRecord(row.recorded_at, row.actor, row.action, row.subject, row.detail)
                for row in rows
            ]

    # Operator writes.

    async def issue_enrolment_code(
        self, *, gemeentecode: str | None, supplier_oin: str | None
    ) -> tuple[str, datetime]:
        async with self._writing() as session:
            if gemeentecode is not None:
                row = await session.scalar(
                    select(ParticipantRow).where(ParticipantRow.gemeentecode == gemeentecode)
                )
                if row is None:
                    raise UnknownGemeentecode(f"{gemeentecode} is not a CBS gemeentecode")
            else:
                assert supplier_oin is not None
                row = await self._by_oin(session, supplier_oin)
            code = secrets.token_urlsafe(24)
            now = self._clock.now()
            expires_at = now + self._enrolment_code_ttl
            session.add(
                EnrolmentCode(
                    code_hash=hash_secret(code),
                    participant_id=row.id,
                    expires_at=expires_at,
                    created_at=now,
                )
            )
            subject = row.gemeentecode or row.oin or ""
            self._audit(session, "operator", "enrolment_code_issued", subject, {})
            return code, expires_at

    async def onboard_supplier(self, *, oin: str, kvk_number: str, name: str) -> ParticipantRecord:
        if oin != oin_for_kvk(kvk_number):
            raise InvalidOin("a supplier OIN is 00000003, its KvK number and 0000")
        async with self._writing() as session:
            if await session.scalar(select(ParticipantRow).where(ParticipantRow.oin == oin)):
                raise ParticipantExists(f"participant {oin} already exists")
            row = ParticipantRow(
                kind="supplier",
                name=name,
                oin=oin,
                kvk_number=kvk_number,
                created_at=self._clock.now(),
                roles=list(PARTICIPANT_ROLES["supplier"]),
                gemeentecodes=[],
            )
            session.add(row)
            await session.flush()
            self._audit(session, "operator", "supplier_onboarded", oin, {"name": name})
            return await self._record(session, row)

    async def add_contract(
        self,
        *,
        gemeentecode: str,
        supplier_oin: str,
        iso_prefixes: Sequence[str],
        valid_from: date,
        valid_until: date | None,
        preference: int,
    ) -> str:
        if valid_until is not None and valid_until < valid_from:
            raise InvalidValidityWindow("the contract ends before it starts")
        async with self._writing() as session:
            gemeente = await session.scalar(
                select(ParticipantRow).where(ParticipantRow.gemeentecode == gemeentecode)
            )
            if gemeente is None:
                raise UnknownGemeentecode(f"{gemeentecode} is not a CBS gemeentecode")
            supplier = await self._by_oin(session, supplier_oin)
            if supplier.kind != "supplier":
                raise InvalidRegistryInput(f"{supplier_oin} is not a supplier")
            contract_id = str(uuid.uuid4())
            session.add(
                Contract(
                    id=contract_id,
                    gemeente_id=gemeente.id,
                    supplier_id=supplier.id,
                    iso_prefixes=sorted(set(iso_prefixes)),
                    valid_from=valid_from,
                    valid_until=valid_until,
                    preference=preference,
                    recorded_at=self._clock.now(),
                )
            )
            detail = {
                "contractId": contract_id,
                "supplierOin": supplier_oin,
                "isoPrefixes": sorted(set(iso_prefixes)),
                "validFrom": valid_from.isoformat(),
                "validUntil": valid_until.isoformat() if valid_until else None,
                "preference": preference,
            }
            self._audit(session, "operator", "contract_added", gemeentecode, detail)
            return contract_id

    async def assign_gemeenten(
        self, *, oin: str, gemeentecodes: Sequence[str]
    ) -> ParticipantRecord:
        """Let a gemeente's agent serve exactly these gemeentecodes (a regional service).

        A gemeentecode is served by one agent: a code taken from another participant is removed
        from its list; a code this participant gives up returns to its own gemeente.
        """
        wanted = sorted(set(gemeentecodes))
        async with self._writing() as session:
            row = await self._by_oin(session, oin)
            if row.kind != "gemeente":
                raise InvalidRegistryInput(
                    f"{oin} is not a gemeente; a supplier serves no gemeente"
                )
            gemeenten = {
                g.gemeentecode: g
                for g in await session.scalars(
                    select(ParticipantRow).where(ParticipantRow.kind == "gemeente")
                )
            }
            if row.gemeentecode not in wanted:
                raise InvalidRegistryInput("a gemeente's agent always serves its own gemeentecode")
            unknown = [code for code in wanted if code not in gemeenten]
            if unknown:
                raise UnknownGemeentecode(f"{', '.join(unknown)} is not a CBS gemeentecode")
            by_id = {g.id: g for g in gemeenten.values()}
            for code in sorted(set(row.gemeentecodes or ()) - set(wanted)):
                given_up = gemeenten[code]
                given_up.served_by_id = None
                given_up.gemeentecodes = sorted({*(given_up.gemeentecodes or ()), code})
            for code in wanted:
                gemeente = gemeenten[code]
                server = by_id.get(gemeente.served_by_id or gemeente.id)
                if server is not None and server.id != row.id:
                    server.gemeentecodes = [c for c in server.gemeentecodes or () if c != code]
                gemeente.served_by_id = None if gemeente.id == row.id else row.id
            row.gemeentecodes = wanted
            self._audit(session, "operator", "gemeenten_assigned", oin, {"gemeentecodes": wanted})
            await session.flush()
            return await self._record(session, row)

    async def revoke_key(
        self, *, oin: str, kid: str, reason: str, at: datetime | None, actor: str = "operator"
    ) -> KeyRecord:
        async with self._writing() as session:
            row = await self._by_oin(session, oin)
            revoked = self._revoke(
                session, await self._keys(session, row.id), row.id, kid, reason, at
            )
            detail = {"kid": kid, "reason": reason, "revokedAt": str(revoked.revoked_at)}
            self._audit(session, actor, "key_revoked", oin, detail)
            return revoked

    # Participant writes.

    async def enrol(
        self,
        *,
        code: str,
        oin: str,
        endpoint: str,
        protocol_versions: Sequence[str],
        message_types: Sequence[str],
        keys: Sequence[KeyInput],
    ) -> ParticipantRecord:
        published = self._validated_keys(keys, minimum=1)
        now = self._clock.now()
        async with self._writing() as session:
            row = await self._redeem(session, code, now)
            await self._bind_oin(session, row, oin)
            session.add(
                EntryVersion(
                    participant_id=row.id,
                    endpoint=endpoint,
                    protocol_versions=list(protocol_versions),
                    message_types=list(message_types),
                    recorded_at=now,
                )
            )
            existing = {key.kid for key in await self._keys(session, row.id)}
            self._add_keys(session, row.id, [k for k in published if k[0]["kid"] not in existing])
            detail = {"endpoint": endpoint, "kids": [k[0]["kid"] for k in published]}
            self._audit(session, f"participant:{oin}", "enrolled", oin, detail)
            await session.flush()
            return await self._record(session, row)

    async def current_keys(self, oin: str) -> tuple[KeyRecord, ...]:
        """Keys of an enrolled participant that are valid now (for checking signed changes)."""
        now = self._clock.now()
        async with self._sessions() as session:
            row = await self._by_oin(session, oin)
            return tuple(key for key in await self._keys(session, row.id) if key.valid_at(now))

    async def apply_change(
        self, *, oin: str, request_id: str, requested_at: datetime, change: EntryChange
    ) -> ParticipantRecord:
        published = self._validated_keys(change.add_keys, minimum=0)
        now = self._clock.now()
        async with self._writing() as session:
            row = await self._by_oin(session, oin)
            session.add(
                SignedRequest(
                    request_id=request_id,
                    participant_id=row.id,
                    requested_at=requested_at,
                    recorded_at=now,
                )
            )
            try:
                await session.flush()
            except IntegrityError as exc:
                raise RequestReplayed("this request id was already processed") from exc
            await self._change_entry(session, row, change, now)
            await self._change_keys(session, row, change, published, now)
            detail = {
                "requestId": request_id,
                "endpoint": change.endpoint,
                "addedKids": [k[0]["kid"] for k in published],
                "retiredKids": sorted(change.retire_keys),
                "revokedKids": sorted(change.revoke_keys),
            }
            self._audit(session, f"participant:{oin}", "entry_changed", oin, detail)
            await session.flush()
            return await self._record(session, row)

    async def _change_entry(
        self, session: AsyncSession, row: ParticipantRow, change: EntryChange, now: datetime
    ) -> None:
        if (
            change.endpoint is None
            and change.protocol_versions is None
            and change.message_types is None
        ):
            return
        current = await self._entry(session, row.id)
        if current is None:
            raise ParticipantNotEnrolled(f"participant {row.oin} has not enrolled")
        session.add(
            EntryVersion(
                participant_id=row.id,
                endpoint=change.endpoint or current.endpoint,
                protocol_versions=list(change.protocol_versions or current.protocol_versions),
                message_types=list(change.message_types or current.message_types),
                recorded_at=now,
            )
        )

    async def _change_keys(
        self,
        session: AsyncSession,
        row: ParticipantRow,
        change: EntryChange,
        published: list[tuple[dict[str, Any], KeyInput]],
        now: datetime,
    ) -> None:
        keys = await self._keys(session, row.id)
        known = {key.kid: key for key in keys}
        for jwk, _key in published:
            if jwk["kid"] in known:
                raise InvalidRegistryInput(f"key {jwk['kid']} is already registered")
        self._add_keys(session, row.id, published)
        for kid, not_after in change.retire_keys.items():
            key = self._known(known, kid)
            _check_window(key.not_before, not_after)
            self._add_version(session, row.id, key, not_after=not_after)
        for kid, reason in change.revoke_keys.items():
            self._revoke(session, keys, row.id, kid, reason, None)
        await session.flush()
        remaining = await self._keys(session, row.id)
        if not any(key.valid_at(now) for key in remaining):
            raise InvalidRegistryInput("the change would leave no currently valid key")

    # Helpers.

    async def _by_oin(self, session: AsyncSession, oin: str) -> ParticipantRow:
        row = await session.scalar(select(ParticipantRow).where(ParticipantRow.oin == oin))
        if row is None:
            raise ParticipantUnknown(f"no participant with OIN {oin}")
        return row

    @staticmethod
    async def _entry(session: AsyncSession, participant_id: int) -> EntryVersion | None:
        result: EntryVersion | None = await session.scalar(
            select(EntryVersion)
            .where(EntryVersion.participant_id == participant_id)
            .order_by(EntryVersion.id.desc())
            .limit(1)
        )
        return result

    @staticmethod
    async def _keys(session: AsyncSession, participant_id: int) -> tuple[KeyRecord, ...]:
        rows = await session.scalars(
            select(KeyVersion).where(KeyVersion.participant_id == participant_id)
        )
        return _latest_keys(rows)

    async def _record(self, session: AsyncSession, row: ParticipantRow) -> ParticipantRecord:
        entry = await self._entry(session, row.id)
        keys = await self._keys(session, row.id) if entry is not None else ()
        return ParticipantRecord(
            kind=row.kind,
            name=row.name,
            oin=row.oin,
            gemeentecode=row.gemeentecode,
            kvk_number=row.kvk_number,
            endpoint=entry.endpoint if entry else None,
            protocol_versions=tuple(entry.protocol_versions) if entry else (),
            message_types=tuple(entry.message_types) if entry else (),
            keys=keys,
            roles=_roles(row.kind, row.roles),
            gemeentecodes=tuple(row.gemeentecodes or ()),
        )

    async def _redeem(self, session: AsyncSession, code: str, now: datetime) -> ParticipantRow:
        code_hash = hash_secret(code)
        # Conditional update: of two concurrent enrolments with one code only one succeeds.
        result = await session.execute(
            update(EnrolmentCode)
            .where(
                EnrolmentCode.code_hash == code_hash,
                EnrolmentCode.used_at.is_(None),
                EnrolmentCode.expires_at > now,
            )
            .values(used_at=now)
            .returning(EnrolmentCode.participant_id)
        )
        participant_id = result.scalar_one_or_none()
        if participant_id is None:
            raise EnrolmentCodeInvalid("the enrolment code is unknown, used or expired")
        row = await session.get(ParticipantRow, participant_id)
        assert row is not None
        return row

    @staticmethod
    async def _bind_oin(session: AsyncSession, row: ParticipantRow, oin: str) -> None:
        if row.kind == "gemeente":
            _check_gemeente_oin(oin)
        if row.oin is not None:
            if row.oin != oin:
                raise InvalidOin("the code was issued for a participant with another OIN")
            return
        other = await session.scalar(select(ParticipantRow.id).where(ParticipantRow.oin == oin))
        if other is not None:
            raise ParticipantExists(f"OIN {oin} belongs to another participant")
        row.oin = oin

    @staticmethod
    def _validated_keys(
        keys: Sequence[KeyInput], *, minimum: int
    ) -> list[tuple[dict[str, Any], KeyInput]]:
        if not minimum <= len(keys) <= _MAX_KEYS_PER_REQUEST:
            raise InvalidRegistryInput(
                f"between {minimum} and {_MAX_KEYS_PER_REQUEST} keys are required"
            )
        published = [(validate_key_input(key), key) for key in keys]
        if len({jwk["kid"] for jwk, _ in published}) != len(published):
            raise InvalidRegistryInput("the same key is listed twice")
        return published

    def _add_keys(
        self,
        session: AsyncSession,
        participant_id: int,
        published: Sequence[tuple[dict[str, Any], KeyInput]],
    ) -> None:
        now = self._clock.now()
        session.add_all(
            KeyVersion(
                participant_id=participant_id,
                kid=jwk["kid"],
                key_use="sig",
                jwk=jwk,
                not_before=key.not_before,
                not_after=key.not_after,
                revoked_at=None,
                revocation_reason=None,
                recorded_at=now,
            )
            for jwk, key in published
        )

    def _add_version(
        self,
        session: AsyncSession,
        participant_id: int,
        key: KeyRecord,
        *,
        not_after: datetime | None = None,
        revoked_at: datetime | None = None,
        reason: str | None = None,
    ) -> KeyRecord:
        version = KeyRecord(
            kid=key.kid,
            jwk=key.jwk,
            not_before=key.not_before,
            not_after=not_after if not_after is not None else key.not_after,
            revoked_at=revoked_at if revoked_at is not None else key.revoked_at,
            revocation_reason=reason if reason is not None else key.revocation_reason,
        )
        session.add(
            KeyVersion(
                participant_id=participant_id,
                kid=version.kid,
                key_use="sig",
                jwk=version.jwk,
                not_before=version.not_before,
                not_after=version.not_after,
                revoked_at=version.revoked_at,
                revocation_reason=version.revocation_reason,
                recorded_at=self._clock.now(),
            )
        )
        return version

    def _revoke(
        self,
        session: AsyncSession,
        keys: Sequence[KeyRecord],
        participant_id: int,
        kid: str,
        reason: str,
        at: datetime | None,
    ) -> KeyRecord:
        key = self._known({key.kid: key for key in keys}, kid)
        moment = at or self._clock.now()
        if key.revoked_at is not None and key.revoked_at <= moment:
            return key  # an earlier revocation stands; revoking again changes nothing
        return self._add_version(session, participant_id, key, revoked_at=moment, reason=reason)

    @staticmethod
    def _known(keys: dict[str, KeyRecord], kid: str) -> KeyRecord:
        key = keys.get(kid)
        if key is None:
            raise RegistryKeyUnknown(f"no key with kid {kid}")
        return key

    def _audit(
        self, session: AsyncSession, actor: str, action: str, subject: str, detail: dict[str, Any]
    ) -> None:
        session.add(
            AuditEvent(
                recorded_at=self._clock.now(),
                actor=actor,
                action=action,
                subject=subject,
                detail=detail,
            )
        )

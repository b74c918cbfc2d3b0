"""Personal consent links: random tokens stored only as a hash, exchanged for a page session.

A token of 256 bits (``secrets``), bound to one dossier, expiring and revocable. Guessing
is rate-limited per client address and globally without locking out a valid link
(:class:`GuessLimiter`), and a valid and an invalid token cost the same
work: one lookup by hash, one constant-time comparison, one session row written (and, for an
invalid token, rolled back).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import secrets
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent.settings import ConsentSettings, hash_token
from agent.storage.database import Database
from agent.storage.tables import ConsentLinkRow, DossierRow, PageSessionRow
from protocol.clock import Clock

__all__ = [
    "LINK_PATH",
    "ConsentLinks",
    "GuessLimiter",
    "PageSession",
    "RedactLinkTokens",
    "access_log_config",
    "issue_link",
    "revoke_links",
]

# The link's path; the access log filter below removes whatever follows it.
LINK_PATH = "/link/"
_TOKEN_BYTES = 32
_WINDOW = timedelta(minutes=1)
_MAX_TRACKED_ADDRESSES = 10_000
# Compared against when no row matches, so both paths do one constant-time comparison.
_NO_MATCH = "0" * 64


@dataclass(frozen=True)
class PageSession:
    """A page session: the cookie value (only at creation), the form token and the dossier."""

    dossier_id: str
    csrf_token: str
    cookie_value: str = ""


async def issue_link(
    session: AsyncSession, *, dossier_id: str, now: datetime, valid_for: timedelta, purpose: str
) -> str:
    """Create a link inside the caller's transaction; return the token (never stored)."""
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    session.add(
        ConsentLinkRow(
            id=str(uuid.uuid4()),
            dossier_id=dossier_id,
            token_sha256=hash_token(token),
            purpose=purpose,
            created_at=now,
            expires_at=now + valid_for,
        )
    )
    return token


async def revoke_links(session: AsyncSession, *, dossier_id: str, now: datetime) -> int:
    """Revoke every link of a dossier inside the caller's transaction; the number revoked."""
    active = await session.scalar(
        select(func.count())
        .select_from(ConsentLinkRow)
        .where(ConsentLinkRow.dossier_id == dossier_id, ConsentLinkRow.revoked_at.is_(None))
    )
    await session.execute(
        update(ConsentLinkRow)
        .where(ConsentLinkRow.dossier_id == dossier_id, ConsentLinkRow.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(PageSessionRow).where(PageSessionRow.dossier_id == dossier_id).values(expires_at=now)
    )
    return int(active or 0)


class GuessLimiter:
    """Sliding one-minute windows of failed link attempts: per source and over all sources.

    A source is a client address (an IPv6 address counts by its /64, which one host holds
    whole). An attempt counts from the moment it is let through; a valid link forgives it
    (:meth:`forgive`), so only failures and attempts still in flight count. A source is refused
    after ``per_address`` of its own; when all sources together reach ``overall``, a source with
    any failure of its own in the window is refused too, but a source without one still gets
    its link checked: a valid link is never refused because of others' failures.
    """

    def __init__(self, *, per_address: int, overall: int) -> None:
        self._per_address = per_address
        self._overall = overall
        self._by_source: dict[str, deque[datetime]] = {}
        self._all: deque[datetime] = deque()

    def allow(self, address: str, now: datetime) -> bool:
        """Count one attempt from ``address``; False when it may not try now."""
        _expire(self._all, now)
        source = _source(address)
        attempts = self._by_source.get(source)
        if attempts is None:
            if len(self._by_source) >= _MAX_TRACKED_ADDRESSES:
                self._forget_quiet(now)
            attempts = self._by_source.setdefault(source, deque())
        _expire(attempts, now)
        if len(attempts) >= self._per_address:
            return False
        if attempts and len(self._all) >= self._overall:
            return False
        self._all.append(now)
        attempts.append(now)
        return True

    def forgive(self, address: str) -> None:
        """Take back the latest attempt of ``address``: its link was valid."""
        attempts = self._by_source.get(_source(address))
        if attempts:
            attempts.pop()
            if self._all:
                self._all.pop()

    def _forget_quiet(self, now: datetime) -> None:
        for source in list(self._by_source):
            _expire(self._by_source[source], now)
            if not self._by_source[source]:
                del self._by_source[source]
        if len(self._by_source) >= _MAX_TRACKED_ADDRESSES:
            # Under a spread-out attack the overall limit still holds; forget the oldest half.
            for source in list(self._by_source)[: _MAX_TRACKED_ADDRESSES // 2]:
                del self._by_source[source]


def _source(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _expire(attempts: deque[datetime], now: datetime) -> None:
    while attempts and now - attempts[0] >= _WINDOW:
        attempts.popleft()


class _Discard(Exception):
    """Rolls back the session row written for an invalid link."""


class ConsentLinks:
    """Exchanging a link for a page session, and reading a session back."""

    def __init__(self, *, database: Database, clock: Clock, settings: ConsentSettings) -> None:
        self._database = database
        self._clock = clock
        self._settings = settings
        self.limiter = GuessLimiter(
            per_address=settings.attempts_per_address, overall=settings.attempts_global
        )

    def allow_attempt(self, address: str) -> bool:
        """Count a link attempt from ``address`` (before any lookup)."""
        return self.limiter.allow(address, self._clock.now())

    def forgive_attempt(self, address: str) -> None:
        """The attempt of ``address`` opened a valid link: it does not count as a guess."""
        self.limiter.forgive(address)

    async def redeem(self, token: str) -> PageSession | None:
        """A new page session for a valid link; None for an unknown, expired or revoked one."""
        now = self._clock.now()
        presented = hash_token(token)
        cookie_value = secrets.token_urlsafe(_TOKEN_BYTES)
        csrf_token = secrets.token_hex(32)
        try:
            async with self._database.transaction() as session:
                row = await session.scalar(
                    select(ConsentLinkRow).where(ConsentLinkRow.token_sha256 == presented)
                )
                valid = _link_valid(row, presented, now)
                session.add(
                    PageSessionRow(
                        session_sha256=hash_token(cookie_value),
                        dossier_id=row.dossier_id if row is not None else None,
                        csrf_token=csrf_token,
                        created_at=now,
                        expires_at=now + timedelta(minutes=self._settings.session_minutes),
                    )
                )
                await session.flush()
                if not valid or row is None:
                    raise _Discard
                row.last_used_at = now
                return PageSession(row.dossier_id, csrf_token, cookie_value)
        except _Discard:
            return None

    async def session(self, cookie_value: str) -> PageSession | None:
        """The page session of a cookie value, unless it expired."""
        now = self._clock.now()
        async with self._database.reading() as session:
            row = await session.get(PageSessionRow, hash_token(cookie_value))
            if row is None or row.dossier_id is None or row.expires_at <= now:
                return None
            dossier = await session.get(DossierRow, row.dossier_id)
        if dossier is None:
            return None
        return PageSession(row.dossier_id, row.csrf_token)


def _link_valid(row: ConsentLinkRow | None, presented: str, now: datetime) -> bool:
    stored = row.token_sha256 if row is not None else _NO_MATCH
    same = hmac.compare_digest(stored, presented)
    return (
        same
        and row is not None
        and row.revoked_at is None
        and row.expires_at > now
        and row.dossier_id is not None
    )


_TOKEN_IN_PATH = re.compile(re.escape(LINK_PATH) + r"[^\s\"?]*")


class RedactLinkTokens(logging.Filter):
    """Removes link tokens from uvicorn's access log lines (and from any other record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(argument) for argument in record.args)
        record.msg = _redact(record.msg)
        return True


def _redact(value: Any) -> Any:
    if isinstance(value, str) and LINK_PATH in value:
        return _TOKEN_IN_PATH.sub(LINK_PATH + "[redacted]", value)
    return value


def access_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the token filter on the access log."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {
        **LOGGING_CONFIG,
        "filters": {"redact_link_tokens": {"()": RedactLinkTokens}},
        "handlers": {name: dict(handler) for name, handler in LOGGING_CONFIG["handlers"].items()},
    }
    config["handlers"]["access"]["filters"] = ["redact_link_tokens"]
    return config

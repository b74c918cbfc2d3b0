"""Werkbak sessions: a random cookie value kept only as a hash, its person, roles and CSRF token.

A sign-in under way is a *pending* session holding the OpenID Connect state, nonce and PKCE
verifier; a completed sign-in replaces it with a new session (a new cookie value, so a value
seen before sign-in is worth nothing after it), which keeps the provider's ID token as the hint
for signing out there. Sessions expire after ``werkbak.session_minutes``; signing out deletes
the row, and a sign-out at the provider under way is a pending session holding its ``state``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete

from agent.settings import WerkbakRole, hash_token
from agent.storage.database import Database
from agent.storage.tables import WerkbakSessionRow
from protocol.clock import Clock

__all__ = ["COOKIE", "PENDING_MINUTES", "Session", "Sessions"]

COOKIE = "werkbak-sessie"
# A person has this long at the provider before the sign-in must start again.
PENDING_MINUTES = 10


@dataclass(frozen=True)
class Session:
    """A werkbak session as a page sees it."""

    pending: bool
    user_name: str
    roles: tuple[WerkbakRole, ...]
    csrf_token: str
    sign_in: dict[str, Any]
    expires_at: datetime


class Sessions:
    """Reads and writes werkbak sessions."""

    def __init__(self, *, database: Database, clock: Clock, minutes: int) -> None:
        self._database = database
        self._clock = clock
        self._minutes = minutes

    async def start_sign_in(self, sign_in: dict[str, Any]) -> tuple[str, Session]:
        """A pending session holding ``sign_in`` (state, nonce, PKCE verifier); its cookie."""
        return await self._create(
            pending=True,
            user_name="",
            subject=None,
            roles=(),
            sign_in=sign_in,
            lifetime=timedelta(minutes=PENDING_MINUTES),
        )

    async def signed_in(
        self,
        previous: str | None,
        *,
        user_name: str,
        subject: str,
        roles: tuple[WerkbakRole, ...],
        at_provider: bool = False,
    ) -> tuple[str, Session]:
        """Replace the pending session (cookie ``previous``) by a signed-in one; its cookie.

        ``at_provider``: signed in at the identity provider, so signing out ends it there too
        (not for a demo sign-in).
        """
        if previous is not None:
            await self.end(previous)
        return await self._create(
            pending=False,
            user_name=user_name,
            subject=subject,
            roles=roles,
            sign_in={"at_provider": True} if at_provider else None,
            lifetime=timedelta(minutes=self._minutes),
        )

    async def _create(
        self,
        *,
        pending: bool,
        user_name: str,
        subject: str | None,
        roles: tuple[WerkbakRole, ...],
        sign_in: dict[str, Any] | None,
        lifetime: timedelta,
    ) -> tuple[str, Session]:
        cookie = secrets.token_urlsafe(32)
        now = self._clock.now()
        row = WerkbakSessionRow(
            session_sha256=hash_token(cookie),
            pending=pending,
            user_name=user_name,
            subject=subject,
            roles=list(roles),
            csrf_token=secrets.token_urlsafe(32),
            sign_in=sign_in,
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self._database.transaction() as session:
            # Expired sessions go when new ones come: the table holds live sessions only.
            await session.execute(
                delete(WerkbakSessionRow).where(WerkbakSessionRow.expires_at <= now)
            )
            session.add(row)
        return cookie, _session(row)

    async def find(self, cookie: str | None) -> Session | None:
        """The live session of a cookie value, or None (unknown or expired)."""
        if not cookie or len(cookie) > 100:
            return None
        async with self._database.reading() as session:
            row = await session.get(WerkbakSessionRow, hash_token(cookie))
            if row is None or row.expires_at <= self._clock.now():
                return None
            return _session(row)

    async def end(self, cookie: str) -> None:
        """Sign out: the session is gone, its cookie value worth nothing."""
        digest = hash_token(cookie)
        async with self._database.transaction() as session:
            await session.execute(
                delete(WerkbakSessionRow).where(WerkbakSessionRow.session_sha256 == digest)
            )


def _session(row: WerkbakSessionRow) -> Session:
    return Session(
        pending=row.pending,
        user_name=row.user_name or "",
        roles=tuple(row.roles),
        csrf_token=row.csrf_token,
        sign_in=dict(row.sign_in or {}),
        expires_at=row.expires_at,
    )

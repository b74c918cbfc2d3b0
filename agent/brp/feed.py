"""Pull: read the BRP feed of unread events in order, with a persisted cursor.

The BRP API Gebeurtenissen work lets a subscriber read its unread events in publication order
(``cursor``: the id of the last event received; ``limiet``: how many). The cursor is stored in
the same transaction as the events of the page it ends, so a restart neither skips nor repeats.
When the feed is down the reader backs off (doubling, capped) and never crashes its job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from agent.brp.events import CloudEvent, parse_event
from agent.brp.handling import BrpEvents
from agent.core.context import AgentContext
from agent.core.hooks import Hooks
from agent.errors import AgentError, EventInvalid
from agent.storage.tables import FeedCursorRow
from protocol.errors import ProtocolError
from protocol.strict_json import read_json

__all__ = ["FeedReader", "FeedReport"]

_log = logging.getLogger("agent.brp")
_BASE_DELAY = timedelta(seconds=5)
_MAX_DELAY = timedelta(minutes=15)


@dataclass
class FeedReport:
    """What one read of the feed did."""

    pages: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    failed: bool = False


class _FeedUnavailable(Exception):
    """The feed did not answer with a page of events."""


class FeedReader:
    """Reads pages of unread events until the feed is empty; stores each page with the cursor."""

    def __init__(
        self, agent: AgentContext, *, events: BrpEvents, http: httpx.AsyncClient, url: str
    ) -> None:
        self._agent = agent
        self._events = events
        self._http = http
        self._url = url
        self._page_size = agent.settings.brp_feed_page_size
        self._failures = 0
        self._retry_at: datetime | None = None

    def register(self, hooks: Hooks, *, seconds: float) -> None:
        """Read the feed every ``seconds`` while the scheduler runs."""
        hooks.every(seconds, "brp-feed", self._job)

    async def _job(self) -> bool:
        report = await self.read()
        return report.events > 0

    async def cursor(self) -> str | None:
        """The id of the last event stored from this feed."""
        async with self._agent.database.reading() as session:
            row = await session.get(FeedCursorRow, self._url)
            return None if row is None else row.last_event_id

    async def read(self, *, max_pages: int = 10_000) -> FeedReport:
        """Read until a page comes back short; after a failure, wait out the backoff first."""
        report = FeedReport()
        now = self._agent.clock.now()
        if self._retry_at is not None and now < self._retry_at:
            return report
        try:
            await self._read_pages(report, max_pages)
        except (httpx.HTTPError, _FeedUnavailable, AgentError) as exc:
            self._back_off(now, exc)
            report.failed = True
            return report
        self._failures, self._retry_at = 0, None
        return report

    async def _read_pages(self, report: FeedReport, max_pages: int) -> None:
        cursor = await self.cursor()
        for _ in range(max_pages):
            page = await self._page(cursor)
            if not page:
                return
            events, last_id = self._parse(page, report)
            if last_id is None:
                return
            handled = await self._events.receive(events, cursor=(self._url, last_id))
            report.pages += 1
            report.events += handled.received
            report.duplicates += handled.duplicates
            cursor = last_id
            if len(page) < self._page_size:
                return

    async def _page(self, cursor: str | None) -> list[Any]:
        params: dict[str, str | int] = {"limiet": self._page_size}
        if cursor is not None:
            params["cursor"] = cursor
        response = await self._http.get(self._url, params=params)
        if response.status_code != 200:
            raise _FeedUnavailable(f"feed answered {response.status_code}")
        try:
            page = read_json(response.content, max_bytes=len(response.content))
        except ProtocolError as exc:
            raise _FeedUnavailable(f"feed answered no usable JSON: {exc.code}") from exc
        if not isinstance(page, list):
            raise _FeedUnavailable("feed answered no JSON array")
        return page

    def _parse(self, page: list[Any], report: FeedReport) -> tuple[list[CloudEvent], str | None]:
        events: list[CloudEvent] = []
        last_id: str | None = None
        for position, raw in enumerate(page):
            if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"]:
                last_id = raw["id"]
            try:
                events.append(parse_event(raw))
            except EventInvalid as exc:
                # A malformed event cannot block the feed: it is skipped and logged (no data).
                report.malformed += 1
                _log.warning(
                    "brp_feed_event_malformed", extra={"position": position, "reason": exc.detail}
                )
        return events, last_id

    def _back_off(self, now: datetime, exc: Exception) -> None:
        self._failures += 1
        delay = min(_BASE_DELAY * 2 ** (self._failures - 1), _MAX_DELAY)
        self._retry_at = now + delay
        _log.warning(
            "brp_feed_unavailable",
            extra={
                "failures": self._failures,
                "retry_in": delay.total_seconds(),
                "error": str(exc),
            },
        )

"""Structured JSON log lines with W3C trace context and stable event names.

One line per record: ``time``, ``level``, ``logger``, ``event``, ``trace_id``, ``span_id`` and only
the extra fields named in :data:`LOGGED_FIELDS`. A record whose message is an event name
(``message_delivered``) is an event; other libraries' records keep their message, and exceptions
keep their type and stack but not their text (a database error may quote a BSN).

Log an event with ``log_event(logger, "message_delivered", message_id=...)``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "LOGGED_FIELDS",
    "PARAMETER_LOGGERS",
    "JsonFormatter",
    "TraceContext",
    "TraceMiddleware",
    "configure_logging",
    "current_trace",
    "log_event",
    "parse_traceparent",
    "quiet_parameter_loggers",
    "trace",
]

# Fields an event may carry; anything else given to log_event is dropped. Never a BSN, token or key.
LOGGED_FIELDS = frozenset(
    {
        "attempts",
        "code",
        "count",
        "deadline_id",
        "dossier_id",
        "event_id",
        "from_state",
        "kind",
        "message_id",
        "message_type",
        "outcome",
        "reason",
        "replica",
        "side",
        "status_code",
        "to_state",
    }
)
# Database drivers log statement parameters (a BSN) at DEBUG: they stay at WARNING or above.
PARAMETER_LOGGERS = ("aiosqlite", "psycopg", "sqlalchemy.engine", "sqlalchemy.pool")
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
# W3C Trace Context, section 3.2: version-traceid-parentid-flags, lowercase hex.
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_MESSAGE_LIMIT = 500


class TraceContext:
    """A trace id and the current span id (W3C Trace Context)."""

    __slots__ = ("span_id", "trace_id")

    def __init__(self, trace_id: str, span_id: str) -> None:
        self.trace_id = trace_id
        self.span_id = span_id

    def traceparent(self) -> str:
        """The ``traceparent`` header value naming this span as parent."""
        return f"00-{self.trace_id}-{self.span_id}-01"


_current: ContextVar[TraceContext | None] = ContextVar("_current_trace", default=None)


def parse_traceparent(value: str | None) -> TraceContext | None:
    """The trace context in a ``traceparent`` header, or None when absent or malformed."""
    match = _TRACEPARENT.match((value or "").strip())
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return TraceContext(match.group(1), match.group(2))


class TraceMiddleware:
    """ASGI middleware: each HTTP request runs in a new span of the caller's ``traceparent``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"traceparent", b"").decode("latin-1")
        with trace(header or None):
            await self.app(scope, receive, send)


def current_trace() -> TraceContext | None:
    """The trace context of the running request or job, if any."""
    return _current.get()


@contextmanager
def trace(parent: TraceContext | str | None = None) -> Iterator[TraceContext]:
    """Run a new span: in ``parent``'s trace (a context or ``traceparent`` value) or a new one."""
    if isinstance(parent, str):
        parent = parse_traceparent(parent)
    trace_id = parent.trace_id if parent is not None else secrets.token_hex(16)
    context = TraceContext(trace_id, secrets.token_hex(8))
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def log_event(
    logger: logging.Logger, event: str, /, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log a stable event name with whitelisted fields (see :data:`LOGGED_FIELDS`)."""
    context = current_trace()
    # The trace is taken now: a handler may format the record later, outside this span.
    extra: dict[str, Any] = {"event_fields": fields}
    if context is not None:
        extra |= {"trace_id": context.trace_id, "span_id": context.span_id}
    logger.log(level, event, extra=extra)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        if isinstance(record.msg, str) and not record.args and _EVENT_NAME.match(record.msg):
            line["event"] = record.msg
        else:
            line["event"] = "log"
            line["message"] = message[:_MESSAGE_LIMIT]
        context = current_trace()
        trace_id = getattr(record, "trace_id", None) or (context and context.trace_id)
        if trace_id:
            line["trace_id"] = trace_id
            line["span_id"] = getattr(record, "span_id", None) or (context and context.span_id)
        # Whitelisted fields given as ``extra`` attributes or through log_event.
        line.update(_whitelisted(vars(record)))
        line.update(_whitelisted(getattr(record, "event_fields", None)))
        if record.exc_info and record.exc_info[0] is not None:
            line["exception_type"] = record.exc_info[0].__name__
            # The stack without the exception's text, which may quote parameters.
            line["stack"] = "".join(traceback.format_tb(record.exc_info[2]))
        try:
            # orjson: the same JSON as json.dumps for the str and int values logged, in C.
            return orjson.dumps(line, default=str).decode()
        except TypeError:  # e.g. an integer beyond 64 bits
            return json.dumps(line, ensure_ascii=False, default=str)


def _whitelisted(fields: Any) -> dict[str, Any]:
    if not isinstance(fields, Mapping):
        return {}
    return {key: fields[key] for key in sorted(fields.keys() & LOGGED_FIELDS)}


def configure_logging(level: str = "info", *, filters: Sequence[logging.Filter] = ()) -> None:
    """JSON lines on standard error for the root logger; uvicorn's loggers go through it too.

    ``filters`` run on every record before it is written (e.g. redaction of link tokens).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for record_filter in filters:
        handler.addFilter(record_filter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet_parameter_loggers()
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def quiet_parameter_loggers() -> None:
    """Keep the loggers that print statement parameters at WARNING, whatever the root level."""
    for name in PARAMETER_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.WARNING))

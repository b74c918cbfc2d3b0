"""CloudEvents for the back office (NL GOV profile for CloudEvents 1.0, structured JSON mode)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from protocol import canonicalize

__all__ = ["STATE_CHANGED", "event_source", "state_changed_event"]

STATE_CHANGED = "nl.meeverhuizen.dossier.state-changed"


def event_source(oin: str) -> str:
    """The NL GOV ``source``: ``urn:nld:oin:<OIN>:systeem:<system>``."""
    return f"urn:nld:oin:{oin}:systeem:meeverhuizen"


def state_changed_event(
    *,
    event_id: uuid.UUID,
    oin: str,
    dossier_id: str,
    side: str,
    from_state: str | None,
    to_state: str,
    cause: str,
    at: datetime,
) -> bytes:
    """The event as bytes. Context attributes carry no personal data: subject is the dossier id."""
    data: dict[str, Any] = {
        "dossierId": dossier_id,
        "side": side,
        "toState": to_state,
        "cause": cause,
    }
    if from_state is not None:
        data["fromState"] = from_state
    return canonicalize(
        {
            "specversion": "1.0",
            "id": str(event_id),
            "source": event_source(oin),
            "type": STATE_CHANGED,
            "subject": dossier_id,
            "time": at.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": data,
        }
    )

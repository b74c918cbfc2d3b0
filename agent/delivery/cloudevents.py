"""CloudEvents for the back office (NL GOV profile for CloudEvents 1.0, structured JSON mode).

Every event names the JSON Schema of its ``data`` in ``dataschema`` (NL GOV profile); the
schemas are generated from the data models here and published in ``schemas/events/``:
``python -m agent.delivery.cloudevents schemas/events`` writes them (a test fails on drift).
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from protocol import canonicalize

__all__ = [
    "EVENT_DATA_MODELS",
    "STATE_CHANGED",
    "StateChangedData",
    "StateName",
    "data_schema_id",
    "event_schemas",
    "event_source",
    "state_changed_event",
    "write_event_schemas",
]

STATE_CHANGED = "nl.meeverhuizen.dossier.state-changed"
StateName = Annotated[
    str, Field(pattern=r"^[a-z]+(-[a-z]+)*$", max_length=40, description="A dossier state")
]


class StateChangedData(BaseModel):
    """A dossier entered a state. No personal data: the dossier is named by its id only."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    dossier_id: str = Field(description="The dossier (UUID), also the event's subject")
    side: Literal["departing", "receiving"]
    from_state: StateName | None = None
    to_state: StateName
    cause: str = Field(description="Why, in a few words (no personal data)")


EVENT_DATA_MODELS: dict[str, type[BaseModel]] = {STATE_CHANGED: StateChangedData}


def data_schema_id(event_type: str) -> str:
    """The ``dataschema`` of an event type: the ``$id`` of its published data schema."""
    return f"urn:meeverhuizen:schema:v1:event:{event_type}"


def event_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema (draft 2020-12) of ``data`` per event type."""
    return {
        event_type: {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": data_schema_id(event_type),
            **model.model_json_schema(by_alias=True),
        }
        for event_type, model in EVENT_DATA_MODELS.items()
    }


def write_event_schemas(directory: Path) -> list[Path]:
    """Write ``<event type>.json`` per event type into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in event_schemas().items():
        path = directory / f"{event_type}.json"
        text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


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
    data = StateChangedData.model_validate(
        {
            "dossierId": dossier_id,
            "side": side,
            "fromState": from_state,
            "toState": to_state,
            "cause": cause,
        }
    )
    return canonicalize(
        {
            "specversion": "1.0",
            "id": str(event_id),
            "source": event_source(oin),
            "type": STATE_CHANGED,
            "subject": dossier_id,
            "time": at.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "dataschema": data_schema_id(STATE_CHANGED),
            "data": data.model_dump(by_alias=True, exclude_none=True),
        }
    )


if __name__ == "__main__":  # pragma: no cover - the drift test calls write_event_schemas
    for written_path in write_event_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(written_path)

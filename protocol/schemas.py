"""JSON Schemas (draft 2020-12) per message type, generated from the message models.

``python -m protocol.schemas DIRECTORY`` writes ``DIRECTORY/<message type>.json``; the committed
copies live in ``schemas/`` and a test fails when they drift from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import create_model

from protocol.messages import BODY_MODELS, MESSAGE_TYPES, Message

__all__ = ["SCHEMA_DIALECT", "message_schemas", "schema_id", "write_schemas"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_id(message_type: str) -> str:
    """Return the ``$id`` of the schema for ``message_type``."""
    return f"urn:meeverhuizen:schema:v1:{message_type}"


def _title(message_type: str) -> str:
    return "".join(part.capitalize() for part in message_type.split("-")) + "Message"


def _schema_for(message_type: str) -> dict[str, Any]:
    # The envelope with its body narrowed to this one type; validation rules stay inherited.
    envelope = create_model(
        _title(message_type),
        __base__=Message,
        message_type=(cast(Any, Literal)[message_type], ...),
        body=(BODY_MODELS[message_type], ...),
    )
    schema = envelope.model_json_schema(by_alias=True, mode="validation")
    # parse_message requires protocolVersion on the wire; the default is only for Python callers.
    schema["required"].append("protocolVersion")
    return {"$schema": SCHEMA_DIALECT, "$id": schema_id(message_type), **schema}


def message_schemas() -> dict[str, dict[str, Any]]:
    """Return one JSON Schema for the whole message (envelope and body) per message type."""
    return {message_type: _schema_for(message_type) for message_type in MESSAGE_TYPES}


def write_schemas(directory: Path) -> list[Path]:
    """Write ``<message type>.json`` for every type into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for message_type, schema in message_schemas().items():
        path = directory / f"{message_type}.json"
        path.write_text(
            json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        written.append(path)
    return written


def _main(arguments: list[str]) -> int:
    if len(arguments) != 1:
        print("usage: python -m protocol.schemas DIRECTORY", file=sys.stderr)
        return 2
    for path in write_schemas(Path(arguments[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

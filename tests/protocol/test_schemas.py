"""JSON Schemas: committed copies match the models, and examples pass schema and models alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from protocol.errors import InvalidMessage
from protocol.messages import MESSAGE_TYPES, parse_message
from protocol.schemas import SCHEMA_DIALECT, message_schemas, schema_id, write_schemas
from tests.conftest import REPOSITORY

SCHEMAS = REPOSITORY / "schemas"
EXAMPLES = REPOSITORY / "docs" / "examples"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _validator(message_type: str) -> Draft202012Validator:
    schema = _load(SCHEMAS / f"{message_type}.json")
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_one_schema_and_one_example_per_message_type() -> None:
    assert sorted(path.stem for path in SCHEMAS.glob("*.json")) == sorted(MESSAGE_TYPES)
    assert sorted(path.stem for path in EXAMPLES.glob("*.json")) == sorted(MESSAGE_TYPES)


def test_committed_schemas_equal_generated_ones(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    for message_type in MESSAGE_TYPES:
        name = f"{message_type}.json"
        committed = (SCHEMAS / name).read_text(encoding="utf-8")
        assert committed == (tmp_path / name).read_text(encoding="utf-8"), (
            f"schemas/{name} drifted from the models: run python -m protocol.schemas schemas"
        )


def test_command_line_writes_the_schemas(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "protocol.schemas", str(tmp_path)], check=True, capture_output=True
    )
    assert sorted(path.stem for path in tmp_path.glob("*.json")) == sorted(MESSAGE_TYPES)


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_schema_header(message_type: str) -> None:
    schema = message_schemas()[message_type]
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["$id"] == schema_id(message_type) == f"urn:meeverhuizen:schema:v1:{message_type}"
    assert schema["properties"]["messageType"]["const"] == message_type
    assert "protocolVersion" in schema["required"]


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_example_passes_schema_and_models(message_type: str) -> None:
    example = _load(EXAMPLES / f"{message_type}.json")
    errors = [error.message for error in _validator(message_type).iter_errors(example)]
    assert errors == []
    assert parse_message(example).message_type == message_type


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_schema_rejects_unknown_fields(message_type: str) -> None:
    example = _load(EXAMPLES / f"{message_type}.json")
    validator = _validator(message_type)
    assert not validator.is_valid({**example, "surpriseField": 1})
    assert not validator.is_valid({**example, "body": {**example["body"], "surpriseField": 1}})


def test_schema_rejects_another_types_body() -> None:
    example = _load(EXAMPLES / "dossier-request.json")
    example["body"] = _load(EXAMPLES / "receipt.json")["body"]
    assert not _validator("dossier-request").is_valid(example)


def test_schema_rejects_a_naive_datetime() -> None:
    example = _load(EXAMPLES / "receipt.json")
    example["createdAt"] = "2025-02-10T10:15:02"
    assert not _validator("receipt").is_valid(example)


def _keywords_by_type(node: Any) -> list[tuple[str, set[str]]]:
    if isinstance(node, list):
        return [found for item in node for found in _keywords_by_type(item)]
    if not isinstance(node, dict):
        return []
    here = [(node["type"], set(node))] if isinstance(node.get("type"), str) else []
    return here + [found for value in node.values() for found in _keywords_by_type(value)]


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_length_keywords_fit_the_type(message_type: str) -> None:
    # minLength on an array (or minItems on a string) constrains nothing: the schema would
    # accept what the agent refuses.
    for kind, keywords in _keywords_by_type(_load(SCHEMAS / f"{message_type}.json")):
        if kind == "array":
            assert not keywords & {"minLength", "maxLength"}, (message_type, keywords)
        if kind == "string":
            assert not keywords & {"minItems", "maxItems"}, (message_type, keywords)


def test_an_empty_channel_list_is_refused_by_the_schema() -> None:
    example = _load(EXAMPLES / "dossier-offer.json")
    assert _validator("dossier-offer").is_valid(example)
    example["body"]["client"]["contactPreferences"]["channels"] = []
    assert not _validator("dossier-offer").is_valid(example)


def test_a_revised_decision_and_a_stop_for_some_devices_pass_schema_and_models() -> None:
    decision = _load(EXAMPLES / "device-decision.json")
    decision["body"]["revisedAt"] = "2025-02-20T10:15:00Z"
    decision["body"]["decisions"][0] = {
        "deviceId": "AMS-HM-2019-04417",
        "outcome": "exception",
        "reasonCode": "unsafe-or-worn",
        "reasonText": "Deze scootmobiel is versleten en niet meer veilig.",
        "alternativeOffered": "Een nieuwe scootmobiel, geleverd vóór de verhuisdatum.",
        "followUp": "gemeente-task",
    }
    stop = _load(EXAMPLES / "dossier-cancelled.json")
    stop["body"] = {"reason": "decision-changed", "deviceIds": ["AMS-HM-2019-04417"]}
    for example in (decision, stop):
        validator = _validator(example["messageType"])
        assert [error.message for error in validator.iter_errors(example)] == []
        parse_message(example)
    # A revision time carries an offset, like every date-time.
    decision["body"]["revisedAt"] = "2025-02-20T10:15:00"
    assert not _validator("device-decision").is_valid(decision)


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "decision-changed"},
        {"reason": "move-cancelled", "deviceIds": ["AMS-HM-2019-04417"]},
        {"reason": "decision-changed", "deviceIds": ["A", "A"]},
    ],
)
def test_device_ids_go_with_a_changed_decision_only(body: dict[str, Any]) -> None:
    stop = _load(EXAMPLES / "dossier-cancelled.json")
    with pytest.raises(InvalidMessage):
        parse_message({**stop, "body": body})

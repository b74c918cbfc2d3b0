"""docs/protocol.md stays true: every error code and message type it must describe is there."""

from __future__ import annotations

import inspect
import re

from protocol import errors
from protocol.messages import MESSAGE_TYPES
from tests.conftest import REPOSITORY

SPEC = (REPOSITORY / "docs" / "protocol.md").read_text(encoding="utf-8")


def _catalogue_codes() -> dict[str, int]:
    section = SPEC.split("## 10. Error catalogue", 1)[1].split("\n## ", 1)[0]
    return {
        code: int(status)
        for code, status in re.findall(r"^\| `(\w+)` \| (\d{3}) \|", section, re.M)
    }


def test_every_protocol_error_is_in_the_catalogue_with_its_status() -> None:
    catalogue = _catalogue_codes()
    for _name, error in inspect.getmembers(errors, inspect.isclass):
        if issubclass(error, errors.ProtocolError) and error is not errors.ProtocolError:
            assert catalogue.get(error.code) == error.status, error.code


def test_every_message_type_is_in_the_catalogue() -> None:
    section = SPEC.split("## 5. Message catalogue", 1)[1].split("\n### ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z-]+)` \|", section, re.M))
    assert listed == set(MESSAGE_TYPES)

"""Every problem type a document names is one the code answers, with the status it says."""

from __future__ import annotations

import re

import pytest

from agent.errors import AgentError
from protocol.errors import ProblemError, ProtocolError
from registry.errors import RegistryError
from registry.server_kit.openapi import HTTP_PROBLEMS, INTERNAL_ERROR, INVALID_INPUT
from tests.conftest import REPOSITORY

# Problem tables (a first column `code`, a second with the HTTP status), or `code` (status) in
# running text.
_ROW = re.compile(r"^\| `([a-z_-]+)` \| (\d{3}) \||`([a-z][a-z-]+)` \((\d{3})[:)]", re.M)
DOCUMENTS = ("protocol.md", "registry.md", "agent.md", "hosting.md")


def _subclasses(base: type[ProblemError]) -> list[type[ProblemError]]:
    found = []
    for child in base.__subclasses__():
        found += [child, *_subclasses(child)]
    return found


def _answered() -> dict[str, set[int]]:
    codes: dict[str, set[int]] = {}
    for error in (
        error for tree in (ProtocolError, RegistryError, AgentError) for error in _subclasses(tree)
    ):
        codes.setdefault(error.code.replace("_", "-"), set()).add(error.status)
    for kind in (INTERNAL_ERROR, INVALID_INPUT, *HTTP_PROBLEMS.values()):
        codes.setdefault(kind.code.replace("_", "-"), set()).add(kind.status)
    return codes


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_problem_a_document_names_is_answered_with_its_status(document: str) -> None:
    text = (REPOSITORY / "docs" / document).read_text(encoding="utf-8")
    answered = _answered()
    rows = [(row[0] or row[2], row[1] or row[3]) for row in _ROW.findall(text)]
    assert rows
    for code, status in rows:
        name = code.replace("_", "-")
        assert name in answered, f"{document}: {code} is not a problem type the code answers"
        assert int(status) in answered[name], f"{document}: {code} is not answered {status}"

"""The problem+json answers of each route, described in the OpenAPI document (ADR API-46/47).

Routes list the errors they can raise with :func:`problem_responses`; :func:`describe_problems`
makes the document refer to one ``Problem`` schema (RFC 9457) and drops FastAPI's 422
validation answer, which this API never gives (invalid input is 400).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from protocol.errors import ProblemError, problem_type
from registry.server_kit.api_rules import PROBLEM_JSON, Problem

__all__ = [
    "BODY_TOO_LARGE",
    "INVALID_INPUT",
    "ProblemKind",
    "describe_problems",
    "problem_responses",
]

_COMPONENTS = "#/components/schemas/"
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


@dataclass(frozen=True)
class ProblemKind:
    """A problem answered outside the exception trees (request validation, size limit)."""

    code: str
    title: str
    status: int


INVALID_INPUT = ProblemKind("invalid_input", "Request is not valid", 400)
BODY_TOO_LARGE = ProblemKind("body_too_large", "Request body is larger than allowed", 413)

ProblemSource = type[ProblemError] | ProblemKind


def problem_responses(*sources: ProblemSource) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problems a route can answer, one entry per status."""
    lines: dict[int, list[str]] = {}
    for source in sources:
        line = f"`{problem_type(source.code)}`: {source.title}"
        lines.setdefault(source.status, []).append(line)
    schema = {"$ref": f"{_COMPONENTS}Problem"}
    return {
        status: {"description": "; ".join(found), "content": {PROBLEM_JSON: {"schema": schema}}}
        for status, found in sorted(lines.items())
    }


def describe_problems(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe problem answers with the ``Problem`` schema."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_problems(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(by_alias=True, ref_template=_COMPONENTS + "{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    for path in document.get("paths", {}).values():
        for operation in path.values():
            _drop_validation_answer(operation.get("responses", {}))
    return document


def _drop_validation_answer(responses: dict[str, Any]) -> None:
    answer = responses.get("422", {})
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref") == f"{_COMPONENTS}HTTPValidationError":
        del responses["422"]

"""The OpenAPI document of a service, true to what it answers (NL GOV API Design Rules).

FastAPI's own document lists a 422 ``application/json`` validation answer on every route and
nothing about headers. :func:`finish_document` rewrites it into what the services really do:

- paths relative to the server URL ``/v1``, which carries the major version (API-20, API-48);
- every error as ``application/problem+json`` with the service's problem schema (API-46): the
  422 is gone (invalid input is a 400 problem), every route that takes input lists its 400,
  every route with a body its 413, every route its 500;
- the ``API-Version`` header on every answer (API-57), and the headers a service adds to its
  answers (the registry's signature headers);
- ``info.contact`` and the licence (API-51).

Routes list the problems they answer with :func:`problem_responses`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from protocol.errors import ProblemError, problem_type

__all__ = [
    "BODY_TOO_LARGE",
    "HTTP_PROBLEMS",
    "INTERNAL_ERROR",
    "INVALID_INPUT",
    "PROBLEM_JSON",
    "ProblemKind",
    "ProblemSource",
    "finish_document",
    "problem_responses",
]

PROBLEM_JSON = "application/problem+json"
_SCHEMAS = "#/components/schemas/"
_HEADERS = "#/components/headers/"
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class ProblemKind:
    """A problem answered outside the exception trees (request validation, size limit)."""

    code: str
    title: str
    status: int


INVALID_INPUT = ProblemKind("invalid_input", "Request is not valid", 400)
BODY_TOO_LARGE = ProblemKind("body_too_large", "Request body is larger than allowed", 413)
INTERNAL_ERROR = ProblemKind("internal_error", "Internal error", 500)
# What the framework itself answers (an unknown path, a wrong method ...), by status.
HTTP_PROBLEMS: dict[int, ProblemKind] = {
    kind.status: kind
    for kind in (
        ProblemKind("bad_request", "Bad request", 400),
        ProblemKind("unauthorized", "Not authenticated", 401),
        ProblemKind("forbidden", "Not allowed", 403),
        ProblemKind("not_found", "Resource not found", 404),
        ProblemKind("method_not_allowed", "Method not allowed", 405),
        ProblemKind("not_acceptable", "Not acceptable", 406),
        BODY_TOO_LARGE,
        ProblemKind("unsupported_media_type", "Unsupported media type", 415),
    )
}

ProblemSource = type[ProblemError] | ProblemKind


def _problem_line(source: ProblemSource) -> str:
    return f"`{problem_type(source.code)}`: {source.title}"


def _problem_answer(lines: list[str]) -> dict[str, Any]:
    return {
        "description": "; ".join(lines),
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"{_SCHEMAS}Problem"}}},
    }


def problem_responses(*sources: ProblemSource) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problems a route can answer, one entry per status."""
    lines: dict[int, list[str]] = {}
    for source in sources:
        line = _problem_line(source)
        if line not in lines.setdefault(source.status, []):
            lines[source.status].append(line)
    return {status: _problem_answer(found) for status, found in sorted(lines.items())}


def _header(description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"description": description, "schema": dict(schema)}


API_VERSION_HEADER = _header(
    "The full version of this API (semantic versioning), on every answer.",
    {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$", "example": "1.0.0"},
)


def finish_document(
    document: dict[str, Any],
    *,
    base_path: str,
    problem_model: type[BaseModel],
    answer_headers: Mapping[str, Mapping[str, Any]] | None = None,
    schemas: Sequence[type[BaseModel]] = (),
) -> dict[str, Any]:
    """Rewrite FastAPI's ``document`` into what the service does (see the module docstring).

    ``answer_headers`` are header objects (OpenAPI) every JSON answer of the service carries,
    by name; they go to ``components.headers`` and are referenced from each such answer.
    ``schemas`` are models the routes refer to by ``#/components/schemas/<name>`` themselves.
    """
    components = document.setdefault("components", {})
    found = components.setdefault("schemas", {})
    for model in schemas:
        found.update(_component(model))
    found.update(_component(problem_model, name="Problem"))
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        found.pop(name, None)
    for schema in found.values():
        _simplify_nullable(schema)
    headers = components.setdefault("headers", {})
    headers["API-Version"] = API_VERSION_HEADER
    headers["WWW-Authenticate"] = _header(
        "How to authenticate (RFC 9110): Bearer for tokens, nlgov-adr-payload-sig for signed "
        "protocol messages.",
        {"type": "string"},
    )
    extra = dict(answer_headers or {})
    headers.update(extra)
    paths: dict[str, Any] = {}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                _finish_operation(method, operation, list(extra))
        paths[path.removeprefix(base_path) or "/"] = item
    document["paths"] = paths
    document["servers"] = [
        {"url": base_path, "description": "This service, version 1 of its API (relative URL)"}
    ]
    return document


def _simplify_nullable(schema: Any) -> None:
    """Write ``anyOf: [{type: T, ...}, {type: null}]`` as ``{type: [T, null], ...}``.

    The same schema (JSON Schema 2020-12, OpenAPI 3.1), in the form linters read: the ADR
    linter looks for ``format`` on the property itself (a nullable date stays a date).
    """
    if isinstance(schema, list):
        for item in schema:
            _simplify_nullable(item)
        return
    if not isinstance(schema, dict):
        return
    for value in schema.values():
        _simplify_nullable(value)
    options = schema.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return
    other = options[0] if options[1] == {"type": "null"} else options[1]
    if not isinstance(other.get("type"), str) or "$ref" in other:
        return
    del schema["anyOf"]
    schema.update({**other, "type": [other["type"], "null"]})


def _component(model: type[BaseModel], *, name: str | None = None) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template=_SCHEMAS + "{model}")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, name or model.__name__: schema}


def _finish_operation(method: str, operation: dict[str, Any], extra: list[str]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    _drop_validation_answer(responses)
    takes_input = bool(operation.get("parameters")) or "requestBody" in operation
    needed: list[ProblemKind] = [INTERNAL_ERROR]
    if takes_input or method in ("post", "put", "patch"):
        needed.append(INVALID_INPUT)
    if "requestBody" in operation or method in ("post", "put", "patch"):
        needed.append(BODY_TOO_LARGE)
    for kind in needed:
        line = _problem_line(kind)
        answer = responses.get(str(kind.status))
        if answer is None:
            responses[str(kind.status)] = _problem_answer([line])
        elif line not in answer["description"]:
            answer["description"] += "; " + line
    for status, answer in responses.items():
        _finish_answer(status, answer, extra)
    operation["responses"] = dict(sorted(responses.items()))


def _finish_answer(status: str, answer: dict[str, Any], extra: list[str]) -> None:
    headers = answer.setdefault("headers", {})
    headers["API-Version"] = {"$ref": f"{_HEADERS}API-Version"}
    if status == "401":
        headers["WWW-Authenticate"] = {"$ref": f"{_HEADERS}WWW-Authenticate"}
    if int(status) >= 400:
        answer["content"] = {PROBLEM_JSON: {"schema": {"$ref": f"{_SCHEMAS}Problem"}}}
    if any(media.endswith("json") for media in answer.get("content") or {}):
        for name in extra:
            headers[name] = {"$ref": f"{_HEADERS}{name}"}


def _drop_validation_answer(responses: dict[str, Any]) -> None:
    answer = responses.get("422", {})
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref") == f"{_SCHEMAS}HTTPValidationError":
        del responses["422"]

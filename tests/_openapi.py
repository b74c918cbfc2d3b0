"""Checks a service's real answers against its own OpenAPI document (tests only)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_DOCUMENT = "urn:meeverhuizen:openapi"


def _refs(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{where}/{index}")


def _location(*parts: str) -> str:
    """A JSON pointer fragment (RFC 6901) to ``parts``, written for a URI."""
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in parts)
    return "#/" + urllib.parse.quote("/".join(escaped), safe="/~")


def _pointer(document: Any, reference: str) -> Any:
    if not reference.startswith("#/"):
        raise KeyError(reference)
    node = document
    for part in reference[2:].split("/"):
        node = node[urllib.parse.unquote(part).replace("~1", "/").replace("~0", "~")]
    return node


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    """Forwards to a service and keeps every answer, read, for checking afterwards."""

    inner: httpx.AsyncBaseTransport
    answers: list[httpx.Response] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        answer = httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )
        self.answers.append(answer)
        return answer


class OpenApiContract:
    """One service's OpenAPI document and what it promises about each answer."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.base_path = document["servers"][0]["url"]
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_DOCUMENT, resource)
        self._paths = [
            (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"), path)
            for path in document["paths"]
        ]

    def unresolved_references(self) -> list[str]:
        """Every ``$ref`` that does not point at something in the document."""
        broken = []
        for where, reference in _refs(self.document):
            try:
                _pointer(self.document, reference)
            except (KeyError, IndexError, TypeError):
                broken.append(f"{where}: {reference}")
        return broken

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = _pointer(self.document, node["$ref"])
        return node

    def _operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        relative = path.removeprefix(self.base_path)
        for pattern, template in self._paths:
            if pattern.match(relative):
                operations: dict[str, Any] = self.document["paths"][template]
                if method.lower() in operations:
                    return template, dict(operations[method.lower()])
        raise AssertionError(f"{method} {path} is not in the document")

    def validate(self, location: str, value: Any, what: str) -> None:
        """Fail unless ``value`` matches the schema at ``location`` (a ``#/...`` pointer)."""
        wrapped = {"$ref": f"{_DOCUMENT}{location}"}
        validator = Draft202012Validator(
            wrapped, registry=self._registry, format_checker=FormatChecker()
        )
        errors = sorted(validator.iter_errors(value), key=lambda error: list(error.path))
        assert not errors, f"{what}: " + "; ".join(
            f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors[:5]
        )

    def check(self, response: httpx.Response) -> None:
        """Fail unless the answer's status, headers and body are as the document says."""
        request = response.request
        what = f"{request.method} {request.url.path} -> {response.status_code}"
        template, operation = self._operation(request.method, request.url.path)
        status = str(response.status_code)
        answer = operation["responses"].get(status)
        assert answer is not None, f"{what}: status not documented"
        for name, header in answer.get("headers", {}).items():
            assert name in response.headers, f"{what}: documented header {name} missing"
            if "schema" in self._resolve(header):
                place = ("paths", template, request.method.lower(), "responses", status)
                location = header.get("$ref") or _location(*place, "headers", name)
                schema = location + "/schema"
                self.validate(schema, response.headers[name], f"{what}: header {name}")
        content = answer.get("content", {})
        if not content:
            assert not response.content, f"{what}: a body where the document has none"
            return
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        assert media_type in content, f"{what}: {media_type} not documented ({list(content)})"
        if "schema" in content[media_type] and media_type.endswith("json"):
            location = _location(
                "paths", template, request.method.lower(), "responses", status, "content",
                media_type, "schema",
            )  # fmt: skip
            self.validate(location, response.json(), what)

"""NL GOV API Design Rules as FastAPI building blocks, shared by the registry and the agents.

What every Meeverhuizen HTTP API gets from :func:`create_api` (ADR 2.x):

- ``/v1`` base path and the OpenAPI 3 document at ``/v1/openapi.json`` (API-51), true to what
  the service answers (:mod:`registry.server_kit.openapi`);
- an ``API-Version`` header on every response (API-57);
- RFC 9457 problem+json for every error, with 400 (not 422) for invalid input (API-46/API-47),
  ``instance`` naming the request path, and ``WWW-Authenticate`` on every 401 (RFC 9110);
- no redirect on a trailing slash (API-48);
- security headers on every response, and a request size limit checked before the body is read.

Errors are mapped in one place: each class passed in ``error_types`` is a
:class:`protocol.errors.ProblemError` (the base of the ``protocol``, ``registry`` and ``agent``
error trees) and answers as its own problem type.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocol.errors import ProblemError, problem_type
from registry.server_kit.deployment import ApiContact
from registry.server_kit.openapi import HTTP_PROBLEMS, PROBLEM_JSON, ProblemKind, finish_document

__all__ = [
    "BASE_PATH",
    "PROBLEM_JSON",
    "InvalidParameter",
    "Problem",
    "create_api",
    "problem_response",
]

BASE_PATH = "/v1"
# RFC 9110 section 11.6.1: a 401 names how to authenticate. Bearer tokens unless the error
# class names its own scheme (a signed protocol message: ProblemError.challenge).
_DEFAULT_CHALLENGE = 'Bearer realm="meeverhuizen"'

_log = logging.getLogger("meeverhuizen.api")

_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000"),
)


class InvalidParameter(BaseModel):
    """One invalid input field (RFC 9457 extension member ``invalidParams``)."""

    name: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response carries them."""

    model_config = ConfigDict(populate_by_name=True)

    type: str = Field(description="urn:meeverhuizen:problem:<code>, one per kind of problem")
    title: str = Field(description="The kind of problem, the same for every occurrence")
    status: int = Field(ge=100, le=599, description="The HTTP status of the answer")
    detail: str | None = Field(default=None, description="This occurrence; no personal data")
    instance: str | None = Field(default=None, description="The path of the request")
    invalid_params: list[InvalidParameter] | None = Field(
        default=None, alias="invalidParams", description="Invalid input: one entry per field"
    )


def problem_response(
    *,
    code: str,
    title: str,
    status: int,
    detail: str | None = None,
    instance: str | None = None,
    invalid_params: Sequence[InvalidParameter] | None = None,
    headers: Mapping[str, str] | None = None,
    challenge: str | None = None,
) -> JSONResponse:
    """Build an RFC 9457 problem+json response for a machine code."""
    problem = Problem(
        type=problem_type(code),
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        invalid_params=list(invalid_params) if invalid_params else None,
    )
    answer_headers = dict(headers or {})
    if status == 401 and not any(name.lower() == "www-authenticate" for name in answer_headers):
        answer_headers["WWW-Authenticate"] = challenge or _DEFAULT_CHALLENGE
    return JSONResponse(
        problem.model_dump(by_alias=True, exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=answer_headers,
    )


def _instance(scope: Scope) -> str | None:
    # The request path, for API paths only: other paths (the client's personal link) may hold
    # a secret, and a problem's body must not repeat it. The query is never included.
    path = str(scope.get("path", ""))
    return path if path.startswith(BASE_PATH + "/") else None


async def _validation_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Never echo the rejected input back: it may hold personal data such as a BSN.
    invalid = [
        InvalidParameter(
            name=".".join(str(part) for part in error.get("loc", ())),
            reason=str(error.get("msg", "invalid")),
        )
        for error in exc.errors()
    ]
    return problem_response(
        code="invalid_input",
        title="Request is not valid",
        status=400,
        detail="; ".join(f"{item.name}: {item.reason}" for item in invalid),
        instance=_instance(request.scope),
        invalid_params=invalid,
    )


async def _http_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = HTTP_PROBLEMS.get(exc.status_code, ProblemKind("http_error", "HTTP error", 0))
    return problem_response(
        code=kind.code,
        title=kind.title,
        status=exc.status_code,
        detail=str(exc.detail) if exc.detail else None,
        instance=_instance(request.scope),
        headers=exc.headers,
    )


async def _domain_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        code=exc.code,
        title=exc.title,
        status=exc.status,
        detail=exc.detail,
        instance=_instance(request.scope),
        headers=getattr(exc, "headers", None),
        challenge=exc.challenge,
    )


def _internal_problem_handler(api_version: str) -> Any:
    # Starlette answers unhandled errors outside all middleware, so the header is set here.
    async def internal_problem(request: Request, exc: Exception) -> JSONResponse:
        _log.error("internal_error", extra={"error_class": type(exc).__name__})
        return problem_response(
            code="internal_error",
            title="Internal error",
            status=500,
            instance=_instance(request.scope),
            headers={"API-Version": api_version},
        )

    return internal_problem


class _ApiRulesMiddleware:
    """Adds ``API-Version`` and security headers; refuses bodies over the size limit."""

    def __init__(self, app: ASGIApp, *, api_version: str, max_body_bytes: int) -> None:
        self._app = app
        self._headers = (*_SECURITY_HEADERS, (b"api-version", api_version.encode()))
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self._declared_length(scope) > self._max_body_bytes:
            await self._too_large(scope, receive, send)
            return

        received = 0
        limit = self._max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise StarletteHTTPException(413, f"Body exceeds {limit} bytes")
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in self._headers if item[0] not in present)
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, limited_receive, send_with_headers)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            code="body_too_large",
            title="Request body is larger than allowed",
            status=413,
            detail=f"Body exceeds {self._max_body_bytes} bytes",
            instance=_instance(scope),
            headers={"API-Version": self._headers[-1][1].decode()},
        )
        await response(scope, receive, send)


LICENSE = {"name": "EUPL-1.2", "identifier": "EUPL-1.2"}


def create_api(
    *,
    title: str,
    version: str,
    description: str,
    error_types: Sequence[type[ProblemError]] = (),
    max_body_bytes: int = 1_048_576,
    contact: ApiContact | None = None,
    problem_model: type[BaseModel] = Problem,
    answer_headers: Mapping[str, Mapping[str, Any]] | None = None,
    schemas: Sequence[type[BaseModel]] = (),
    **options: Any,
) -> FastAPI:
    """Create a FastAPI application that follows the NL GOV API Design Rules.

    ``version`` is the full semantic version sent in ``API-Version``; routes belong under
    :data:`BASE_PATH`. ``contact`` goes to ``info.contact`` (the project's maintainers unless
    given);
    ``problem_model`` is the schema of the service's problem answers, ``answer_headers`` the
    headers every JSON answer carries and ``schemas`` the models routes refer to by name, for
    the OpenAPI document. Extra ``options`` go to
    :class:`fastapi.FastAPI` (e.g. ``lifespan``).
    """
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        openapi_url=f"{BASE_PATH}/openapi.json",
        docs_url=f"{BASE_PATH}/docs",
        redoc_url=None,
        redirect_slashes=False,
        contact=(contact or ApiContact()).model_dump(),
        license_info=LICENSE,
        **options,
    )
    _describe(app, problem_model=problem_model, answer_headers=answer_headers, schemas=schemas)
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.add_exception_handler(StarletteHTTPException, _http_problem)
    for error_type in error_types:
        app.add_exception_handler(error_type, _domain_problem)
    app.add_exception_handler(Exception, _internal_problem_handler(version))
    app.add_middleware(_ApiRulesMiddleware, api_version=version, max_body_bytes=max_body_bytes)
    return app


def _describe(
    app: FastAPI,
    *,
    problem_model: type[BaseModel],
    answer_headers: Mapping[str, Mapping[str, Any]] | None,
    schemas: Sequence[type[BaseModel]],
) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish_document(
                generate(),
                base_path=BASE_PATH,
                problem_model=problem_model,
                answer_headers=answer_headers,
                schemas=schemas,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Signed registry answers: envelope, ETag, max-age, signed 304 freshness, signed problems.

Every JSON answer of the registry carries ``Digest`` and ``nlgov-adr-payload-sig`` made with the
registry key (NL GOV API Design Rules signing module). Successful answers are an envelope with
``issuedAt``, ``maxAge`` and ``resource`` next to ``data``; problems get ``issuedAt`` and
``resource`` added, so that a client can refuse an old answer replayed to it, or an answer for
another question. A 304 has no body to sign; it carries ``Registry-Freshness``, a compact JWS over
the ETag, resource and a new ``issuedAt`` (see ``docs/registry.md``, "Freshness").
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocol import canonicalize
from protocol.clock import Clock
from protocol.jws import sign_compact
from protocol.signing import SIGNATURE_HEADER, sign_body
from registry._wire import format_time

__all__ = ["FRESHNESS_HEADER", "AnswerSigner", "SigningMiddleware", "entity_tag", "resource_of"]

FRESHNESS_HEADER = "Registry-Freshness"
_SIGNATURE = SIGNATURE_HEADER.lower().encode("ascii")


def entity_tag(data: Any) -> str:
    """Strong ETag of the answer data (not of the envelope, whose issuedAt always changes)."""
    digest = hashlib.sha256(canonicalize(data)).digest()
    return '"' + base64.urlsafe_b64encode(digest[:18]).decode("ascii") + '"'


def resource_of(scope: Scope) -> str:
    """Path and query of a request exactly as sent, the ``resource`` a client checks."""
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    path = path.split("?", 1)[0]
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


class AnswerSigner:
    """Builds signed answers with the registry's private key and the injected clock."""

    def __init__(self, private_jwk: Mapping[str, Any], *, clock: Clock, max_age: int) -> None:
        self._private_jwk = dict(private_jwk)
        self._clock = clock
        self.max_age = max_age

    def now(self) -> datetime:
        return self._clock.now()

    def sign(self, body: bytes) -> dict[str, str]:
        """Digest and nlgov-adr-payload-sig headers for ``body``."""
        signed = sign_body(body, self._private_jwk, signing_time=self._clock.now())
        return signed.headers()

    def answer(
        self, request: Request, data: Any, *, status_code: int = 200, max_age: int | None = None
    ) -> Response:
        """A signed envelope for ``data``, or a 304 with a signed freshness statement.

        ``max_age`` shortens the configured max-age for this answer (key answers: revocation).
        """
        now = self._clock.now()
        seconds = self.max_age if max_age is None else min(max_age, self.max_age)
        resource = resource_of(request.scope)
        etag = entity_tag(data)
        issued_at = format_time(now)
        headers = {"ETag": etag, "Cache-Control": f"max-age={seconds}"}
        if status_code == 200 and etag in _tags(request.headers.get("if-none-match")):
            statement: dict[str, Any] = {
                "etag": etag,
                "issuedAt": issued_at,
                "maxAge": seconds,
                "resource": resource,
            }
            headers[FRESHNESS_HEADER] = sign_compact(canonicalize(statement), self._private_jwk)
            return Response(status_code=304, headers=headers)
        envelope = {
            "data": data,
            "issuedAt": issued_at,
            "maxAge": seconds,
            "resource": resource,
        }
        body = canonicalize(envelope)
        headers.update(sign_body(body, self._private_jwk, signing_time=now).headers())
        return Response(body, status_code=status_code, headers=headers)


def _tags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {part.strip().removeprefix("W/") for part in header.split(",")}


class SigningMiddleware:
    """Signs every JSON answer the routes did not sign themselves: problems, OpenAPI."""

    def __init__(self, app: ASGIApp, *, signer: AnswerSigner) -> None:
        self._app = app
        self._signer = signer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []
        passing = False

        async def capture(message: Message) -> None:
            nonlocal start, passing
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                passing = _SIGNATURE in names or not _is_json(message)
                if passing:
                    await send(message)
                else:
                    start = message
                return
            if passing or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                assert start is not None
                await self._send_signed(scope, start, b"".join(chunks), send)

        await self._app(scope, receive, capture)

    async def _send_signed(self, scope: Scope, start: Message, body: bytes, send: Send) -> None:
        headers = [
            (name, value)
            for name, value in start.get("headers", [])
            if name.lower() not in (b"content-length", b"digest", _SIGNATURE)
        ]
        if _media_type(start) == b"application/problem+json":
            body = self._stamp_problem(scope, body)
        headers.append((b"content-length", str(len(body)).encode("ascii")))
        for name, value in self._signer.sign(body).items():
            if name.lower() != "content-type":
                headers.append((name.lower().encode("ascii"), value.encode("ascii")))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _stamp_problem(self, scope: Scope, body: bytes) -> bytes:
        try:
            problem = json.loads(body)
        except ValueError:
            return body
        if not isinstance(problem, dict):
            return body
        problem["issuedAt"] = format_time(self._signer.now())
        problem["resource"] = resource_of(scope)
        return canonicalize(problem)


def _media_type(start: Message) -> bytes:
    for name, value in start.get("headers", []):
        if name.lower() == b"content-type":
            return bytes(value).split(b";", 1)[0].strip().lower()
    return b""


def _is_json(start: Message) -> bool:
    media_type = _media_type(start)
    return media_type == b"application/json" or media_type.endswith(b"+json")

"""Dependencies of the agent routes: the service and bearer-token roles."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agent.api.problems import INVALID_INPUT, ProblemSource, problem_responses
from agent.errors import Unauthorised
from agent.service import AgentService
from agent.settings import hash_token

__all__ = ["CaseSystemDep", "OperatorDep", "ServiceDep", "token_router"]

# Every dependency is ``async def``: FastAPI runs a plain ``def`` in a worker thread per request.

_bearer = HTTPBearer(auto_error=False, description="Case system or operator token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _service(request: Request) -> AgentService:
    service: AgentService = request.app.state.service
    return service


def _matches(credentials: HTTPAuthorizationCredentials | None, *hashes: str | None) -> bool:
    if credentials is None:
        return False
    presented = hash_token(credentials.credentials)
    # Constant-time comparison against every configured hash, so timing tells nothing.
    results = [hmac.compare_digest(presented, expected) for expected in hashes if expected]
    return any(results)


async def _case_system(
    service: Annotated[AgentService, Depends(_service)], credentials: Credentials
) -> None:
    settings = service.settings
    if not _matches(credentials, settings.case_system_token_sha256, settings.operator_token_sha256):
        raise Unauthorised("a case system or operator token is required")


async def _operator(
    service: Annotated[AgentService, Depends(_service)], credentials: Credentials
) -> None:
    if not _matches(credentials, service.settings.operator_token_sha256):
        raise Unauthorised("an operator token is required")


ServiceDep = Annotated[AgentService, Depends(_service)]
CaseSystemDep = Depends(_case_system)
OperatorDep = Depends(_operator)


def token_router(tag: str, token: Any, *problems: ProblemSource) -> APIRouter:
    """Routes behind a bearer token (``CaseSystemDep`` or ``OperatorDep``), with the problems
    every one of them can answer: invalid input, a missing token and ``problems``."""
    return APIRouter(
        tags=[tag],
        dependencies=[token],
        responses=problem_responses(INVALID_INPUT, Unauthorised, *problems),
    )

"""Dependencies of the registry routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from registry._state import RegistryState
from registry._store import RegistryStore
from registry.errors import OperatorCredentialRequired

__all__ = [
    "OperatorDep",
    "RegistryDep",
    "StoreDep",
    "get_registry",
    "get_store",
    "require_operator",
]

_bearer = HTTPBearer(auto_error=False, description="Operator bearer token")


async def get_registry(request: Request) -> RegistryState:
    """The application's registry, started on first use."""
    registry: RegistryState = request.app.state.registry
    await registry.ensure_started()
    return registry


RegistryDep = Annotated[RegistryState, Depends(get_registry)]


async def get_store(registry: RegistryDep) -> RegistryStore:
    """The registry's storage."""
    return registry.store


StoreDep = Annotated[RegistryStore, Depends(get_store)]


async def require_operator(
    registry: RegistryDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Refuse the request unless it carries the operator's bearer token."""
    if credentials is None or not registry.operator_token_matches(credentials.credentials):
        raise OperatorCredentialRequired("send the operator token as a Bearer credential")


OperatorDep = Annotated[None, Depends(require_operator)]

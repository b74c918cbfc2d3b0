"""Running the kit against a target: enrol the kit, serve its endpoint, run every case."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from fastapi import FastAPI

from agent.conformance.answers import answer_cases
from agent.conformance.cases import CASES, Case, CaseResult, run_cases
from agent.conformance.endpoint import KitEndpoint
from agent.conformance.gemeente_cases import gemeente_cases
from agent.conformance.kit import Desk, Kit, Planner, enrol_kit
from agent.conformance.progress_cases import progress_cases
from agent.conformance.supplier_cases import supplier_cases
from protocol.clock import Clock, SystemClock
from registry.client import RegistryClient
from registry.operator import OperatorClient

__all__ = ["Serve", "cases_for", "run_conformance"]

# Serves the kit's endpoint application at the kit's endpoint URL while the block runs.
Serve = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def cases_for(role: str) -> tuple[Case, ...]:
    """Every case for a target of ``role``: the answer cases, those off the happy path, then
    section 7."""
    further = supplier_cases() if role == "supplier" else (*gemeente_cases(), *progress_cases())
    return (*answer_cases(role), *further, *CASES)


async def run_conformance(
    *,
    http: httpx.AsyncClient,
    target_url: str,
    target_oin: str,
    role: str,
    registry_url: str,
    trust_anchor: Mapping[str, Any],
    operator_token: str,
    kit_endpoint: str,
    serve: Serve,
    answer_seconds: float = 60.0,
    planner: Planner | None = None,
    desk: Desk | None = None,
    tell: Callable[[str], None] = print,
    clock: Clock | None = None,
) -> list[CaseResult]:
    """Enrol the kit in the target's registry, serve its endpoint and run every case.

    ``role`` is the target's kind (``gemeente`` or ``supplier``); a ``ValueError`` says so when
    the registry knows the target otherwise. ``kit_endpoint`` is the URL the kit registers,
    where ``serve`` makes its endpoint answer; a case waits at most ``answer_seconds`` for a
    message of the target. ``planner`` records a supplier target's contact and takeover,
    ``desk`` does what a person or the BRP does at a gemeente target, and ``tell`` is where the
    kit says what the target's operator must configure or do.
    """
    clock = clock or SystemClock()
    registry = RegistryClient(registry_url, trust_anchor, http=http, clock=clock)
    operator = OperatorClient(registry_url, operator_token, http=http)
    target = await registry.participant(target_oin)
    if target.kind != role:
        raise ValueError(f"the registry knows {target_oin} as a {target.kind}, not a {role}")
    identity = await enrol_kit(
        registry, operator, target=target, endpoint=kit_endpoint, clock=clock
    )
    endpoint = KitEndpoint(
        identity.oin,
        identity.key,
        registry,
        clock,
        also={identity.supplier.oin: identity.supplier.key},
    )
    kit = Kit(
        http,
        target_url,
        target,
        identity,
        registry,
        clock,
        endpoint=endpoint,
        answer_seconds=answer_seconds,
        planner=planner,
        desk=desk,
        tell=tell,
        operator=operator,
    )
    async with serve(endpoint.app()):
        return await run_cases(kit, cases_for(role))

"""Running the kit against a target: enrol the kit, find the target, run every case."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from agent.conformance.cases import CASES, CaseResult, run_cases
from agent.conformance.kit import Kit, enrol_kit
from protocol.clock import Clock, SystemClock
from registry.client import RegistryClient
from registry.operator import OperatorClient

__all__ = ["run_conformance"]


async def run_conformance(
    *,
    http: httpx.AsyncClient,
    target_url: str,
    target_oin: str,
    role: str,
    registry_url: str,
    trust_anchor: Mapping[str, Any],
    operator_token: str,
    kit_endpoint: str = "http://127.0.0.1:9",
    clock: Clock | None = None,
) -> list[CaseResult]:
    """Enrol the kit in the target's registry and run every case against ``target_url``.

    ``role`` is the target's kind (``gemeente`` or ``supplier``); a ``ValueError`` says so when
    the registry knows the target otherwise.

    ``kit_endpoint`` is where the kit says it receives messages (the target's answers, such as
    its device decision, go there; the cases do not wait for them).
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
    kit = Kit(http, target_url, target, identity, registry, clock)
    return await run_cases(kit, CASES)

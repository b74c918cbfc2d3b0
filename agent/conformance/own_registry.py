"""A registry of the kit's own, for a run without a test registry, and the target's enrolment.

The registry runs as a local ``meeverhuizen registry serve`` process (:mod:`agent.local.network`)
with a SQLite file in a work folder. The target must use it: its operator points the agent under
test at the registry's URL and trust anchor. The kit then enrols the target itself, given its
endpoint and public key, or issues an enrolment code and waits until the target has enrolled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agent.local.network import LocalRegistry, start_registry
from protocol.identifiers import oin_for_kvk
from protocol.messages import MESSAGE_TYPES
from registry.client import RegistryClient
from registry.errors import ParticipantNotEnrolled, ParticipantUnknown
from registry.operator import OperatorClient

__all__ = ["TargetEntry", "enrol_target", "own_registry"]

_POLL_SECONDS = 1.0


@asynccontextmanager
async def own_registry(
    folder: Path,
    *,
    host: str,
    port: int,
    http: httpx.AsyncClient,
    endpoint_hosts: Sequence[str],
    signing_jwk: Mapping[str, Any] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> AsyncIterator[LocalRegistry]:
    """Start the registry on ``host:port``, wait until it is ready, stop it after the block."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    started = start_registry(
        folder, port, signing_jwk=signing_jwk, endpoint_hosts=endpoint_hosts, host=host
    )
    try:
        await started.server.wait_ready(http, on_wait=on_wait)
        yield started
    finally:
        await asyncio.to_thread(started.server.stop)


@dataclass(frozen=True)
class TargetEntry:
    """What the registry must know of the target before it can enrol."""

    oin: str
    role: str
    gemeentecode: str | None = None
    name: str = "Leverancier onder test"


async def _enrolment_code(operator: OperatorClient, target: TargetEntry) -> str:
    if target.role == "supplier":
        kvk_number = target.oin[8:16]
        if oin_for_kvk(kvk_number) != target.oin:
            raise ValueError(f"{target.oin} is not a company OIN (00000003 + KvK + 0000)")
        await operator.onboard_supplier(oin=target.oin, kvk_number=kvk_number, name=target.name)
        return await operator.issue_enrolment_code(supplier_oin=target.oin)
    if target.gemeentecode is None:
        raise ValueError("a gemeente target needs its gemeentecode (--target-gemeentecode)")
    return await operator.issue_enrolment_code(gemeentecode=target.gemeentecode)


async def enrol_target(
    registry: RegistryClient,
    operator: OperatorClient,
    target: TargetEntry,
    *,
    endpoint: str | None,
    public_jwk: Mapping[str, Any] | None,
    seconds: float,
    tell: Callable[[str], None],
) -> None:
    """Enrol the target with its endpoint and key, or let its operator enrol it and wait.

    Without ``endpoint`` and ``public_jwk`` the kit prints an enrolment code and waits up to
    ``seconds`` for the target to appear in the registry; a ``ValueError`` says when it did not.
    """
    code = await _enrolment_code(operator, target)
    if endpoint is not None and public_jwk is not None:
        await registry.enrol(
            code=code,
            oin=target.oin,
            endpoint=endpoint,
            protocol_versions=["1.0"],
            message_types=list(MESSAGE_TYPES),
            public_jwks=[public_jwk],
        )
        return
    tell(
        f"enrol the agent under test in the kit's registry with code {code} "
        f"(a Meeverhuizen agent: meeverhuizen agent enrol --config ... --code {code}); "
        f"the kit waits {seconds:.0f} s"
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            await registry.participant(target.oin)
            return
        except (ParticipantUnknown, ParticipantNotEnrolled):
            if loop.time() > deadline:
                raise ValueError(
                    f"the target {target.oin} did not enrol within {seconds:.0f} s"
                ) from None
        await asyncio.sleep(_POLL_SECONDS)

"""What the agent needs from the registry: the subset of ``registry.client.RegistryClient``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from protocol.signing import VerificationKey
from registry.monitoring import DailyReport

__all__ = ["ContractedSupplierEntry", "Directory", "DirectoryEntry"]


class DirectoryEntry(Protocol):
    """A participant as the registry describes it (``registry.client.Participant``)."""

    @property
    def oin(self) -> str | None: ...

    @property
    def endpoint(self) -> str | None: ...

    @property
    def roles(self) -> tuple[str, ...]: ...

    @property
    def gemeentecodes(self) -> tuple[str, ...]: ...


class ContractedSupplierEntry(Protocol):
    """A contracted supplier (``registry.client.ContractedSupplier``)."""

    @property
    def oin(self) -> str: ...

    @property
    def name(self) -> str: ...


class Directory(Protocol):
    """The registry lookups the agent makes; ``RegistryClient`` satisfies it."""

    async def gemeente(
        self, gemeentecode: str, *, message_type: str | None = None
    ) -> DirectoryEntry: ...

    async def participant(
        self, oin: str, *, message_type: str | None = None, refresh: bool = False
    ) -> DirectoryEntry: ...

    async def verification_keys(
        self, oin: str, *, at: datetime | None = None
    ) -> tuple[VerificationKey, ...]: ...

    async def key_history(
        self, oin: str, *, refresh: bool = False
    ) -> tuple[VerificationKey, ...]: ...

    async def contracted_suppliers(
        self, gemeentecode: str, iso_code: str, on: date
    ) -> Sequence[ContractedSupplierEntry]: ...

    async def send_daily_report(
        self, report: DailyReport, *, private_jwk: Mapping[str, Any]
    ) -> None: ...

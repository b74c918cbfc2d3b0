"""The running registry: store, answer signer and operator credential, started once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from protocol.clock import Clock
from protocol.jwk import public_jwk
from registry._answers import AnswerSigner
from registry._db import create_engine
from registry._reports import ReportStore
from registry._store import RegistryStore
from registry.server_kit.endpoints import EndpointRules, Resolver, system_resolver
from registry.settings import RegistrySettings

__all__ = ["RegistryState"]


class RegistryState:
    """Everything a request handler needs; one per application, created by ``create_app``."""

    def __init__(
        self,
        settings: RegistrySettings,
        *,
        signing_jwk: Mapping[str, Any],
        clock: Clock,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.settings = settings
        # Production: endpoints are https on public addresses (or allow-listed); development
        # takes any endpoint, so agents on one machine can enrol without configuration.
        self.endpoint_rules = (
            None
            if settings.environment == "development"
            else EndpointRules(settings.endpoint_allow_list, resolver=resolver)
        )
        self.clock = clock
        self.trust_anchor = public_jwk(signing_jwk)
        self.signer = AnswerSigner(signing_jwk, clock=clock, max_age=settings.answer_max_age)
        engine = create_engine(settings.database_url)
        self.store = RegistryStore(
            engine, clock=clock, enrolment_code_ttl=settings.enrolment_code_ttl
        )
        self.reports = ReportStore(engine, clock=clock)
        self._operator_token_hash = settings.operator_token_hash()
        self._started = False
        self._lock = asyncio.Lock()

    async def ensure_started(self) -> None:
        """Create tables and seed gemeenten once (lifespan, or the first request without one)."""
        if self._started:
            return
        async with self._lock:
            if not self._started:
                await self.store.start()
                self._started = True

    async def close(self) -> None:
        await self.store.close()
        self._started = False

    async def check_endpoint(self, endpoint: str) -> None:
        """Refuse an endpoint other agents must not be sent to (``EndpointNotAllowed``)."""
        if self.endpoint_rules is not None:
            await self.endpoint_rules.check(endpoint)

    def operator_token_matches(self, token: str) -> bool:
        """Constant-time check of a presented operator token against the stored hash."""
        if self._operator_token_hash is None:
            return False
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        return hmac.compare_digest(presented, self._operator_token_hash)

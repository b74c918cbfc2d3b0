"""Client for the operator's actions: enrolment codes, suppliers, contracts, revocation.

Used by the ``meeverhuizen registry`` commands, by tests and by the demo. The operator talks to
its own registry; answers are still signed, but this client does not need the trust anchor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import httpx

from registry.errors import RegistryError, RegistryUnavailable, error_for_code

__all__ = ["OperatorClient"]

_PROBLEM_PREFIX = "urn:meeverhuizen:problem:"


class OperatorClient:
    """The registry operator's actions, authenticated with the operator bearer token."""

    def __init__(self, base_url: str, token: str, *, http: httpx.AsyncClient) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._http = http

    async def issue_enrolment_code(
        self, *, gemeentecode: str | None = None, supplier_oin: str | None = None
    ) -> str:
        """A one-time enrolment code for a gemeente (by code) or an onboarded supplier (by OIN)."""
        target = {"gemeentecode": gemeentecode, "supplierOin": supplier_oin}
        payload = {name: value for name, value in target.items() if value is not None}
        data = await self._post("/v1/enrolment-codes", payload)
        return str(data["code"])

    async def onboard_supplier(self, *, oin: str, kvk_number: str, name: str) -> None:
        """Add a supplier; it enrols its agent later with an enrolment code."""
        await self._post("/v1/suppliers", {"oin": oin, "kvkNumber": kvk_number, "name": name})

    async def add_contract(
        self,
        *,
        gemeentecode: str,
        supplier_oin: str,
        iso_prefixes: Sequence[str],
        valid_from: date,
        valid_until: date | None = None,
        preference: int = 1,
    ) -> str:
        """Record a contract; returns its id."""
        payload = {
            "gemeentecode": gemeentecode,
            "supplierOin": supplier_oin,
            "isoPrefixes": list(iso_prefixes),
            "validFrom": valid_from.isoformat(),
            "validUntil": valid_until.isoformat() if valid_until else None,
            "preference": preference,
        }
        data = await self._post("/v1/contracts", payload)
        return str(data["contractId"])

    async def assign_gemeenten(self, *, oin: str, gemeentecodes: Sequence[str]) -> None:
        """Let a gemeente's agent serve these gemeentecodes (its own among them)."""
        await self._post(
            f"/v1/participants/{oin}/served-gemeenten", {"gemeentecodes": list(gemeentecodes)}
        )

    async def revoke_key(
        self, *, oin: str, kid: str, reason: str, at: datetime | None = None
    ) -> None:
        """Revoke a participant's key from ``at`` (default: now)."""
        payload: dict[str, Any] = {"reason": reason}
        if at is not None:
            payload["revokedAt"] = at.astimezone(UTC).isoformat()
        await self._post(f"/v1/participants/{oin}/keys/{kid}/revocation", payload)

    async def audit_events(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit events, newest first."""
        data = await self._send("GET", f"/v1/audit-events?limit={int(limit)}", None)
        return list(data)

    async def _post(self, path: str, payload: Mapping[str, Any]) -> Any:
        return await self._send("POST", path, payload)

    async def _send(self, method: str, path: str, payload: Mapping[str, Any] | None) -> Any:
        try:
            response = await self._http.request(
                method, self._base_url + path, json=payload, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"registry unreachable ({type(exc).__name__})") from exc
        try:
            document = response.json()
        except ValueError as exc:
            raise RegistryUnavailable(
                f"registry answered {response.status_code} without JSON"
            ) from exc
        if response.is_success and isinstance(document, dict):
            return document.get("data")
        raise _problem(document, response.status_code)


def _problem(document: Any, status: int) -> RegistryError:
    if not isinstance(document, dict):
        return RegistryError(f"registry answered {status}")
    code = str(document.get("type", "")).removeprefix(_PROBLEM_PREFIX)
    detail = str(document.get("detail") or document.get("title") or f"registry answered {status}")
    return error_for_code(code)(detail)

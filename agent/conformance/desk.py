"""What a person or the BRP does at a gemeente target while a case waits, by hand or by API.

Some flows wait for a person: the client's consent, a delivered alternative; some start from the
target's register or its BRP. :class:`OperatorDesk` asks the target's operator to do each step
in time; :class:`AgentDesk` does them through the API of a Meeverhuizen agent (the case
system's token, and the BRP's push token for a move in).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date
from typing import Any

import httpx

from agent.conformance.kit import CaseFailed
from protocol.clock import Clock, SystemClock

__all__ = ["AgentDesk", "OperatorDesk"]

_CLOUDEVENT = "application/cloudevents+json"


@dataclass(frozen=True)
class OperatorDesk:
    """Asks the target's operator to do each step by hand within the time the kit waits."""

    tell: Callable[[str], None]

    async def add_client(self, client: Mapping[str, Any], *, seconds: float) -> None:
        devices = ", ".join(
            f"{d['deviceId']} (ISO {d['isoCode']}, {d['ownership']}, supplier "
            f"{d['supplier']['oin']})"
            for d in client["devices"]
        )
        self.tell(
            f"add client {client['bsn']} with device {devices} to the register of the agent "
            f"under test (as JSON: {json.dumps(client, ensure_ascii=False)}); the kit asks "
            f"for the client's dossier in {seconds:.0f} s"
        )
        # A request for a client the register does not hold starts nothing: wait for the import.
        await asyncio.sleep(seconds)

    async def give_consent(
        self, *, bsn: str, asked_by: str, device_ids: list[str], seconds: float
    ) -> None:
        self.tell(
            f"record the consent of client {bsn} (identity, address, devices; device "
            f"{', '.join(device_ids)}) in the agent under test; the kit waits {seconds:.0f} s "
            "for its dossier-offer"
        )

    async def deliver_alternative(
        self, *, dossier_id: str, device_id: str, delivered_on: date, seconds: float
    ) -> None:
        self.tell(
            f"record in the agent under test that the alternative for device {device_id} in "
            f"dossier {dossier_id} was delivered on {delivered_on.isoformat()}; the kit waits "
            f"{seconds:.0f} s for its alternative-delivered"
        )

    async def report_move_in(self, event: Mapping[str, Any], *, seconds: float) -> None:
        data = event["data"]
        self.tell(
            f"let the BRP tell the agent under test that {data['burgerservicenummer']} moved "
            f"in from gemeente {data['vorigeGemeenteVanInschrijving']['code']} (CloudEvent: "
            f"{json.dumps(event, ensure_ascii=False)}); the kit waits {seconds:.0f} s for its "
            "dossier-request"
        )


@dataclass(frozen=True)
class AgentDesk:
    """The API of a Meeverhuizen gemeente agent: register import, consent, alternatives, BRP.

    Without ``brp_token`` the move in is asked of the operator (``tell``).
    """

    http: httpx.AsyncClient
    base_url: str
    token: str
    tell: Callable[[str], None]
    brp_token: str | None = None
    clock: Clock = field(default_factory=SystemClock)

    async def add_client(self, client: Mapping[str, Any], *, seconds: float) -> None:
        response = await self._post("/v1/provisions/imports", [dict(client)])
        self._expect(response, 201, "the import of the kit's client into the register")

    async def give_consent(
        self, *, bsn: str, asked_by: str, device_ids: list[str], seconds: float
    ) -> None:
        dossier_id = await self._requested_dossier(asked_by)
        consent = {
            "dataKinds": ["identity", "address", "devices"],
            "deviceIds": device_ids,
            "channel": "online",
            "givenBy": "client",
            "givenAt": self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        response = await self._post(f"/v1/dossiers/{dossier_id}/consent", consent)
        self._expect(response, 200, "recording the client's consent")

    async def _requested_dossier(self, asked_by: str) -> str:
        response = await self.http.get(
            self._url("/v1/dossiers"),
            params={"state": "waiting-for-consent"},
            headers=self._auth(self.token),
        )
        self._expect(response, 200, "listing the dossiers that wait for consent")
        waiting = [d for d in response.json() if d.get("partnerOin") == asked_by]
        if not waiting:
            raise CaseFailed(
                "the target started no dossier that waits for consent for the kit's request"
            )
        return str(waiting[0]["dossierId"])  # newest first

    async def deliver_alternative(
        self, *, dossier_id: str, device_id: str, delivered_on: date, seconds: float
    ) -> None:
        path = f"/v1/dossiers/{dossier_id}/devices/{device_id}/alternative-delivered"
        delivery = {"deliveredOn": delivered_on.isoformat(), "doneBy": "Conformancekit"}
        self._expect(await self._post(path, delivery), 200, "recording the alternative")

    async def report_move_in(self, event: Mapping[str, Any], *, seconds: float) -> None:
        if self.brp_token is None:
            await OperatorDesk(self.tell).report_move_in(event, seconds=seconds)
            return
        response = await self.http.post(
            self._url("/v1/brp-events"),
            content=json.dumps(event).encode(),
            headers={"Content-Type": _CLOUDEVENT, **self._auth(self.brp_token)},
        )
        self._expect(response, 202, "the BRP event of the move in")

    async def _post(self, path: str, document: Any) -> httpx.Response:
        return await self.http.post(self._url(path), json=document, headers=self._auth(self.token))

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @staticmethod
    def _expect(response: httpx.Response, status: int, what: str) -> None:
        if response.status_code != status:
            raise CaseFailed(
                f"the target's API refused {what}: {response.status_code} {_problem_type(response)}"
            )


def _problem_type(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return ""
    kind = document.get("type") if isinstance(document, dict) else None
    return kind if isinstance(kind, str) else ""

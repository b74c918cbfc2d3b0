"""The receiving gemeente on one device: its decision changed, its alternative delivered."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import Path
from pydantic import Field

from agent.api.deps import CaseSystemDep, ServiceDep, token_router
from agent.api.problems import BODY_TOO_LARGE, problem_responses
from agent.api_model import ApiModel
from agent.core.views import DossierView
from agent.errors import (
    DecisionNotChangeable,
    DeviceTakenOver,
    DirectoryUnavailable,
    DossierUnknown,
    IllegalTransition,
    ProvisionUnknown,
)
from agent.service import DecisionChange

__all__ = ["AlternativeDelivery", "alternative_delivered", "change_decision", "router"]

DeviceId = Annotated[str, Path(alias="deviceId", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]

router = token_router("dossiers", CaseSystemDep)


class AlternativeDelivery(ApiModel):
    """When the alternative was delivered, and who reports it (a name, not a client id)."""

    delivered_on: date
    done_by: str = Field(min_length=1, max_length=100)


@router.post(
    "/dossiers/{dossierId}/devices/{deviceId}/alternative-delivered",
    responses=problem_responses(BODY_TOO_LARGE, DossierUnknown, IllegalTransition),
)
async def alternative_delivered(
    dossier_id: Annotated[uuid.UUID, Path(alias="dossierId")],
    device_id: DeviceId,
    delivery: AlternativeDelivery,
    service: ServiceDep,
) -> DossierView:
    """The client has the alternative: the previous gemeente and its supplier are told."""
    return await service.alternative_delivered(
        str(dossier_id), device_id, delivered_on=delivery.delivered_on, done_by=delivery.done_by
    )


@router.post(
    "/dossiers/{dossierId}/devices/{deviceId}/decision",
    responses=problem_responses(
        BODY_TOO_LARGE,
        DossierUnknown,
        ProvisionUnknown,
        DecisionNotChangeable,
        DeviceTakenOver,
        DirectoryUnavailable,
    ),
)
async def change_decision(
    dossier_id: Annotated[uuid.UUID, Path(alias="dossierId")],
    device_id: DeviceId,
    change: DecisionChange,
    service: ServiceDep,
) -> DossierView:
    """Change the decision for a device not yet taken over; the previous gemeente is told."""
    return await service.change_decision(str(dossier_id), device_id, change)

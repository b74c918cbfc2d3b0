"""The receiving gemeente reports that the alternative for an excepted device is delivered."""

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
from agent.errors import DossierUnknown, IllegalTransition

__all__ = ["AlternativeDelivery", "alternative_delivered", "router"]

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
    device_id: Annotated[
        str, Path(alias="deviceId", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    ],
    delivery: AlternativeDelivery,
    service: ServiceDep,
) -> DossierView:
    """The client has the alternative: the previous gemeente and its supplier are told."""
    return await service.alternative_delivered(
        str(dossier_id), device_id, delivered_on=delivery.delivered_on, done_by=delivery.done_by
    )

"""Dossiers for the gemeente's case system: start, consent, list by state, one with timeline."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path, Query, Response
from pydantic import AfterValidator, Field

from agent.api.deps import CaseSystemDep, ServiceDep, token_router
from agent.api.problems import BODY_TOO_LARGE, problem_responses
from agent.api_model import ApiModel
from agent.consent.flow import ConsentInput
from agent.core.states import STATES
from agent.core.views import DossierStart, DossierSummary, DossierView
from agent.errors import (
    ConsentByWrongPerson,
    ConsentMissing,
    DirectoryUnavailable,
    DossierUnknown,
    IllegalTransition,
    NothingToMove,
    ProvisionUnknown,
    ReceiverNotConnected,
)

__all__ = [
    "CaseWorkerReason",
    "consented_dossier",
    "get_dossier",
    "list_dossiers",
    "mark_urgent",
    "record_consent",
    "router",
    "start_dossier",
    "stop_for_wlz",
]

router = token_router("dossiers", CaseSystemDep)

DossierId = Annotated[uuid.UUID, Path(alias="dossierId")]


def _known_state(state: str | None) -> str | None:
    if state is not None and state not in STATES:
        raise ValueError(f"not a dossier state; one of {', '.join(sorted(STATES))}")
    return state


StateQuery = Annotated[
    str | None,
    Query(description="Only dossiers in this state", json_schema_extra={"enum": sorted(STATES)}),
    AfterValidator(_known_state),
]


@router.get("/dossiers")
async def list_dossiers(
    service: ServiceDep,
    state: StateQuery = None,
) -> list[DossierSummary]:
    """List dossiers, optionally in one state."""
    return await service.list_dossiers(state)


@router.post(
    "/dossiers",
    status_code=201,
    responses=problem_responses(BODY_TOO_LARGE, ProvisionUnknown, NothingToMove),
)
async def start_dossier(start: DossierStart, service: ServiceDep) -> DossierView:
    """Start a handover for a client in the register (BSN in the body)."""
    return await service.start_dossier(start)


@router.get("/dossiers/{dossierId}", responses=problem_responses(DossierUnknown))
async def get_dossier(dossier_id: DossierId, service: ServiceDep) -> DossierView:
    """One dossier with its timeline and decisions."""
    return await service.dossier(str(dossier_id))


@router.post(
    "/dossiers/{dossierId}/consent",
    responses=problem_responses(
        BODY_TOO_LARGE,
        DossierUnknown,
        ProvisionUnknown,
        ConsentMissing,
        ConsentByWrongPerson,
        IllegalTransition,
        ReceiverNotConnected,
        DirectoryUnavailable,
    ),
)
async def record_consent(
    dossier_id: DossierId, consent: ConsentInput, service: ServiceDep
) -> DossierView:
    """Record the client's consent or refusal; with consent the offer is sent."""
    return await service.record_consent(str(dossier_id), consent)


class CaseWorkerReason(ApiModel):
    """Why a case worker acts (Dutch, for colleagues; no BSN)."""

    reason: str = Field(min_length=1, max_length=500)


@router.post(
    "/dossiers/{dossierId}/urgency",
    responses=problem_responses(BODY_TOO_LARGE, DossierUnknown, IllegalTransition),
)
async def mark_urgent(
    dossier_id: DossierId, body: CaseWorkerReason, service: ServiceDep
) -> DossierView:
    """Mark a dossier urgent: the client cannot be without a device (shorter deadlines)."""
    return await service.dossiers.mark_urgent(str(dossier_id), reason=body.reason)


@router.post(
    "/dossiers/{dossierId}/wlz-institution",
    responses=problem_responses(BODY_TOO_LARGE, DossierUnknown, IllegalTransition),
)
async def stop_for_wlz(
    dossier_id: DossierId, body: CaseWorkerReason, service: ServiceDep
) -> DossierView:
    """The client moves into a Wlz institution: the Wmo takeover stops (zorgkantoor)."""
    return await service.stop_for_wlz(str(dossier_id), reason=body.reason)


@router.get(
    "/dossiers/{dossierId}/consented-dossier",
    response_class=Response,
    responses={
        **problem_responses(DossierUnknown, ConsentMissing, IllegalTransition),
        200: {"content": {"application/pdf": {}}},
    },
)
async def consented_dossier(dossier_id: DossierId, service: ServiceDep) -> Response:
    """The dossier with what the client consented to, as PDF, to send by secure mail."""
    pdf = await service.consent.consented_dossier_pdf(str(dossier_id))
    return Response(pdf, media_type="application/pdf")

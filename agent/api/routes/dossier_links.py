"""The case worker's actions on a dossier's personal link: revoke it, issue a new one (issue 6).

The token never appears in an answer: a new link goes to the client through the configured
delivery channels only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path

from agent._views import ApiModel
from agent.api._problems import INVALID_INPUT, problem_responses
from agent.api.deps import CaseSystemDep, ServiceDep
from agent.errors import DossierUnknown, Unauthorised

__all__ = [
    "LinkIssued",
    "LinkRevoked",
    "issue_link",
    "revoke_link",
    "router",
]

router = APIRouter(
    tags=["dossiers"],
    dependencies=[CaseSystemDep],
    responses=problem_responses(INVALID_INPUT, Unauthorised, DossierUnknown),
)

DossierId = Annotated[uuid.UUID, Path(alias="dossierId")]


class LinkRevoked(ApiModel):
    """Every personal link of the dossier stopped working; open page sessions ended."""

    dossier_id: str
    revoked_at: datetime
    revoked_links: int


class LinkIssued(ApiModel):
    """A new personal link went out (the token itself is never in this answer)."""

    dossier_id: str
    issued_at: datetime
    expires_at: datetime
    revoked_links: int
    delivered_by: tuple[str, ...]


@router.post("/dossiers/{dossierId}/link/revocation")
async def revoke_link(dossier_id: DossierId, service: ServiceDep) -> LinkRevoked:
    """Revoke the client's personal link, for example when it was lost or shared."""
    revocation = await service.consent.revoke(str(dossier_id))
    return LinkRevoked(
        dossier_id=revocation.dossier_id,
        revoked_at=revocation.revoked_at,
        revoked_links=revocation.revoked_links,
    )


@router.post("/dossiers/{dossierId}/link", status_code=201)
async def issue_link(dossier_id: DossierId, service: ServiceDep) -> LinkIssued:
    """Send the client a new personal link; earlier links stop working."""
    issue = await service.consent.issue_new_link(str(dossier_id))
    return LinkIssued(
        dossier_id=issue.dossier_id,
        issued_at=issue.issued_at,
        expires_at=issue.expires_at,
        revoked_links=issue.revoked_links,
        delivered_by=issue.delivered_by,
    )

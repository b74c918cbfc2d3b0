"""The case worker's actions on a dossier's personal link: revoke it, issue a new one.

The token never appears in an answer: a new link goes to the client through the configured
delivery channels only.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path

from agent.api.deps import CaseSystemDep, ServiceDep, token_router
from agent.consent.flow import LinkIssue, LinkRevocation
from agent.errors import DossierUnknown

__all__ = ["issue_link", "revoke_link", "router"]

router = token_router("dossiers", CaseSystemDep, DossierUnknown)

DossierId = Annotated[uuid.UUID, Path(alias="dossierId")]


@router.post("/dossiers/{dossierId}/link/revocation")
async def revoke_link(dossier_id: DossierId, service: ServiceDep) -> LinkRevocation:
    """Revoke the client's personal link, for example when it was lost or shared."""
    return await service.consent.revoke(str(dossier_id))


@router.post("/dossiers/{dossierId}/link", status_code=201)
async def issue_link(dossier_id: DossierId, service: ServiceDep) -> LinkIssue:
    """Send the client a new personal link; earlier links stop working."""
    return await service.consent.issue_new_link(str(dossier_id))

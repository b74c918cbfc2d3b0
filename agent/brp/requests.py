"""A dossier-request from the gemeente someone moved to: the departing side starts the handover.

The receiving gemeente learns of a move in from its own BRP events before the departing gemeente
may have acted (a missed event, a late one). Its request names the client and the new address;
a client in this gemeente's register with a movable device gets a dossier, as a BRP event would
have started it, and the offer goes to the gemeente that asked once the client consents.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.context import AgentContext
from agent.core.dossiers import Dossiers
from agent.core.hooks import Hooks
from agent.core.views import DossierStart
from agent.errors import MessageNotHandled
from agent.storage.tables import ClientRow, DeviceRow, DossierRow
from protocol.messages import DossierRequest, Message

__all__ = ["DossierRequests"]


class DossierRequests:
    """Departing side: takes dossier-requests of receiving gemeenten."""

    def __init__(self, agent: AgentContext, *, dossiers: Dossiers) -> None:
        self._agent = agent
        self._dossiers = dossiers

    def register(self, hooks: Hooks) -> None:
        hooks.handle("dossier-request", self.on_request)

    async def on_request(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Start a dossier for the move the asking gemeente saw, unless one is open already."""
        request = message.body
        assert isinstance(request, DossierRequest)
        # Inbound checked that this agent serves the previous gemeente (one of its region).
        if request.new_address is None:
            raise MessageNotHandled("a dossier-request needs newAddress to build the offer")
        open_dossier = await session.scalar(
            select(DossierRow.id)
            .where(DossierRow.client_bsn == request.bsn, DossierRow.side == "departing")
            .where(DossierRow.state.not_in(("completed", "cancelled", "failed")))
            .limit(1)
        )
        if open_dossier is not None:
            return
        movable = await session.scalar(
            select(DeviceRow.id)
            .join(ClientRow, DeviceRow.client_id == ClientRow.id)
            .where(ClientRow.bsn == request.bsn, DeviceRow.movable.is_(True))
            .limit(1)
        )
        if movable is None:
            # No provision with a movable device: nothing is started (the receipt still answers).
            return
        start = DossierStart(
            bsn=request.bsn, move_date=request.move_date, new_address=request.new_address
        )
        cause = f"dossier-request {message.message_id} received"
        dossier = await self._dossiers.start_in(
            session, start, cause=cause, now=now, gemeentecode=request.previous_gemeentecode
        )
        dossier.partner_oin = message.sender.oin

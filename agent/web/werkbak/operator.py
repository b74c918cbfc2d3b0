"""The operator's page: dead letters with their last error, requeue, and the connections."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from agent.errors import AgentError
from agent.service import AgentService
from agent.web.werkbak.rendering import (
    ServiceDep,
    SessionDep,
    message,
    posted_form,
    redirect,
    render,
    require,
)
from registry.errors import RegistryError, RegistryUnavailable

__all__ = ["Peer", "overview", "requeue", "router"]

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Peer:
    """Another agent this one sends to, with how delivery stands."""

    oin: str
    pending: int
    delivered: int
    dead: int
    last_error: str | None


async def _registry_state(service: AgentService) -> str:
    """How the registry answers about this agent, in a sentence."""
    try:
        entry = await service.directory.participant(service.settings.oin)
    except RegistryUnavailable:
        return "Niet bereikbaar, en de bewaarde antwoorden zijn te oud."
    except RegistryError:
        return "Bereikbaar, maar deze organisatie staat er (nog) niet in."
    return f"Bereikbaar. Wij staan erin met het adres {entry.endpoint}."


@router.get("/werkbak/beheer", response_class=HTMLResponse)
async def overview(request: Request, service: ServiceDep, session: SessionDep) -> Response:
    """Dead letters, and the registry and peers this agent delivers to."""
    if isinstance(checked := require(request, session, "operator"), HTMLResponse):
        return checked
    entries = await service.outbox.list()
    peers: dict[str, Peer] = {}
    for entry in entries:
        if entry.destination_oin is None:
            continue
        peer = peers.get(entry.destination_oin) or Peer(entry.destination_oin, 0, 0, 0, None)
        peers[entry.destination_oin] = Peer(
            peer.oin,
            peer.pending + (entry.state == "pending"),
            peer.delivered + (entry.state == "delivered"),
            peer.dead + (entry.state == "dead"),
            entry.last_error or peer.last_error,
        )
    return render(
        request,
        "operator.html",
        session,
        title="Beheer",
        dead=[entry for entry in entries if entry.state == "dead"],
        peers=sorted(peers.values(), key=lambda peer: peer.oin),
        registry_url=service.settings.registry_url,
        registry_state=await _registry_state(service),
        scheduler_running=service.scheduler_running(),
    )


@router.post("/werkbak/beheer/berichten/{message_id}/opnieuw")
async def requeue(
    message_id: str, request: Request, service: ServiceDep, session: SessionDep
) -> Response:
    """Put a dead message back in the queue; the delivery job tries it again."""
    if isinstance(checked := await posted_form(request, session, "operator"), HTMLResponse):
        return checked
    try:
        await service.outbox.requeue(message_id)
    except AgentError:
        return message(request, session, 404, "Niet gevonden", "Dit bericht bestaat niet.")
    service.wake()
    return redirect("/werkbak/beheer?melding=opnieuw")

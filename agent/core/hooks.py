"""What the capabilities add to the dossier core: message handlers, hooks on state changes, jobs.

The core runs a dossier's states and its own messages (offer, decision, cancellation) and knows
no capability. Each capability (consent, the supplier side, BRP events) registers here, once, at
start-up (``agent.service``), what it adds: the handler of each message type it receives, what
it does when a dossier enters a state, and the jobs it needs run on a schedule. Every hook runs
inside the transaction of the change that calls it, so its work commits or rolls back with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from agent.delivery.outbox import DeliveredMessage
from agent.errors import MessageNotHandled
from agent.storage.polling import PollGate
from agent.storage.tables import DossierRow
from protocol.messages import DeviceDecision, DossierCancelled, DossierOffer, Message

__all__ = [
    "CancelHook",
    "DecisionHook",
    "DecisionUpdate",
    "DecisionUpdateHook",
    "DeliveredHook",
    "Hooks",
    "Job",
    "MessageHandler",
    "Preparation",
    "StateChange",
    "StateHook",
]


@dataclass(frozen=True)
class StateChange:
    """A dossier that has just entered ``target``; ``message`` is the inbound cause, if any."""

    dossier: DossierRow
    previous: str | None
    target: str
    cause: str
    now: datetime
    message: Message | None = None

    @property
    def received_decision(self) -> DeviceDecision | None:
        """Departing side: the receiving gemeente's device decision that caused this change."""
        body = self.message.body if self.message is not None else None
        if self.dossier.side != "departing" or not isinstance(body, DeviceDecision):
            return None
        return body


@dataclass(frozen=True)
class DecisionUpdate:
    """Departing side: a later device decision for a decided dossier, before it is stored.

    ``before``: each device's outcome until now, so a hook sees per device what changed.
    """

    dossier: DossierRow
    message: Message
    before: Mapping[str, str]
    now: datetime

    @property
    def decision(self) -> DeviceDecision:
        body = self.message.body
        assert isinstance(body, DeviceDecision)
        return body

    def was(self, outcome: str) -> frozenset[str]:
        """The devices whose outcome until now was ``outcome``."""
        return frozenset(device for device, was in self.before.items() if was == outcome)


MessageHandler = Callable[[AsyncSession, Message, datetime], Awaitable[None]]
# Registry look-ups a message will need, made before its transaction (no network call inside).
Preparation = Callable[[Message], Awaitable[None]]
StateHook = Callable[[AsyncSession, StateChange], Awaitable[None]]
DecisionUpdateHook = Callable[[AsyncSession, DecisionUpdate], Awaitable[None]]
DeliveredHook = Callable[[AsyncSession, DeliveredMessage, datetime], Awaitable[None]]
# Receiving side, before the device decision is sent: may add to it (the receiving supplier).
DecisionHook = Callable[
    [AsyncSession, DossierRow, DossierOffer, DeviceDecision, datetime], Awaitable[DeviceDecision]
]
# A dossier was cancelled (also one already completed): tell whoever the capability told.
CancelHook = Callable[[AsyncSession, DossierRow, DossierCancelled, datetime], Awaitable[None]]


@dataclass(frozen=True)
class Job:
    """A job run every ``seconds``; when ``run`` returns True, delivery is woken afterwards.

    ``at_start``: the first run is when the scheduler starts, else one interval later.
    ``gate``: a run is left out while the gate says nothing is due.
    """

    name: str
    seconds: float
    run: Callable[[], Awaitable[bool]]
    at_start: bool = True
    gate: PollGate | None = None


@dataclass
class Hooks:
    """The registrations of one agent; filled at start-up, read by the core."""

    handlers: dict[str, MessageHandler] = field(default_factory=dict)
    preparations: list[Preparation] = field(default_factory=list)
    state_hooks: dict[str, list[StateHook]] = field(default_factory=dict)
    delivered_hooks: list[DeliveredHook] = field(default_factory=list)
    decision_hooks: list[DecisionHook] = field(default_factory=list)
    decision_update_hooks: list[DecisionUpdateHook] = field(default_factory=list)
    cancel_hooks: list[CancelHook] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)

    def handle(self, message_type: str, handler: MessageHandler) -> None:
        """Let ``handler`` apply every inbound message of this type (one handler per type)."""
        if message_type in self.handlers:
            raise ValueError(f"{message_type} has a handler already")
        self.handlers[message_type] = handler

    def prepare(self, preparation: Preparation) -> None:
        """Run ``preparation`` for every inbound message before its transaction."""
        self.preparations.append(preparation)

    def on_state(self, hook: StateHook, *states: str) -> None:
        """Run ``hook`` when a dossier enters one of ``states``."""
        for state in states:
            self.state_hooks.setdefault(state, []).append(hook)

    def on_delivered(self, hook: DeliveredHook) -> None:
        """Run ``hook`` when an outbox message has been receipted."""
        self.delivered_hooks.append(hook)

    def on_decision(self, hook: DecisionHook) -> None:
        """Receiving side: run ``hook`` on the device decision before it is sent."""
        self.decision_hooks.append(hook)

    def on_decision_update(self, hook: DecisionUpdateHook) -> None:
        """Departing side: run ``hook`` on a later device decision for a decided dossier."""
        self.decision_update_hooks.append(hook)

    def on_cancel(self, hook: CancelHook) -> None:
        """Run ``hook`` when a dossier is cancelled, by this agent or by its partner."""
        self.cancel_hooks.append(hook)

    def every(
        self,
        seconds: float,
        name: str,
        run: Callable[[], Awaitable[bool]],
        *,
        at_start: bool = True,
        gate: PollGate | None = None,
    ) -> None:
        """Run ``run`` every ``seconds`` while the scheduler runs (and ``gate`` says it is due)."""
        self.jobs.append(Job(name, seconds, run, at_start, gate))

    # --- what the core calls -------------------------------------------------------------------

    async def apply(self, session: AsyncSession, message: Message, now: datetime) -> None:
        """Apply an inbound message with the handler of its type."""
        handler = self.handlers.get(message.message_type)
        if handler is None:
            raise MessageNotHandled(f"{message.message_type} is not handled by this agent")
        await handler(session, message, now)

    async def entered(self, session: AsyncSession, change: StateChange) -> None:
        for hook in self.state_hooks.get(change.target, ()):
            await hook(session, change)

    async def delivered(self, session: AsyncSession, row: DeliveredMessage, now: datetime) -> None:
        for hook in self.delivered_hooks:
            await hook(session, row, now)

"""The dossier state machine, departing and receiving side; transitions as data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from agent.errors import IllegalTransition

__all__ = [
    "DEPARTING_TRANSITIONS",
    "OPEN_STATES",
    "RECEIVING_TRANSITIONS",
    "STATES",
    "UNSERVED_TASKS",
    "WITHDRAWABLE_STATES",
    "WLZ_STOPPED",
    "Side",
    "check_transition",
    "decision_may_change",
    "initial_state",
]

Side = Literal["departing", "receiving"]

_DEPARTING_HAPPY: Final = {
    "started": ("waiting-for-consent",),
    "waiting-for-consent": ("consent-given", "consent-refused", "consent-expired"),
    "consent-given": ("offer-sent",),
    "offer-sent": ("decided",),
    # orders-placed: the departure notices to the suppliers go between these two.
    "decided": ("orders-placed", "completed"),
    "orders-placed": ("completed",),
}
_RECEIVING_HAPPY: Final = {
    "offer-received": ("decided",),
    # orders-placed: the takeover orders to the contracted suppliers.
    "decided": ("orders-placed", "completed"),
    "orders-placed": ("completed",),
}
# Off the happy path on the departing side: the receiving gemeente has no agent (a consulent
# sends the dossier by secure mail; when the gemeente connects, the offer can still go), and a
# move into a Wlz institution (the zorgkantoor provides from then on; final).
_DEPARTING_MANUAL: Final = {
    "consent-given": ("receiver-not-connected",),
    "receiver-not-connected": ("offer-sent",),
}
WLZ_STOPPED: Final = "wlz-institution"
_DECISION_CHANGE_STATES: Final = frozenset({"decided", "orders-placed"})
_ENDINGS: Final = ("cancelled", "failed")


def _with_endings(
    happy: dict[str, tuple[str, ...]], *more: tuple[str, ...]
) -> dict[str, frozenset[str]]:
    # Every open (non-final) state may end in cancelled or failed (and in ``more``).
    ends = tuple(state for group in (_ENDINGS, *more) for state in group)
    return {state: frozenset((*targets, *ends)) for state, targets in happy.items()}


def _merged(*tables: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    merged: dict[str, tuple[str, ...]] = {}
    for table in tables:
        for state, targets in table.items():
            merged[state] = (*merged.get(state, ()), *targets)
    return merged


DEPARTING_TRANSITIONS: Final[dict[str, frozenset[str]]] = _with_endings(
    _merged(_DEPARTING_HAPPY, _DEPARTING_MANUAL), (WLZ_STOPPED,)
)
RECEIVING_TRANSITIONS: Final[dict[str, frozenset[str]]] = _with_endings(_RECEIVING_HAPPY)
_TABLES: Final[dict[Side, dict[str, frozenset[str]]]] = {
    "departing": DEPARTING_TRANSITIONS,
    "receiving": RECEIVING_TRANSITIONS,
}
# Consent can be withdrawn at any time once given, also after completion.
WITHDRAWABLE_STATES: Final[dict[Side, frozenset[str]]] = {
    "departing": frozenset(
        {"consent-given", "offer-sent", "decided", "orders-placed", "completed"}
        | {"receiver-not-connected"}
    ),
    "receiving": frozenset({"offer-received", "decided", "orders-placed", "completed"}),
}
OPEN_STATES: Final[frozenset[str]] = frozenset(DEPARTING_TRANSITIONS) | frozenset(
    RECEIVING_TRANSITIONS
)
STATES: Final[frozenset[str]] = frozenset(
    state
    for table in _TABLES.values()
    for source, targets in table.items()
    for state in (source, *targets)
) | {"consent-withdrawn"}


def initial_state(side: Side) -> str:
    """State a new dossier of this side starts in."""
    return "started" if side == "departing" else "offer-received"


def check_transition(side: Side, current: str, target: str) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> target`` is allowed on ``side``."""
    if target == "consent-withdrawn" and current in WITHDRAWABLE_STATES[side]:
        return
    if target not in _TABLES[side].get(current, frozenset()):
        raise IllegalTransition(f"a {side} dossier cannot go from {current} to {target}")


# A person's open tasks for a device to take over that no supplier takes over: every contracted
# supplier refused, or none is contracted.
UNSERVED_TASKS: Final = ("no-supplier", "supplier-refused")


def decision_may_change(state: str, outcome: str, *, unserved: bool = False) -> bool:
    """Receiving side: whether a consulent may change a device's decision (now ``outcome``).

    While the dossier runs, every device not yet taken over; once it completed, an exception may
    still be taken back (the alternative is then not needed), and a device to take over that no
    supplier takes over (``unserved``: an open task of :data:`UNSERVED_TASKS`) may still become
    an exception. A cancelled or withdrawn dossier keeps its decision.
    """
    if state in _DECISION_CHANGE_STATES:
        return True
    return state == "completed" and (outcome == "exception" or unserved)

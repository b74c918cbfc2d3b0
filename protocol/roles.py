"""Who may play which role, and which gemeentecodes a message names for its sender and receiver.

docs/protocol.md section 2 and section 7 check 17: the registry gives each participant the
roles it may play (a gemeente's agent both gemeente roles, a supplier's agent both supplier
roles) and, for a gemeente's agent, the gemeentecodes it serves. A receiver compares the
envelope's ``sender.role`` with the first, and the gemeentecodes below with the second; and it
handles only a message about a gemeente the registry says it serves itself.
"""

from __future__ import annotations

from typing import Final, Literal

from protocol.messages import DossierOffer, DossierRequest, Message, Role, TakeoverOrder

__all__ = [
    "GEMEENTE_ROLES",
    "PARTICIPANT_ROLES",
    "SUPPLIER_ROLES",
    "ParticipantKind",
    "receiver_gemeentecodes",
    "sender_gemeentecodes",
]

ParticipantKind = Literal["gemeente", "supplier"]
GEMEENTE_ROLES: Final[tuple[Role, ...]] = ("departing-gemeente", "receiving-gemeente")
SUPPLIER_ROLES: Final[tuple[Role, ...]] = ("departing-supplier", "receiving-supplier")
# The roles the registry gives a participant of each kind when it is created.
PARTICIPANT_ROLES: Final[dict[ParticipantKind, tuple[Role, ...]]] = {
    "gemeente": GEMEENTE_ROLES,
    "supplier": SUPPLIER_ROLES,
}


def sender_gemeentecodes(message: Message) -> frozenset[str]:
    """The gemeentecodes a message says its sender acts for; the sender must serve each.

    A dossier-offer comes from the gemeente the client leaves (``departingGemeentecode``); a
    dossier-request and a takeover-order from the gemeente the client moves to (the new
    address). Other messages name no gemeente of their sender; they are tied to a dossier or
    order the receiver already shares with that sender.
    """
    body = message.body
    if isinstance(body, DossierOffer):
        return frozenset({body.departing_gemeentecode})
    if isinstance(body, DossierRequest):
        return frozenset({body.new_address.gemeentecode}) if body.new_address else frozenset()
    if isinstance(body, TakeoverOrder):
        return frozenset({body.address.gemeentecode})
    return frozenset()


def receiver_gemeentecodes(message: Message) -> frozenset[str]:
    """The gemeentecodes a message is addressed to; the receiving agent must serve each.

    A dossier-offer goes to the gemeente the client moves to (``newAddress``), a dossier-request
    to the gemeente the client left (``previousGemeentecode``). Other messages concern a dossier
    or order the receiver already holds, or go to a supplier.
    """
    body = message.body
    if isinstance(body, DossierOffer):
        return frozenset({body.client.new_address.gemeentecode})
    if isinstance(body, DossierRequest):
        return frozenset({body.previous_gemeentecode})
    return frozenset()

"""The steps every answer case shares: send and see the receipt, wait for the target's message.

A case sends the target a message and checks its signed receipt (:func:`sent`), or waits at the
kit's endpoint for a message of the target (:func:`arrived`) and checks that it comes from the
target in the role it was addressed in (:func:`check_parties`). The published examples
(docs/examples, copied into this package) are the bodies the kit starts from.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from agent.conformance.endpoint import Arrival
from agent.conformance.kit import CaseFailed, Kit, canonical
from agent.working_days import dutch_date_of
from protocol.messages import Message

__all__ = ["arrived", "check_parties", "example_body", "seen", "sent", "today"]

_EXAMPLES = Path(__file__).parent


def example_body(message_type: str) -> dict[str, Any]:
    """The body of the published example of ``message_type`` (docs/examples)."""
    document = json.loads((_EXAMPLES / f"{message_type}.json").read_text(encoding="utf-8"))
    body: dict[str, Any] = copy.deepcopy(document["body"])
    return body


async def sent(kit: Kit, message: dict[str, Any], *, key: Mapping[str, Any] | None = None) -> None:
    """Send ``message`` (signed with ``key``, the kit's gemeente key by default); see a receipt."""
    body = canonical(message)
    answer = await kit.send_signed(body, key=key)
    await kit.check_receipt(answer, message["messageId"], body, to=message["sender"]["oin"])


async def arrived(
    kit: Kit, kind: str, what: str, wanted: Callable[[Arrival], bool], since: int
) -> Message:
    """The first accepted arrival of ``kind`` that ``wanted`` accepts, or a readable failure."""
    if kit.endpoint is None:
        raise CaseFailed("the kit serves no endpoint, so it cannot receive the target's answer")
    arrival = await kit.endpoint.wait_for(
        lambda a: a.message_type == kind and wanted(a), seconds=kit.answer_seconds, seen=since
    )
    if arrival is None:
        raise CaseFailed(f"no {what} came to the kit's endpoint within {kit.answer_seconds:.0f} s")
    if arrival.message is None:
        raise CaseFailed(f"the kit refused the target's {kind}: {arrival.describe_refusal()}")
    return arrival.message


def check_parties(kit: Kit, message: Message, sent: Mapping[str, Any]) -> None:
    """The answer comes from the target in the role it was addressed in, to the kit's role."""
    if message.sender.oin != kit.target.oin:
        raise CaseFailed(f"the {message.message_type} is signed by another sender than the target")
    if message.sender.role != sent["receiver"]["role"]:
        raise CaseFailed(
            f"the {message.message_type} comes from role {message.sender.role}, "
            f"expected {sent['receiver']['role']}"
        )
    if message.receiver.role != sent["sender"]["role"]:
        raise CaseFailed(
            f"the {message.message_type} is addressed to role {message.receiver.role}, "
            f"expected {sent['sender']['role']}"
        )
    if message.receiver.oin != sent["sender"]["oin"]:
        raise CaseFailed(
            f"the {message.message_type} is addressed to {message.receiver.oin}, "
            f"expected {sent['sender']['oin']}"
        )


def seen(kit: Kit) -> int:
    """How many arrivals the kit's endpoint has had: a case waits only for later ones."""
    return 0 if kit.endpoint is None else len(kit.endpoint.arrivals)


def today(kit: Kit) -> date:
    """The kit's date in the Netherlands (effective and delivery dates are Dutch days)."""
    return dutch_date_of(kit.clock.now())

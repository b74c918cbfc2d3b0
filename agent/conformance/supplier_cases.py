"""The cases off the happy path for a supplier target: continued use and settlement.

The kit plays the departing gemeente that tells the target (its supplier) to leave an excepted
device in use and later that it may be collected (``continued-use``, protocol.md section 8.6),
and a second supplier of its own for the takeover price (settlement.md): as the departing
supplier it offers a price the target must recompute and accept, or dispute when the amount
is wrong; as the receiving supplier named in a departure notice it gets the target's offer,
recomputes it and accepts it. The refusals are those the protocol names (sections 2 and 10).
"""

from __future__ import annotations

import functools
import uuid
from typing import Any, Final

from agent.conformance.cases import Case, expect_problem
from agent.conformance.endpoint import Arrival
from agent.conformance.exchange import arrived, check_parties, example_body, seen, sent, today
from agent.conformance.kit import CaseFailed, Kit, canonical
from protocol.errors import SettlementAmountMismatch, UnknownSettlementMethod
from protocol.messages import (
    SettlementAccept,
    SettlementDispute,
    SettlementInputs,
    SettlementOffer,
)
from protocol.settlement import (
    check_settlement_offer,
    economic_lifetime_months,
    residual_value_cents,
)

__all__ = ["FLOOR_BASIS_POINTS", "supplier_cases"]

# The contract inputs the kit offers with: the default lifetime of settlement.md section 3 and
# a floor of 10 %; the target must hold the same for the kit's supplier to accept.
FLOOR_BASIS_POINTS: Final = 1000
_METHOD: Final = "linear-depreciation-v1"
# A method id of the right form that settlement.md does not define.
_UNKNOWN_METHOD: Final = "conformance-kit-v1"
_SUPPLIER_ROLES: Final = ("departing-supplier", "receiving-supplier")
# A supplier the kit does not play, named as the departing supplier of an order.
_OTHER_SUPPLIER: Final = {"oin": "00000003112233440000", "name": "Andere Leverancier B.V."}


def _other_gemeentecode(kit: Kit) -> str:
    return "0344" if kit.identity.gemeentecode != "0344" else "0363"


def _from_gemeente(kit: Kit, message_type: str, body: Any, dossier_id: str) -> dict[str, Any]:
    """A message of the kit's gemeente, as departing gemeente, to the target's supplier role."""
    return kit.envelope(
        message_type, body, dossier_id=dossier_id,
        sender=(kit.identity.oin, "departing-gemeente"), receiver_role="departing-supplier",
    )  # fmt: skip


def _from_supplier(
    kit: Kit, message_type: str, body: Any, dossier_id: str, *, role: str, **options: Any
) -> dict[str, Any]:
    """A message of the kit's supplier in ``role`` to the target in the other supplier role."""
    other = _SUPPLIER_ROLES[1] if role == _SUPPLIER_ROLES[0] else _SUPPLIER_ROLES[0]
    return kit.envelope(
        message_type, body, dossier_id=dossier_id,
        sender=(kit.identity.supplier.oin, role), receiver_role=other, **options,
    )  # fmt: skip


async def _continued_use(kit: Kit) -> None:
    body = example_body("continued-use")
    body["devices"][0]["deviceId"] = f"KIT-{uuid.uuid4().hex[:16]}"
    body["receivingGemeentecode"] = _other_gemeentecode(kit)
    dossier_id = str(uuid.uuid4())
    await sent(kit, _from_gemeente(kit, "continued-use", body, dossier_id))
    # The alternative is there: the same devices may now be collected.
    body["alternativeDeliveredOn"] = today(kit).isoformat()
    await sent(kit, _from_gemeente(kit, "continued-use", body, dossier_id))


def _order(kit: Kit, departing: dict[str, str]) -> dict[str, Any]:
    order = kit.message()
    order["body"]["departingSupplier"] = departing
    for device in order["body"]["devices"]:
        device["supplier"] = departing
    return order


def _kit_supplier(kit: Kit) -> dict[str, str]:
    return {"oin": kit.identity.supplier.oin, "name": kit.identity.supplier.name}


async def _taken_over(kit: Kit, order: dict[str, Any]) -> None:
    """Send the order; the target receives it, and its planner records contact and takeover."""
    since = seen(kit)
    await sent(kit, order)
    order_id = order["body"]["orderId"]
    for status in ("received", "client-contacted", "taken-over"):
        if status != "received":
            if kit.planner is None:
                raise CaseFailed("the kit has no planner to record contact and takeover")
            await kit.planner.record(order_id, status, seconds=kit.answer_seconds)
        await arrived(
            kit, "supplier-status", f"supplier-status {status} for order {order_id}",
            functools.partial(_is_status, order_id=order_id, status=status), since,
        )  # fmt: skip


def _is_status(arrival: Arrival, *, order_id: str, status: str) -> bool:
    body = (arrival.document or {}).get("body") or {}
    return bool(body.get("orderId") == order_id and body.get("status") == status)


def _offer_for(kit: Kit, order: dict[str, Any], *, wrong_by: int = 0) -> dict[str, Any]:
    device = order["body"]["devices"][0]
    inputs = SettlementInputs.model_validate(
        {
            "purchasePriceCents": device["purchasePriceCents"],
            "purchaseDate": device["purchaseDate"],
            "transferDate": order["body"]["moveDate"],
            "economicLifetimeMonths": economic_lifetime_months(device["isoCode"]),
            "floorBasisPoints": FLOOR_BASIS_POINTS,
            "maintenanceState": "good",
        }
    )
    body = {
        "settlementId": str(uuid.uuid4()),
        "deviceId": device["deviceId"],
        "method": _METHOD,
        "inputs": inputs.model_dump(mode="json", by_alias=True, exclude_none=True),
        "amountCents": residual_value_cents(inputs, method=_METHOD) + wrong_by,
    }
    return _from_supplier(
        kit, "settlement-offer", body, order["dossierId"], role="departing-supplier"
    )


async def _settlement_answer(
    kit: Kit, *, wrong_by: int = 0, method: str = _METHOD
) -> SettlementAccept | SettlementDispute:
    order = _order(kit, _kit_supplier(kit))
    await _taken_over(kit, order)
    offer, since = _offer_for(kit, order, wrong_by=wrong_by), seen(kit)
    offer["body"]["method"] = method
    await sent(kit, offer, key=kit.identity.supplier.key)
    return await _accept_or_dispute(kit, offer["body"]["settlementId"], since)


async def _accept_or_dispute(
    kit: Kit, settlement_id: str, since: int
) -> SettlementAccept | SettlementDispute:
    if kit.endpoint is None:
        raise CaseFailed("the kit serves no endpoint, so it cannot receive the target's answer")
    arrival = await kit.endpoint.wait_for(
        lambda a: (
            a.message_type in ("settlement-accept", "settlement-dispute")
            and (a.document or {}).get("body", {}).get("settlementId") == settlement_id
        ),
        seconds=kit.answer_seconds,
        seen=since,
    )
    if arrival is None:
        raise CaseFailed(
            f"no settlement-accept or -dispute of settlement {settlement_id} came to the "
            f"kit's endpoint within {kit.answer_seconds:.0f} s"
        )
    if arrival.message is None:
        raise CaseFailed(
            f"the kit refused the target's {arrival.message_type}: {arrival.describe_refusal()}"
        )
    expected = {
        "sender": {"oin": kit.identity.supplier.oin, "role": "departing-supplier"},
        "receiver": {"role": "receiving-supplier"},
    }
    check_parties(kit, arrival.message, expected)
    body = arrival.message.body
    assert isinstance(body, SettlementAccept | SettlementDispute)
    return body


async def _settlement_accepted(kit: Kit) -> None:
    answer = await _settlement_answer(kit, wrong_by=0)
    if isinstance(answer, SettlementDispute):
        raise CaseFailed(
            f"the target disputed a correct offer: {answer.reason_code} ({answer.reason_text}); "
            f"the kit offers with the default lifetime of settlement.md section 3 and a floor "
            f"of {FLOOR_BASIS_POINTS} basis points"
        )


async def _settlement_disputed(kit: Kit) -> None:
    answer = await _settlement_answer(kit, wrong_by=1)
    if isinstance(answer, SettlementAccept):
        raise CaseFailed("the target accepted an amount one cent above what the inputs give")
    if answer.reason_code != "inputs-incorrect":
        raise CaseFailed(f"the dispute has reason {answer.reason_code}, not inputs-incorrect")


async def _method_not_agreed(kit: Kit) -> None:
    answer = await _settlement_answer(kit, method=_UNKNOWN_METHOD)
    if isinstance(answer, SettlementAccept):
        raise CaseFailed(f"the target accepted an offer by method {_UNKNOWN_METHOD}")
    if answer.reason_code != "method-not-agreed":
        raise CaseFailed(f"the dispute has reason {answer.reason_code}, not method-not-agreed")


async def _target_offers(kit: Kit) -> None:
    body = example_body("departure-notice")
    body["devices"][0]["deviceId"] = f"KIT-{uuid.uuid4().hex[:16]}"
    body["devices"][0].update(
        ownership="huur", purchaseDate="2021-05-14", purchasePriceCents=389_500
    )
    body.update(
        effectiveDate=today(kit).isoformat(),
        receivingGemeentecode=_other_gemeentecode(kit),
        receivingSupplier=_kit_supplier(kit),
    )
    notice, since = _from_gemeente(kit, "departure-notice", body, str(uuid.uuid4())), seen(kit)
    await sent(kit, notice)
    dossier_id, device_id = notice["dossierId"], body["devices"][0]["deviceId"]
    offer = await arrived(
        kit, "settlement-offer", f"settlement-offer for device {device_id}",
        lambda a: a.concerns(dossier_id), since,
    )  # fmt: skip
    expected = {
        "sender": {"oin": kit.identity.supplier.oin, "role": "receiving-supplier"},
        "receiver": {"role": "departing-supplier"},
    }
    check_parties(kit, offer, expected)
    assert isinstance(offer.body, SettlementOffer)
    if offer.body.device_id != device_id:
        raise CaseFailed(f"the settlement-offer is for device {offer.body.device_id}")
    try:
        check_settlement_offer(offer.body)
    except (SettlementAmountMismatch, UnknownSettlementMethod) as exc:
        raise CaseFailed(f"the kit recomputed the target's offer: {exc}") from exc
    accept = {
        "settlementId": str(offer.body.settlement_id),
        "deviceId": device_id,
        "amountCents": offer.body.amount_cents,
    }
    await sent(
        kit,
        _from_supplier(
            kit, "settlement-accept", accept, dossier_id, role="receiving-supplier",
            in_reply_to=str(offer.message_id),
        ),
        key=kit.identity.supplier.key,
    )  # fmt: skip


async def _accept_never_offered(kit: Kit) -> None:
    body = example_body("settlement-accept")
    body["settlementId"] = str(uuid.uuid4())
    accept = _from_supplier(
        kit, "settlement-accept", body, str(uuid.uuid4()), role="receiving-supplier"
    )
    answer = await kit.send_signed(canonical(accept), key=kit.identity.supplier.key)
    expect_problem(answer, 422, "message-not-handled")


async def _offer_from_another_supplier(kit: Kit) -> None:
    order = _order(kit, dict(_OTHER_SUPPLIER))
    await sent(kit, order)
    offer = _offer_for(kit, order)
    answer = await kit.send_signed(canonical(offer), key=kit.identity.supplier.key)
    expect_problem(answer, 403, "sender-not-permitted")


def supplier_cases() -> tuple[Case, ...]:
    """The cases off the happy path for a supplier target."""
    return (
        Case(
            "a continued-use, and the later one with alternativeDeliveredOn, get signed receipts",
            "5, 8.6",
            _continued_use,
        ),
        Case(
            "a correct settlement-offer for a device taken over is recomputed and accepted",
            "5, 8.1, settlement.md 4",
            _settlement_accepted,
        ),
        Case(
            "a settlement-offer with a wrong amount is disputed as inputs-incorrect",
            "5, settlement.md 4",
            _settlement_disputed,
        ),
        Case(
            "a settlement-offer by a method the target does not know is disputed as "
            "method-not-agreed",
            "5, 10, settlement.md 1",
            _method_not_agreed,
        ),
        Case(
            "after a departure-notice the departing supplier offers a takeover price the kit "
            "recomputes",
            "5, 8.1, settlement.md 2",
            _target_offers,
        ),
        Case(
            "a settlement-accept of a settlement never offered is message-not-handled",
            "5, 10",
            _accept_never_offered,
        ),
        Case(
            "a settlement-offer from a supplier the order does not name is sender-not-permitted",
            "2, 10",
            _offer_from_another_supplier,
        ),
    )

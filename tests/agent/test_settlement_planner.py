"""A supplier that answers takeover price offers by hand: the offer waits for a planner.

The world of ``test_supplier_flow`` (the real registry, two gemeenten, three suppliers over
ASGI transports). Zorgtechniek sets ``takeover.settlement_answered_by = "planner"``: an offer
for a device it has taken over waits (``for-planner``) with our own recalculation beside it,
until a planner accepts or disputes it; the answer reaches Hulpmiddelen BV as the same signed
message the automatic path sends. A planner who does not answer in time gets a task.
"""

# The World fixtures are imported from test_supplier_flow; test arguments reuse their names.
# ruff: noqa: F811

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from agent.errors import SettlementAnswerInvalid, SettlementNotOpen, SettlementUnknown
from agent.service import AgentService
from tests.agent.conftest import AUTH
from tests.agent.test_supplier_flow import (  # noqa: F401 - fixtures used by name
    DEPARTING_SUPPLIER,
    PREFERRED,
    World,
    _transfer_day_start,
    database_urls,
    start_time,
    takeover_settings,
    world,
)

BY_HAND: dict[str, Any] = {"settlement_answered_by": "planner"}
# The departing supplier's contract gives the scootmobiel 60 months, Zorgtechniek's 72.
OTHER_LIFETIME = {
    "zorgtechniek": BY_HAND,
    "hulpmiddelen": {"economic_lifetime_months": {"12 23": 60}},
}


async def _offer_after_takeover(world: World) -> AgentService:
    """Taken over, then on the transfer date the offer: it waits for Zorgtechniek's planner."""
    await world.contract(PREFERRED, 1)
    await world.hand_over()
    [order] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, order["orderId"], status="taken-over")
    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()
    return world.suppliers["zorgtechniek"]


@pytest.mark.parametrize("takeover_settings", [OTHER_LIFETIME])
async def test_the_planner_disputes_with_a_reason_and_our_amount_goes_along(world: World) -> None:
    zorgtechniek = await _offer_after_takeover(world)
    [waiting] = await zorgtechniek.supplier.settlements()
    assert (waiting.state, waiting.answered_by) == ("for-planner", None)
    [offered] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert offered.state == "offered"  # nothing answered by itself

    # The planner sees the offer beside our own calculation.
    answers = zorgtechniek.supplier.settlement_answers
    check = await answers.check(waiting.settlement_id)
    assert check.own is not None
    assert (check.settlement.amount_cents, check.own.amount_cents) == (246367, 270139)
    assert check.own.differences == ("economicLifetimeMonths",)
    assert check.device == "de scootmobiel (Scootmobiel, vier wielen)"
    # 1 April 2025 + 5 working days: Tuesday 8 April, end of the day.
    assert check.answer_before is not None
    assert check.answer_before.isoformat() == "2025-04-08T21:59:59.999999+00:00"

    with pytest.raises(SettlementAnswerInvalid):
        await answers.dispute(waiting.settlement_id, "too-expensive", "Te duur", by="Piet")
    with pytest.raises(SettlementAnswerInvalid):
        await answers.dispute(waiting.settlement_id, "inputs-incorrect", "  ", by="Piet")
    text = "Ons contract rekent 72 maanden voor een scootmobiel."
    disputed = await answers.dispute(
        waiting.settlement_id, "inputs-incorrect", text, by="Piet Visser"
    )
    assert (disputed.state, disputed.answered_by) == ("disputed", "Piet Visser")
    await world.settle()

    # The departing supplier got the dispute with the reason and our amount, and a task.
    [offered] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert (offered.state, offered.reason_code, offered.reason_text) == (
        "disputed",
        "inputs-incorrect",
        text,
    )
    assert offered.counter_amount_cents == 270139
    tasks = await world.suppliers["hulpmiddelen"].tasks.list("open")
    assert [task.kind for task in tasks] == ["settlement-disputed"]
    # Answered once: a second answer is refused, and the wait's deadline is gone.
    with pytest.raises(SettlementNotOpen):
        await answers.accept(waiting.settlement_id, by="Piet Visser")
    assert await zorgtechniek.deadlines.pending(kind="settlement-answer-due") == []
    with pytest.raises(SettlementUnknown):
        await answers.accept("no-such-settlement", by="Piet Visser")


@pytest.mark.parametrize("takeover_settings", [{"zorgtechniek": BY_HAND}])
async def test_the_planner_accepts_and_the_offering_supplier_is_told(world: World) -> None:
    zorgtechniek = await _offer_after_takeover(world)
    [waiting] = await zorgtechniek.supplier.settlements()
    check = await zorgtechniek.supplier.settlement_answers.check(waiting.settlement_id)
    assert check.own is not None
    assert (check.own.amount_cents, check.own.differences) == (270139, ())
    assert check.counter_amount_cents is None

    await zorgtechniek.supplier.settlement_answers.accept(waiting.settlement_id, by="Piet Visser")
    await world.settle()
    [received] = await zorgtechniek.supplier.settlements()
    [offered] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert (received.state, received.answered_by) == ("accepted", "Piet Visser")
    assert (offered.state, offered.counterparty_oin) == ("accepted", PREFERRED[0])
    assert received.counterparty_oin == DEPARTING_SUPPLIER[0]


@pytest.mark.parametrize("takeover_settings", [{"zorgtechniek": BY_HAND}])
async def test_an_offer_nobody_answers_becomes_a_task_and_still_waits(world: World) -> None:
    zorgtechniek = await _offer_after_takeover(world)
    world.clock.set(_transfer_day_start() + timedelta(days=7))  # 8 April, not yet passed
    await world.fire_deadlines()
    assert await zorgtechniek.tasks.list("open") == []

    world.clock.set(_transfer_day_start() + timedelta(days=8))
    await world.fire_deadlines()
    [task] = await zorgtechniek.tasks.list("open")
    assert task.kind == "settlement-unanswered"
    assert task.description == (
        "Een andere leverancier biedt € 2701,39 als overnameprijs voor de scootmobiel "
        "(Scootmobiel, vier wielen). Niemand heeft dit aanbod binnen 5 werkdagen geaccepteerd "
        "of betwist. Beantwoord het in de werkbak bij Verrekeningen."
    )
    [waiting] = await zorgtechniek.supplier.settlements()
    assert waiting.state == "for-planner"
    # Late, but still the planner's to answer.
    await zorgtechniek.supplier.settlement_answers.accept(waiting.settlement_id, by="Piet Visser")
    await world.settle()
    [offered] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert offered.state == "accepted"


@pytest.mark.parametrize("takeover_settings", [{"zorgtechniek": BY_HAND}])
async def test_an_offer_before_the_takeover_waits_for_it_then_for_the_planner(
    world: World,
) -> None:
    await world.contract(PREFERRED, 1)
    await world.hand_over()
    world.clock.set(_transfer_day_start())
    await world.fire_deadlines()
    zorgtechniek = world.suppliers["zorgtechniek"]
    [waiting] = await zorgtechniek.supplier.settlements()
    assert waiting.state == "waiting"
    with pytest.raises(SettlementNotOpen):
        await zorgtechniek.supplier.settlement_answers.accept(waiting.settlement_id, by="Piet")

    [order] = await world.orders_at(PREFERRED)
    await world.planner(PREFERRED, order["orderId"], status="taken-over")
    [ready] = await zorgtechniek.supplier.settlements()
    assert ready.state == "for-planner"


@pytest.mark.parametrize("takeover_settings", [{"zorgtechniek": BY_HAND}])
async def test_a_case_system_answers_through_the_api_as_the_werkbak_does(world: World) -> None:
    zorgtechniek = await _offer_after_takeover(world)
    [waiting] = await zorgtechniek.supplier.settlements()
    url = f"http://zorgtechniek.test/v1/settlements/{waiting.settlement_id}/answer"
    # A dispute without its reason is bad input: 400, and nothing is answered.
    refused = await world.http.post(
        url, json={"answer": "dispute", "answeredBy": "Piet Visser"}, headers=AUTH
    )
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:meeverhuizen:problem:invalid-settlement-answer"
    unknown = await world.http.post(
        f"http://zorgtechniek.test/v1/settlements/{uuid.uuid4()}/answer",
        json={"answer": "accept", "answeredBy": "Piet Visser"},
        headers=AUTH,
    )
    assert unknown.status_code == 404

    accepted = await world.http.post(
        url, json={"answer": "accept", "answeredBy": "Piet Visser"}, headers=AUTH
    )
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["state"], accepted.json()["answeredBy"]) == ("accepted", "Piet Visser")
    again = await world.http.post(
        url, json={"answer": "accept", "answeredBy": "Piet Visser"}, headers=AUTH
    )
    assert again.status_code == 409
    await world.settle()
    [offered] = await world.suppliers["hulpmiddelen"].supplier.settlements()
    assert offered.state == "accepted"

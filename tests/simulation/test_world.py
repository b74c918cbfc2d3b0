"""The planned year: moves drawn from the gravity model, behaviours in their shares, clients the
register accepts."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date

import pytest

from agent.register.imports import parse_import
from agent.simulation.geography import SUPPLIER_DEPOTS, GravityModel, load_gemeenten, regions
from agent.simulation.world import client_record, plan_moves, supplier_specs

START = date(2027, 1, 4)


@pytest.fixture(scope="module")
def gravity() -> GravityModel:
    return GravityModel(load_gemeenten())


def test_the_same_seed_plans_the_same_year(gravity: GravityModel) -> None:
    first = plan_moves(random.Random(7), gravity, 200)
    again = plan_moves(random.Random(7), gravity, 200)
    other = plan_moves(random.Random(8), gravity, 200)
    assert first == again
    assert first != other


def test_moves_spread_over_the_year_with_the_brp_on_time_early_or_late(
    gravity: GravityModel,
) -> None:
    moves = plan_moves(random.Random(1), gravity, 3000, days=365)
    assert len(moves) == 3000
    assert len({move.bsn for move in moves}) == 3000
    assert all(0 <= move.move_day < 365 for move in moves)
    assert [m.brp_day for m in moves] == sorted(m.brp_day for m in moves)
    for move in moves:
        assert move.origin != move.destination
        if move.brp == "announced":
            assert move.brp_day <= move.move_day
        elif move.brp == "late":
            assert move.move_day < move.brp_day <= move.move_day + 14
        else:
            assert move.brp_day == move.move_day
        assert 1 <= len(move.devices) <= 3
        assert move.devices[0].movable  # every client has something to hand over
    shares = Counter(move.client for move in moves)
    # 5 % refuse and 5 % never answer (binomial, n = 3000: a standard deviation of 0.4 %).
    assert 0.035 < shares["refusal"] / 3000 < 0.065
    assert 0.035 < shares["no-answer"] / 3000 < 0.065
    assert 0.72 < shares["consent"] / 3000 < 0.82
    refusing = sum(1 for move in moves if move.supplier == "refuses")
    assert 0.025 < refusing / 3000 < 0.055


def test_each_gemeente_contracts_the_supplier_of_its_region() -> None:
    gemeenten = load_gemeenten()
    depot_of = regions(gemeenten, SUPPLIER_DEPOTS)
    by_depot: dict[str, list[str]] = {}
    for code, depot in depot_of.items():
        by_depot.setdefault(depot, []).append(code)
    suppliers = supplier_specs(by_depot)
    assert len(suppliers) == len(SUPPLIER_DEPOTS)
    contracted = [code for spec in suppliers for code, _ in spec.contracts]
    assert sorted(contracted) == sorted(g.code for g in gemeenten)
    assert len({spec.oin for spec in suppliers}) == len(suppliers)
    maastricht = next(s for s in suppliers if s.key == "leverancier-maastricht")
    assert "0935" in dict(maastricht.contracts)


def test_a_planned_client_is_one_the_register_accepts(gravity: GravityModel) -> None:
    [move] = plan_moves(random.Random(3), gravity, 1)
    supplier = supplier_specs({"utrecht": [move.origin.code]})[0]
    record = client_record(move, START, supplier)
    [client] = parse_import(json.dumps([record]).encode(), "json")
    assert client.address.gemeentecode == move.origin.code
    assert [d.device_id for d in client.devices] == [
        move.device_id(i) for i in range(len(move.devices))
    ]
    rented = [d for d in client.devices if d.ownership == "huur"]
    assert all(d.supplier is not None and d.supplier.oin == supplier.oin for d in rented)

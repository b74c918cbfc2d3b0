"""The simulation's report: what became of every move, counted from what the agents answered.

Pure: ``meeverhuizen simulate`` reads the agents' APIs into :class:`MoveResult` and
:class:`RunFacts`; :func:`build_report` turns them into a JSON-able report, :func:`render_text`
into an operator's summary (``agent.simulation.plots`` draws its charts). No personal data: a
move is the simulation's own number, a place a gemeentecode, a device its ISO code.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DeadlineResult",
    "DeviceResult",
    "MoveResult",
    "RunFacts",
    "build_report",
    "render_text",
]

# A device that reached the client under the new gemeente, or its alternative; undecided devices
# count too, with their days so far, so a handover that never ends shows up as a long wait.
_MOVED: Final = frozenset({"continued", "alternative"})
_UNDECIDED: Final = "undecided"
# Buckets of days without a device: (label, first day, last day or None).
_DAY_BUCKETS: Final[tuple[tuple[str, int, int | None], ...]] = (
    ("0", 0, 0),
    ("1", 1, 1),
    ("2-3", 2, 3),
    ("4-7", 4, 7),
    ("8-14", 8, 14),
    ("15-30", 15, 30),
    ("31+", 31, None),
)
_MESSAGE_BUCKETS: Final[tuple[tuple[str, int, int | None], ...]] = (
    ("0-5", 0, 5),
    ("6-10", 6, 10),
    ("11-15", 11, 15),
    ("16-20", 16, 20),
    ("21-30", 21, 30),
    ("31-50", 31, 50),
    ("51+", 51, None),
)
_WORST_CASES: Final = 10
# Moves listed by number per problem (lost, duplicated, unaccounted); the counts cover them all.
_EXAMPLES: Final = 10


@dataclass(frozen=True)
class DeviceResult:
    """One device of a move as the agents report it at the end of the run.

    ``outcome`` is ``"continued"``, ``"alternative"``, ``"not-movable"``, ``"stopped"`` or None
    while nothing is decided; ``days_without_device`` runs from the move date until the client had
    the device (or its alternative) under the new gemeente; ``owner`` names who acts next, None
    when nothing is left to do.
    """

    iso_code: str
    outcome: str | None
    days_without_device: int
    owner: str | None


@dataclass(frozen=True)
class MoveResult:
    """One simulated move and the dossiers the agents hold for it.

    ``departing_dossiers`` should be 1 (0 is a lost handover, more a duplicate);
    ``receiving_dossiers`` 0 or 1 depending on the path. ``final`` means the departing dossier is
    in a final state; ``owner_tasks`` counts open tasks about it at any party; ``messages`` the
    protocol messages exchanged for it; ``path`` labels what the simulation made happen.
    ``waiting_on`` names who is asked to act while no task is open: the client while the consent
    request runs (the agent reminds them, then gives a consulent a task).
    """

    move: int
    origin: str
    destination: str
    dossier_id: str | None
    departing_dossiers: int
    receiving_dossiers: int
    departing_state: str | None
    receiving_state: str | None
    final: bool
    owner_tasks: int
    messages: int
    devices: tuple[DeviceResult, ...]
    path: str
    waiting_on: str | None = None


@dataclass(frozen=True)
class DeadlineResult:
    """How often one kind of deadline (``clientContact``, ``consentAnswer`` ...) was met."""

    kind: str
    met: int
    missed: int


@dataclass(frozen=True)
class RunFacts:
    """The run as a whole: its size, its cost, the faults injected and the agents' own counts.

    ``cpu_seconds`` is the CPU of every process of the run together; ``restarts`` the agent
    processes killed with SIGKILL and started again; ``dead_letters`` the outbox messages given up
    on; ``tasks`` the open tasks per gemeentecode (or supplier name) and task kind.
    """

    moves: int
    gemeenten: int
    suppliers: int
    processes: int
    simulated_days: int
    wall_seconds: float
    cpu_seconds: float
    drop_rate: float
    restarts: int
    dead_letters: int
    tasks: Mapping[str, Mapping[str, int]]
    deadlines: tuple[DeadlineResult, ...]
    seed: int
    # Dossiers at an agent that no move accounts for: each is a duplicate of some move's.
    stray_dossiers: int = 0


def _nearest_rank(ordered: Sequence[int], percent: int) -> int:
    """The nearest-rank percentile of an ascending list; 0 for an empty one."""
    if not ordered:
        return 0
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def _distribution(values: Iterable[int]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": _nearest_rank(ordered, 50),
        "p95": _nearest_rank(ordered, 95),
        "max": ordered[-1] if ordered else 0,
        "mean": round(sum(ordered) / len(ordered), 2) if ordered else 0,
    }


def _histogram(
    values: Iterable[int], buckets: Sequence[tuple[str, int, int | None]]
) -> dict[str, int]:
    counts = dict.fromkeys((label for label, _, _ in buckets), 0)
    for value in values:
        # Below the first bucket (a device there before the move) counts as the first bucket.
        label = buckets[0][0]
        for name, first, last in buckets:
            if value >= first and (last is None or value <= last):
                label = name
        counts[label] += 1
    return counts


def _waiting(moves: Sequence[MoveResult]) -> list[tuple[MoveResult, DeviceResult]]:
    """Every device that moved or is still undecided, with its move."""
    return [
        (move, device)
        for move in moves
        for device in move.devices
        if device.outcome is None or device.outcome in _MOVED
    ]


def _days_without_device(moves: Sequence[MoveResult]) -> dict[str, Any]:
    waiting = _waiting(moves)
    days = [device.days_without_device for _, device in waiting]
    worst = sorted(
        waiting, key=lambda pair: (-pair[1].days_without_device, pair[0].move, pair[1].iso_code)
    )[:_WORST_CASES]
    return {
        **_distribution(days),
        "histogram": _histogram(days, _DAY_BUCKETS),
        "worst": [
            {
                "move": move.move,
                "dossierId": move.dossier_id,
                "origin": move.origin,
                "destination": move.destination,
                "isoCode": device.iso_code,
                "days": device.days_without_device,
                "outcome": device.outcome,
                "owner": device.owner,
            }
            for move, device in worst
        ],
    }


def _deadlines(deadlines: Iterable[DeadlineResult]) -> dict[str, dict[str, Any]]:
    met: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    for deadline in deadlines:
        met[deadline.kind] += deadline.met
        missed[deadline.kind] += deadline.missed
    result: dict[str, dict[str, Any]] = {}
    for kind in sorted(met.keys() | missed.keys()):
        total = met[kind] + missed[kind]
        share = round(met[kind] / total, 4) if total else 0.0
        result[kind] = {"met": met[kind], "missed": missed[kind], "share": share}
    return result


def _tasks(tasks: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    by_kind: Counter[str] = Counter()
    for kinds in tasks.values():
        by_kind.update(kinds)
    return {
        "byKind": dict(sorted(by_kind.items())),
        "byOrganisation": {
            organisation: dict(sorted(tasks[organisation].items()))
            for organisation in sorted(tasks)
        },
    }


def _unaccounted_moves(moves: Sequence[MoveResult]) -> list[MoveResult]:
    """Moves that are not finished while nobody has a task about them or is asked to act."""
    return [
        move
        for move in moves
        if not move.final and move.owner_tasks <= 0 and move.waiting_on is None
    ]


def _unaccounted_devices(moves: Sequence[MoveResult]) -> list[tuple[MoveResult, DeviceResult]]:
    """Devices with nothing decided and nobody named to decide it."""
    return [
        (move, device)
        for move in moves
        for device in move.devices
        if device.outcome is None and device.owner is None and move.waiting_on is None
    ]


def _example(move: MoveResult) -> dict[str, Any]:
    return {
        "move": move.move,
        "dossierId": move.dossier_id,
        "origin": move.origin,
        "destination": move.destination,
        "departingDossiers": move.departing_dossiers,
        "receivingDossiers": move.receiving_dossiers,
        "departingState": move.departing_state,
        "path": move.path,
    }


def _count(labels: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(labels).items()))


def build_report(moves: Sequence[MoveResult], facts: RunFacts) -> dict[str, Any]:
    """The report of a run as a JSON-able dict with camelCase keys; empty input gives zeros.

    ``lost`` counts moves without a departing dossier, ``duplicated`` moves with more than one
    dossier on either side plus the stray dossiers no move accounts for; ``unaccounted`` the
    moves neither final nor with an open task plus the undecided devices without an owner. Days
    without a device cover the devices that moved and the undecided ones (their days so far);
    percentiles are nearest-rank.
    """
    with_dossier = [move for move in moves if move.departing_dossiers > 0]
    lost = [move for move in moves if move.departing_dossiers == 0]
    duplicated = [
        move for move in moves if move.departing_dossiers > 1 or move.receiving_dossiers > 1
    ]
    unaccounted_moves = _unaccounted_moves(moves)
    unaccounted_devices = _unaccounted_devices(moves)
    dossiers = len(with_dossier)
    return {
        "moves": len(moves),
        "dossiers": dossiers,
        "lost": len(lost),
        "duplicated": len(duplicated) + facts.stray_dossiers,
        "strayDossiers": facts.stray_dossiers,
        "unaccounted": len(unaccounted_moves) + len(unaccounted_devices),
        "unaccountedMoves": len(unaccounted_moves),
        "unaccountedDevices": len(unaccounted_devices),
        "problems": {
            "lost": [_example(move) for move in lost[:_EXAMPLES]],
            "duplicated": [_example(move) for move in duplicated[:_EXAMPLES]],
            "unaccountedMoves": [_example(move) for move in unaccounted_moves[:_EXAMPLES]],
            "unaccountedDevices": [
                {**_example(move), "isoCode": device.iso_code}
                for move, device in unaccounted_devices[:_EXAMPLES]
            ],
        },
        "daysWithoutDevice": _days_without_device(moves),
        "deadlinesMet": _deadlines(facts.deadlines),
        "tasks": _tasks(facts.tasks),
        "messagesPerDossier": {
            **_distribution(move.messages for move in with_dossier),
            "histogram": _histogram((move.messages for move in with_dossier), _MESSAGE_BUCKETS),
        },
        "deadLetters": facts.dead_letters,
        "paths": _count(move.path for move in moves),
        "outcomes": _count(
            device.outcome or _UNDECIDED for move in moves for device in move.devices
        ),
        "states": _count(move.departing_state or "none" for move in moves),
        "receivingStates": _count(move.receiving_state or "none" for move in moves),
        "wallSeconds": round(facts.wall_seconds, 3),
        "cpuSeconds": round(facts.cpu_seconds, 3),
        "cpuSecondsPerDossier": round(facts.cpu_seconds / dossiers, 4) if dossiers else 0.0,
        "wallSecondsPerDossier": round(facts.wall_seconds / dossiers, 4) if dossiers else 0.0,
        "run": {
            "moves": facts.moves,
            "gemeenten": facts.gemeenten,
            "suppliers": facts.suppliers,
            "processes": facts.processes,
            "simulatedDays": facts.simulated_days,
            "dropRate": facts.drop_rate,
            "restarts": facts.restarts,
            "seed": facts.seed,
        },
    }


def _lines(title: str, rows: Iterable[tuple[str, str]]) -> list[str]:
    rows = list(rows)
    width = max((len(label) for label, _ in rows), default=0)
    body = [f"  {label:<{width}}  {value}" for label, value in rows] or ["  (none)"]
    return [title, *body, ""]


def _counts(title: str, counts: Mapping[str, int]) -> list[str]:
    return _lines(title, ((name, f"{count:>7}") for name, count in counts.items()))


def _summary(report: Mapping[str, Any]) -> list[str]:
    run = report["run"]
    return _lines(
        "Run",
        [
            ("moves", f"{report['moves']} ({report['dossiers']} with a departing dossier)"),
            ("gemeenten / suppliers", f"{run['gemeenten']} / {run['suppliers']}"),
            ("processes", str(run["processes"])),
            ("simulated days", str(run["simulatedDays"])),
            ("seed", str(run["seed"])),
            ("drop rate", f"{run['dropRate']:.1%}"),
            ("restarts (SIGKILL)", str(run["restarts"])),
            ("wall time", f"{report['wallSeconds']:.1f} s"),
            ("per dossier", f"{report['wallSecondsPerDossier']:.3f} s wall"),
            ("", f"{report['cpuSecondsPerDossier']:.3f} s CPU"),
        ],
    )


def _accounting(report: Mapping[str, Any]) -> list[str]:
    return _lines(
        "Accounting (all should be 0)",
        [
            ("lost", f"{report['lost']:>7}  moves without a departing dossier"),
            ("duplicated", f"{report['duplicated']:>7}  moves with more than one dossier"),
            ("unaccounted", f"{report['unaccounted']:>7}  nobody acts next"),
            ("", f"{report['unaccountedMoves']:>7}  moves not final without a task"),
            ("", f"{report['unaccountedDevices']:>7}  devices undecided without an owner"),
            ("dead letters", f"{report['deadLetters']:>7}  outbox messages given up on"),
        ],
    )


def _device_of(item: Mapping[str, Any]) -> str:
    return f" device {item['isoCode']}" if "isoCode" in item else ""


def _problems(report: Mapping[str, Any]) -> list[str]:
    rows = [
        (
            kind,
            f"move {item['move']} dossier {item['dossierId'] or '-'}{_device_of(item)} "
            f"{item['origin']} -> {item['destination']} ({item['path']}, "
            f"{item['departingDossiers']}/{item['receivingDossiers']} dossiers, "
            f"state {item['departingState'] or '-'})",
        )
        for kind, items in report["problems"].items()
        for item in items
    ]
    return _lines("Problems (first few of each)", rows) if rows else []


def _distribution_lines(title: str, values: Mapping[str, Any], unit: str) -> list[str]:
    summary = ", ".join(f"{name} {values[name]}" for name in ("p50", "p95", "max", "mean"))
    histogram = values["histogram"]
    return _lines(
        title,
        [("summary", f"{summary} {unit}"), *((f"{b}", f"{n:>7}") for b, n in histogram.items())],
    )


def _deadline_lines(report: Mapping[str, Any]) -> list[str]:
    return _lines(
        "Deadlines",
        (
            (kind, f"{row['met']:>7} met {row['missed']:>7} missed  {row['share']:>7.1%}")
            for kind, row in report["deadlinesMet"].items()
        ),
    )


def _worst_lines(report: Mapping[str, Any]) -> list[str]:
    header = f"  {'days':>5}  {'dossier':<36} {'route':<11}  {'device':<9}  {'outcome':<11}  next"
    rows = [
        f"  {item['days']:>5}  {item['dossierId'] or '-':<36} "
        f"{item['origin']}->{item['destination']:<5}  {item['isoCode']:<9}  "
        f"{item['outcome'] or _UNDECIDED:<11}  {item['owner'] or '-'}"
        for item in report["daysWithoutDevice"]["worst"]
    ]
    return ["Longest without a device", header, *(rows or ["  (none)"]), ""]


def render_text(report: dict[str, Any]) -> str:
    """A plain-text summary of :func:`build_report`'s report for the operator, a section a block."""
    sections = [
        ["Meeverhuizen simulation report", "=" * 30, ""],
        _summary(report),
        _accounting(report),
        _problems(report),
        _distribution_lines("Days without a device", report["daysWithoutDevice"], "days"),
        _worst_lines(report),
        _deadline_lines(report),
        _counts("Open tasks by kind", report["tasks"]["byKind"]),
        _distribution_lines("Messages per dossier", report["messagesPerDossier"], "messages"),
        _counts("Paths", report["paths"]),
        _counts("Device outcomes", report["outcomes"]),
        _counts("Departing dossier states", report["states"]),
    ]
    return "\n".join(line for section in sections for line in section).rstrip() + "\n"

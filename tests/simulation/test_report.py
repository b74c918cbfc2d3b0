"""The simulation report counts every move right and renders it as text, JSON and charts."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.image import imread

from agent.simulation.plots import write_plots
from agent.simulation.report import (
    DeadlineResult,
    DeviceResult,
    MoveResult,
    RunFacts,
    build_report,
    render_text,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIBONACCI_DAYS = [0, 0, 1, 2, 3, 5, 8, 13, 21, 34]


def _device(
    days: int, *, outcome: str | None = "continued", owner: str | None = None
) -> DeviceResult:
    return DeviceResult(iso_code="12 23 03", outcome=outcome, days_without_device=days, owner=owner)


def _move(number: int, *devices: DeviceResult, **changes: object) -> MoveResult:
    move = MoveResult(
        move=number,
        origin="0363",
        destination="0599",
        dossier_id=f"dossier-{number:04d}",
        departing_dossiers=1,
        receiving_dossiers=1,
        departing_state="completed",
        receiving_state="completed",
        final=True,
        owner_tasks=0,
        messages=10 + number,
        devices=devices,
        path="consent",
    )
    return replace(move, **changes)  # type: ignore[arg-type]


def _facts(**changes: object) -> RunFacts:
    facts = RunFacts(
        moves=10,
        gemeenten=342,
        suppliers=12,
        processes=355,
        simulated_days=365,
        wall_seconds=120.0,
        cpu_seconds=400.0,
        drop_rate=0.02,
        restarts=3,
        dead_letters=1,
        tasks={
            "0363": {"consent-follow-up": 2, "order-problem": 1},
            "Welzorg": {"order-problem": 4},
        },
        deadlines=(
            DeadlineResult(kind="clientContact", met=9, missed=1),
            DeadlineResult(kind="consentAnswer", met=3, missed=1),
        ),
        seed=7,
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def _nearest_rank(values: list[int], percent: int) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(percent * len(ordered) / 100) - 1]


@pytest.fixture
def fibonacci_moves() -> list[MoveResult]:
    return [_move(number, _device(days)) for number, days in enumerate(FIBONACCI_DAYS, start=1)]


def test_the_percentiles_of_days_without_a_device_are_nearest_rank(
    fibonacci_moves: list[MoveResult],
) -> None:
    days = build_report(fibonacci_moves, _facts())["daysWithoutDevice"]

    assert (days["p50"], days["p95"], days["max"]) == (3, 34, 34)
    assert days["p50"] == _nearest_rank(FIBONACCI_DAYS, 50)
    assert days["p95"] == _nearest_rank(FIBONACCI_DAYS, 95)
    assert days["mean"] == pytest.approx(sum(FIBONACCI_DAYS) / len(FIBONACCI_DAYS), abs=0.01)
    assert days["histogram"] == {
        "0": 2,
        "1": 1,
        "2-3": 2,
        "4-7": 1,
        "8-14": 2,
        "15-30": 1,
        "31+": 1,
    }


def test_only_devices_that_moved_or_wait_count_for_days_without_a_device() -> None:
    moves = [
        _move(1, _device(4), _device(6, outcome="alternative")),
        _move(2, _device(50, outcome="not-movable"), _device(60, outcome="stopped")),
        _move(3, _device(9, outcome=None, owner="Team Wmo van gemeente Utrecht")),
    ]

    days = build_report(moves, _facts())["daysWithoutDevice"]

    assert days["count"] == 3
    assert days["max"] == 9
    assert sum(days["histogram"].values()) == 3


def test_a_move_without_a_departing_dossier_is_lost_and_one_with_two_is_duplicated() -> None:
    moves = [
        _move(1, _device(0)),
        _move(2, departing_dossiers=0, dossier_id=None, departing_state=None),
        _move(3, _device(1), departing_dossiers=2),
        _move(4, _device(2), receiving_dossiers=2),
    ]

    report = build_report(moves, _facts())

    assert report["moves"] == 4
    assert report["dossiers"] == 3
    assert report["lost"] == 1
    assert report["duplicated"] == 2
    assert [item["move"] for item in report["problems"]["lost"]] == [2]
    assert [item["move"] for item in report["problems"]["duplicated"]] == [3, 4]
    assert report["states"] == {"completed": 3, "none": 1}


def test_unaccounted_counts_a_waiting_move_and_an_undecided_device_nobody_owns() -> None:
    moves = [
        _move(1, _device(0), final=False, owner_tasks=0, departing_state="consent-requested"),
        _move(2, _device(3, outcome=None, owner=None)),
        _move(3, _device(1)),
    ]

    report = build_report(moves, _facts())

    assert report["unaccounted"] == 2
    assert report["unaccountedMoves"] == 1
    assert report["unaccountedDevices"] == 1


def test_nothing_is_unaccounted_when_each_has_someone_who_acts_next() -> None:
    moves = [
        _move(1, _device(0), final=False, owner_tasks=1, departing_state="consent-requested"),
        _move(2, _device(3, outcome=None, owner="Leverancier Welzorg, afdeling planning")),
    ]

    assert build_report(moves, _facts())["unaccounted"] == 0


def test_the_worst_cases_are_the_ten_longest_waits_longest_first() -> None:
    days = [5, 40, 0, 12, 3, 77, 8, 19, 1, 30, 2, 61, 4]
    moves = [
        _move(number, _device(wait, owner=f"Team {number}"))
        for number, wait in enumerate(days, start=1)
    ]

    worst = build_report(moves, _facts())["daysWithoutDevice"]["worst"]

    assert [item["days"] for item in worst] == sorted(days, reverse=True)[:10]
    assert worst[0] == {
        "move": 6,
        "dossierId": "dossier-0006",
        "origin": "0363",
        "destination": "0599",
        "isoCode": "12 23 03",
        "days": 77,
        "outcome": "continued",
        "owner": "Team 6",
    }


def test_deadline_shares_are_met_over_all_and_a_kind_given_twice_is_added_up() -> None:
    facts = _facts(
        deadlines=(
            DeadlineResult(kind="clientContact", met=9, missed=1),
            DeadlineResult(kind="consentAnswer", met=1, missed=2),
            DeadlineResult(kind="consentAnswer", met=2, missed=1),
            DeadlineResult(kind="deviceOnMoveDay", met=0, missed=0),
        )
    )

    deadlines = build_report([], facts)["deadlinesMet"]

    assert deadlines["clientContact"] == {"met": 9, "missed": 1, "share": 0.9}
    assert deadlines["consentAnswer"] == {"met": 3, "missed": 3, "share": 0.5}
    assert deadlines["deviceOnMoveDay"]["share"] == 0


def test_tasks_are_totalled_by_kind_and_kept_per_organisation() -> None:
    tasks = build_report([], _facts())["tasks"]

    assert tasks["byKind"] == {"consent-follow-up": 2, "order-problem": 5}
    assert tasks["byOrganisation"]["Welzorg"] == {"order-problem": 4}


def test_paths_outcomes_messages_and_cost_per_dossier_are_counted(
    fibonacci_moves: list[MoveResult],
) -> None:
    moves = [
        *fibonacci_moves[:3],
        _move(4, _device(2, outcome=None, owner="Team Wmo"), path="no-answer", messages=3),
    ]

    report = build_report(moves, _facts())

    assert report["paths"] == {"consent": 3, "no-answer": 1}
    assert report["outcomes"] == {"continued": 3, "undecided": 1}
    assert report["messagesPerDossier"]["max"] == 13
    assert report["messagesPerDossier"]["p50"] == _nearest_rank([11, 12, 13, 3], 50)
    assert report["cpuSecondsPerDossier"] == pytest.approx(100.0)
    assert report["wallSecondsPerDossier"] == pytest.approx(30.0)
    assert report["run"]["seed"] == 7
    assert report["deadLetters"] == 1


def test_empty_input_gives_zeros_not_an_error() -> None:
    report = build_report([], _facts(deadlines=(), tasks={}))

    assert report["moves"] == report["dossiers"] == report["lost"] == 0
    assert report["duplicated"] == report["unaccounted"] == 0
    days = report["daysWithoutDevice"]
    assert (days["p50"], days["p95"], days["max"], days["mean"]) == (0, 0, 0, 0)
    assert days["worst"] == []
    assert report["messagesPerDossier"]["max"] == 0
    assert report["cpuSecondsPerDossier"] == report["wallSecondsPerDossier"] == 0
    assert "Longest without a device" in render_text(report)


def test_the_report_has_its_keys_and_survives_json(fibonacci_moves: list[MoveResult]) -> None:
    report = build_report(fibonacci_moves, _facts())

    decoded = json.loads(json.dumps(report))

    for key in ("dossiers", "lost", "duplicated", "deadlinesMet", "wallSeconds"):
        assert key in decoded
    assert {"p50", "p95", "max"} <= decoded["daysWithoutDevice"].keys()
    assert decoded == report


def test_the_text_names_the_worst_dossier_and_the_lost_and_duplicated_counts() -> None:
    moves = [
        _move(1, _device(3)),
        _move(2, _device(45, owner="Klantcontactcentrum Utrecht"), dossier_id="worst-dossier"),
        *[_move(number, departing_dossiers=0, dossier_id=None) for number in (3, 4, 5)],
        *[_move(number, _device(1), receiving_dossiers=2) for number in (6, 7)],
    ]

    text = render_text(build_report(moves, _facts()))

    assert "worst-dossier" in text
    assert "Klantcontactcentrum Utrecht" in text
    assert next(line for line in text.splitlines() if "lost" in line).split()[1] == "3"
    assert next(line for line in text.splitlines() if "duplicated" in line).split()[1] == "2"


def test_write_plots_draws_four_readable_png_charts(
    fibonacci_moves: list[MoveResult], tmp_path: Path
) -> None:
    paths = write_plots(build_report(fibonacci_moves, _facts()), tmp_path)

    assert sorted(path.name for path in paths) == [
        "days-without-device.png",
        "deadlines.png",
        "messages-per-dossier.png",
        "tasks-by-kind.png",
    ]
    for path in paths:
        assert path.parent == tmp_path
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        assert path.stat().st_size > 5_000
    assert imread(paths[0]).shape[1] >= 600

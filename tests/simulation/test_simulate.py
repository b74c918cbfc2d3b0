"""``meeverhuizen simulate`` end to end: a small country, a short year, faults, the report.

A registry and two ``agent host`` processes serve the 40 largest gemeenten and the suppliers
over real HTTP; the BRP, clients and planners act on the shared simulated clock; a host is killed
with SIGKILL once and a share of the connections breaks. Nothing may be lost or duplicated, and
every move ends final or with someone who acts.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

_LAUNCHER = "from agent.cli import main; main()"
_PLOTS = ("days-without-device", "deadlines", "messages-per-dossier", "tasks-by-kind")
_TEST_BSN = re.compile(r"\b999\d{6}\b")


def test_a_short_year_with_faults_loses_nothing_and_leaves_no_move_without_owner(
    tmp_path: Path,
) -> None:
    out = tmp_path / "report"
    arguments = [
        "--moves", "60", "--gemeenten", "40", "--days", "10", "--tail-days", "20",
        "--restarts", "1", "--drop-rate", "0.1",
        "--seed", "5", "--json", "--out", str(out), "--work-folder", str(tmp_path / "work"),
    ]  # fmt: skip
    finished = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, "simulate", *arguments],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:] + finished.stdout[-3000:]
    assert "Traceback" not in finished.stderr
    report = json.loads(finished.stdout)
    assert report == json.loads((out / "report.json").read_text("utf-8"))
    assert (report["moves"], report["dossiers"]) == (60, 60)
    assert (report["lost"], report["duplicated"], report["unaccounted"]) == (0, 0, 0)
    assert report["deadLetters"] == 0
    days = report["daysWithoutDevice"]
    assert 0 <= days["p50"] <= days["p95"] <= days["max"]
    assert set(report["deadlinesMet"]) == {"clientContact", "consentAnswer", "deviceOnMoveDay"}
    assert report["wallSeconds"] > 0
    run = report["run"]
    assert (run["gemeenten"], run["restarts"], run["processes"]) == (40, 1, 2)
    dropped = run["dropped"]
    assert dropped["beforeDelivery"] + dropped["afterDelivery"] > 0
    # Refusals and withdrawals end the handover; the rest completed at both gemeenten.
    ended = {"completed", "consent-refused", "consent-withdrawn", "consent-expired"}
    assert set(report["states"]) <= ended | {"waiting-for-consent"}
    assert report["states"]["completed"] >= 40
    plots = sorted(path.name for path in out.glob("*.png"))
    assert plots == [f"{name}.png" for name in _PLOTS]
    # The agents' logs hold no BSN of a simulated client.
    logs = " ".join(path.read_text("utf-8") for path in (tmp_path / "work").glob("*.log"))
    assert _TEST_BSN.search(logs) is None
    assert "internal_error" not in logs


def test_the_command_needs_matplotlib_only_for_the_plots() -> None:
    # The agent's image has no matplotlib (an extra): the command line must still load.
    code = "import sys; sys.modules['matplotlib'] = None; " + _LAUNCHER
    finished = subprocess.run(
        [sys.executable, "-c", code, "simulate", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert "--moves" in finished.stdout

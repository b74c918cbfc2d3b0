"""``meeverhuizen demo`` as a user runs it: a subprocess that starts real servers on loopback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agent.local.demo import DemoSummary, render_summary, scenario_lines
from agent.local.scenarios import SCENARIOS
from agent.local.starting import DEFAULT_START_SECONDS

_LAUNCHER = "from agent.cli import main; main()"


def _demo(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _LAUNCHER, "demo", *arguments],
        capture_output=True,
        text=True,
        # The processes may take up to the default --start-timeout on a busy machine; a failed
        # run prints why, with the log's last lines and the folder it kept.
        timeout=DEFAULT_START_SECONDS + 90 + 60,
        check=False,
    )


@pytest.mark.slow
def test_demo_json_reports_where_every_device_ended() -> None:
    result = _demo("--json", "--timeout", "120")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["scenario"] == "standard"
    assert summary["completed"] is True
    devices = {device["deviceId"]: device for device in summary["devices"]}
    assert set(devices) == {"scootmobiel-1", "bed-1", "traplift-1"}
    for device_id in ("scootmobiel-1", "bed-1"):
        assert devices[device_id]["outcome"] == "continued"
        assert devices[device_id]["daysWithoutDevice"] == 0
        assert devices[device_id]["isoCode"] in ("12 23 03", "18 12 10")
    assert devices["traplift-1"]["outcome"] == "not-movable"
    # Left: the back offices' paperwork, each with an owner.
    assert sorted(task["kind"] for task in summary["openTasks"]) == [
        "eigen-bijdrage-end",
        "eigen-bijdrage-start",
        "end-beschikking",
    ]
    # The move as registered in the BRP started the handover, not a direct API call.
    assert "nl.brp.verhuisd" in summary["departing"]["timeline"][0]["cause"]
    assert summary["consent"]["throughPage"] is True
    assert (summary["consent"]["linkOpened"], summary["consent"]["pageShown"]) == (303, 200)
    assert summary["letters"] == ["invitation"]
    # The token is a key to the client's page: it stays out of the JSON.
    assert "/link/" not in result.stdout
    # No BSN leaves the demo: not in the summary, not in what it prints.
    assert "99999" not in result.stdout + result.stderr


def test_scenario_list_names_each_scenario_with_a_description() -> None:
    result = _demo("--scenario", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(SCENARIOS)
    assert lines == scenario_lines()
    for required in ("standard", "announced-move", "not-connected", "urgent", "wlz"):
        assert required in SCENARIOS
    for required in ("refusal", "withdrawal", "death", "no-supplier", "bruikleen", "exception"):
        assert required in SCENARIOS
    assert all(" / " in SCENARIOS[name].description for name in SCENARIOS)


def test_an_unknown_scenario_is_refused_with_its_name() -> None:
    result = _demo("--scenario", "verzonnen")
    assert result.returncode != 0
    assert "unknown scenario 'verzonnen'" in result.stderr


def _summary(**changes: object) -> DemoSummary:
    values: dict[str, object] = {
        "scenario": "refusal",
        "completed": True,
        "dossier_id": "d-1",
        "elapsed_seconds": 1.5,
        "departing": {
            "gemeente": "Gemeente Utrecht",
            "gemeentecode": "0344",
            "state": "consent-refused",
            "timeline": [
                {
                    "toState": "consent-refused",
                    "at": "2025-03-03T09:00:00+00:00",
                    "cause": "consent refused",
                }
            ],
        },
        "receiving": {
            "gemeente": "Gemeente Amsterdam",
            "gemeentecode": "0363",
            "state": None,
            "timeline": [],
        },
        "devices": (
            {
                "deviceId": "x",
                "description": "Scootmobiel",
                "isoCode": "12 23 03",
                "outcome": "stopped",
                "daysWithoutDevice": 0,
                "owner": {
                    "party": "Gemeente Utrecht",
                    "kind": "consent-refused",
                    "text": "Beëindig de voorziening.",
                },
            },
        ),
    }
    return DemoSummary(**(values | changes))  # type: ignore[arg-type]


def test_plain_words_name_each_device_its_outcome_and_who_acts_next() -> None:
    text = render_summary(_summary())
    assert "Scenario refusal: ended with every device accounted for" in text
    assert "the client refused consent" in text
    assert "Gemeente Amsterdam (0363): no dossier" in text
    assert "Scootmobiel (12 23 03): stopped, 0 days without it" in text
    assert "next: Gemeente Utrecht (consent-refused): Beëindig de voorziening." in text
    assert "Open tasks: none" in text


def test_the_json_summary_keeps_letter_names_but_not_their_text() -> None:
    summary = _summary(seen={"letters": {"invitation": "Beste J. Jansen, https://x/link/abc"}})
    document = summary.to_json()
    assert document["letters"] == ["invitation"]
    assert "/link/" not in json.dumps(document)
    assert document["devices"][0]["owner"]["kind"] == "consent-refused"

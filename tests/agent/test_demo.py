"""``meeverhuizen demo`` as a user runs it: a subprocess that starts real servers on loopback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agent.local.demo import DemoSummary, render_summary

pytestmark = pytest.mark.slow

_LAUNCHER = "from agent.cli import main; main()"


def test_demo_json_reports_a_completed_handover() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, "demo", "--json", "--timeout", "90"],
        capture_output=True,
        text=True,
        # The processes may take up to the default --start-timeout (300 s) on a busy machine;
        # a failed run prints why, with the log's last lines and the folder it kept.
        timeout=300 + 90 + 60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["completed"] is True
    assert summary["takenOver"] == ["bed-1", "scootmobiel-1"]
    # The built-in stairlift cannot move: the consent page does not offer it.
    assert summary["notMovable"] == []
    for side in ("departing", "receiving"):
        states = [step["toState"] for step in summary[side]["timeline"]]
        assert states[-1] == "completed"
        assert states.count("completed") == 1
    assert summary["departing"]["gemeentecode"] == "0344"
    # The move as registered in the BRP started the handover, not a direct API call.
    first_step = summary["departing"]["timeline"][0]
    assert first_step["toState"] == "started"
    assert "nl.brp.verhuisd" in first_step["cause"]
    assert summary["receiving"]["gemeentecode"] == "0363"
    # Consent was given on the page behind the letter's link, not through the API.
    consent = summary["consent"]
    assert consent["throughPage"] is True
    assert consent["linkUsed"] is True
    assert (consent["linkOpened"], consent["pageShown"]) == (303, 200)
    assert consent["deviceIds"] == ["scootmobiel-1", "bed-1"]
    assert "functional-information" not in consent["dataKinds"]
    consent_step = summary["departing"]["timeline"][2]
    assert (consent_step["toState"], consent_step["cause"]) == ("consent-given", "consent given")
    status = "\n".join(consent["statusPage"])
    assert "Uw scootmobiel, vier wielen gaat mee." in status
    assert "Traplift, ingebouwd: kan niet mee verhuizen" in status
    assert "De overdracht is klaar." in status
    # Both suppliers ran; the demo played the receiving supplier's planner.
    suppliers = {supplier["side"]: supplier for supplier in summary["suppliers"]}
    assert suppliers["receiving"]["supplier"] == "Zorgtechniek"
    assert [step["step"] for step in suppliers["receiving"]["steps"]] == [
        "takeover order received",
        "client contacted",
        "device taken over",
        "settlement accepted",
    ]
    assert suppliers["departing"]["supplier"] == "Hulpmiddelen BV"
    assert [step["step"] for step in suppliers["departing"]["steps"]] == [
        "departure notice received",
        "settlement offered",
    ]
    assert "scootmobiel-1 goes to Zorgtechniek" in suppliers["departing"]["steps"][0]["detail"]
    assert suppliers["departing"]["steps"][1]["detail"].startswith("EUR ")
    receiving_states = [step["toState"] for step in summary["receiving"]["timeline"]]
    assert receiving_states[-2:] == ["orders-placed", "completed"]
    # The token is a key to the client's page: it stays out of the JSON.
    assert "/link/" not in result.stdout
    # No BSN leaves the demo: not in the summary, not in what it prints.
    assert "999993653" not in result.stdout + result.stderr


def test_plain_words_name_every_step_and_device() -> None:
    step = {"toState": "completed", "at": "2025-03-03T09:00:00+00:00", "cause": "decision received"}
    summary = DemoSummary(
        completed=False,
        dossier_id="d-1",
        elapsed_seconds=1.5,
        departing={
            "gemeente": "Gemeente Utrecht",
            "gemeentecode": "0344",
            "state": "completed",
            "timeline": [step],
        },
        receiving={
            "gemeente": "Gemeente Amsterdam",
            "gemeentecode": "0363",
            "state": None,
            "timeline": [],
        },
        devices=(
            {
                "deviceId": "x",
                "description": "Traplift",
                "isoCode": "18 30 08",
                "outcome": "exception",
                "reasonCode": "not-movable",
                "reasonText": "Zit vast.",
                "alternative": "Vraag aan.",
                "startDate": None,
                "endDate": None,
            },
        ),
    )
    text = render_summary(summary)
    assert "NOT completed" in text
    assert "handover completed" in text
    assert "Gemeente Amsterdam (0363): no dossier" in text
    assert "Traplift (18 30 08): not taken over" in text
    assert "reason: Zit vast." in text
    assert summary.to_json()["notMovable"] == ["x"]
    assert "Consent:" not in text


def test_plain_words_show_the_status_page_the_client_saw() -> None:
    summary = DemoSummary(
        completed=True,
        dossier_id="d-1",
        elapsed_seconds=1.0,
        departing={"gemeente": "G", "gemeentecode": "0344", "state": None, "timeline": []},
        receiving={"gemeente": "H", "gemeentecode": "0363", "state": None, "timeline": []},
        devices=(),
        consent={"throughPage": True, "statusPage": ["Uw bed gaat mee."]},
        suppliers=(
            {
                "supplier": "Zorgtechniek",
                "side": "receiving",
                "steps": [
                    {"step": "client contacted", "at": "2025-03-03T09:00:00+00:00", "detail": ""}
                ],
            },
        ),
    )
    text = render_summary(summary)
    assert "Zorgtechniek (receiving supplier):" in text
    assert "client contacted" in text
    assert summary.to_json()["suppliers"][0]["side"] == "receiving"
    assert "consent page behind the personal link" in text
    assert "  Uw bed gaat mee." in text
    assert summary.to_json()["consent"]["throughPage"] is True

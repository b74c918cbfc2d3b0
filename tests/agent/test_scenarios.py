"""Every demo scenario on one real network: where each device ends and who acts next.

All scenarios run once, one after another, on one network of real processes (registry, two
gemeenten, two suppliers); each test reads its scenario's summary. Outcomes and owners come from
the agents' APIs (``agent.local.outcomes``), not from the scenarios' scripts.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent.local.demo import DemoSummary, run_scenario, scenario_network
from agent.local.scenarios import SCENARIOS
from agent.working_days import WorkingDayCalendar

pytestmark = pytest.mark.slow


async def _run_all(folder: Path) -> dict[str, DemoSummary]:
    async with scenario_network(folder) as network:
        return {
            name: await run_scenario(network, scenario, seconds=90.0)
            for name, scenario in SCENARIOS.items()
        }


@pytest.fixture(scope="module")
def summaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("scenarios")
    return {name: s.to_json() for name, s in asyncio.run(_run_all(folder)).items()}


def _devices(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {device["deviceId"]: device for device in summary["devices"]}


def _owner(device: dict[str, Any]) -> tuple[str, str] | None:
    owner = device["owner"]
    return None if owner is None else (owner["party"], owner["kind"])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_device_ends_with_an_outcome_or_an_owner(
    summaries: dict[str, dict[str, Any]], name: str
) -> None:
    summary = summaries[name]
    assert "failedStep" not in summary, summary.get("failedStep")
    assert summary["completed"] is True
    for device in summary["devices"]:
        assert device["outcome"] is not None or device["owner"] is not None, device
        assert device["outcome"] in (None, "continued", "alternative", "not-movable", "stopped")
        assert isinstance(device["daysWithoutDevice"], int)
    # No BSN and no personal link in the summary.
    text = repr(summary)
    assert "/link/" not in text
    assert "99999" not in text


def test_standard_every_movable_device_continues_without_a_day_lost(
    summaries: dict[str, dict[str, Any]],
) -> None:
    summary = summaries["standard"]
    devices = _devices(summary)
    for device_id in ("scootmobiel-1", "bed-1"):
        assert devices[device_id]["outcome"] == "continued"
        assert devices[device_id]["daysWithoutDevice"] == 0
        assert devices[device_id]["owner"] is None
    assert devices["traplift-1"]["outcome"] == "not-movable"
    assert devices["traplift-1"]["daysWithoutDevice"] == 0
    assert devices["traplift-1"]["owner"] is None
    assert summary["departing"]["state"] == "completed"
    assert summary["receiving"]["state"] == "completed"
    # What is left is the back offices' paperwork, each with an owner.
    kinds = sorted((task["party"], task["kind"]) for task in summary["openTasks"])
    assert kinds == [
        ("Gemeente Amsterdam", "eigen-bijdrage-start"),
        ("Gemeente Utrecht", "eigen-bijdrage-end"),
        ("Gemeente Utrecht", "end-beschikking"),
    ]
    # The move started the dossier through the BRP, not a direct API call.
    assert "nl.brp.verhuisd" in summary["departing"]["timeline"][0]["cause"]
    page = "\n".join(summary["statusPage"])
    # The supplier took both devices over; the departing gemeente heard it (handover-progress).
    assert "Uw scootmobiel (Scootmobiel, vier wielen) is op " in page
    assert "overgenomen door de gemeente Amsterdam. U houdt het gewoon." in page
    assert "Bel dan Zorgtechniek (telefoon 020 765 43 21)." in page
    assert "gemeente Amsterdam, telefoon 14 020" in page
    assert "gemeente Utrecht, telefoon 14 030" in page
    assert "De overdracht is klaar." in page
    assert "nog niet klaar" not in page


def test_letter_after_the_move_goes_to_the_new_address(
    summaries: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    letter = _letter(summaries["standard"], tmp_path_factory)
    assert "U bent verhuisd naar de gemeente Amsterdam" in letter
    assert "U gaat verhuizen" not in letter
    assert "Damrak 1\n1012LG Amsterdam" in letter
    assert "Oudegracht" not in letter


def test_letter_before_an_announced_move_goes_to_the_current_address(
    summaries: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    letter = _letter(summaries["announced-move"], tmp_path_factory)
    assert "U gaat verhuizen naar de gemeente Amsterdam" in letter
    assert "Oudegracht 12\n3511AB Utrecht" in letter
    assert "Damrak" not in letter


def _letter(
    summary: dict[str, Any], factory: pytest.TempPathFactory, kind: str = "invitation"
) -> str:
    folder = factory.getbasetemp() / "scenarios0" / "letters"
    return (folder / f"{summary['dossierId']}-{kind}.txt").read_text("utf-8")


def test_announced_move_is_done_before_the_move_date(
    summaries: dict[str, dict[str, Any]],
) -> None:
    devices = _devices(summaries["announced-move"])
    for device in devices.values():
        assert (device["outcome"], device["daysWithoutDevice"], device["owner"]) == (
            "continued",
            0,
            None,
        )


def test_not_connected_keeps_the_consent_and_tasks_the_consulent(
    summaries: dict[str, dict[str, Any]],
) -> None:
    summary = summaries["not-connected"]
    states = [step["toState"] for step in summary["departing"]["timeline"]]
    assert states[-2:] == ["consent-given", "receiver-not-connected"]
    device = _devices(summary)["scootmobiel-1"]
    assert device["outcome"] is None
    # Two days passed on the scenario's clock while the consulent had not yet sent the dossier.
    assert device["daysWithoutDevice"] == 2
    assert _owner(device) == ("Gemeente Utrecht", "receiver-not-connected")
    assert "J. Jansen" in device["owner"]["text"]
    assert "scootmobiel (Scootmobiel, vier wielen)" in device["owner"]["text"]
    assert "Rotterdam" in device["owner"]["text"]
    assert summary["consentedDossierPdfBytes"] > 1000
    page = "\n".join(summary["statusPage"])
    assert "nog niet aangesloten" in page
    assert "Dit lukt nu niet" not in page


def test_urgent_tillift_gets_contact_the_next_working_day(
    summaries: dict[str, dict[str, Any]],
) -> None:
    summary = summaries["urgent"]
    assert summary["urgent"] is True
    # The scenario's clock: earlier scenarios let days pass.
    today = date.fromisoformat(summary["scenarioDate"])
    next_working_day = WorkingDayCalendar().add_working_days(today, 1).isoformat()
    received = [s for s in summary["planners"] if s["step"] == "order received"]
    assert len(received) == 2
    assert all(s["urgent"] is True for s in received)
    assert {s["contactBefore"] for s in received} == {next_working_day}
    for device in summary["devices"]:
        assert (device["outcome"], device["daysWithoutDevice"], device["owner"]) == (
            "continued",
            0,
            None,
        )


def test_wlz_institution_stops_the_takeover_and_tasks_the_zorgkantoor_handover(
    summaries: dict[str, dict[str, Any]],
) -> None:
    summary = summaries["wlz"]
    assert summary["departing"]["state"] == "wlz-institution"
    assert summary["receiving"]["state"] is None
    for device in summary["devices"]:
        assert device["outcome"] == "stopped"
        assert device["daysWithoutDevice"] == 0
        assert _owner(device) == ("Gemeente Utrecht", "wlz-institution")
    assert "wlz" in summary["letters"]
    assert "invitation" not in summary["letters"]
    assert "zorgkantoor" in "\n".join(summary["statusPage"])


def test_refusal_stops_with_a_task_to_end_the_provision(
    summaries: dict[str, dict[str, Any]],
) -> None:
    summary = summaries["refusal"]
    assert summary["receiving"]["state"] is None
    device = _devices(summary)["scootmobiel-1"]
    assert (device["outcome"], device["daysWithoutDevice"]) == ("stopped", 0)
    assert _owner(device) == ("Gemeente Utrecht", "consent-refused")


def test_withdrawal_stops_every_device(summaries: dict[str, dict[str, Any]]) -> None:
    summary = summaries["withdrawal"]
    assert summary["departing"]["state"] == "consent-withdrawn"
    device = _devices(summary)["scootmobiel-1"]
    assert (device["outcome"], device["daysWithoutDevice"]) == ("stopped", 0)
    assert _owner(device) == ("Gemeente Utrecht", "consent-withdrawn")
    assert summary["receiving"]["state"] == "consent-withdrawn"
    page = "\n".join(summary["statusPage"])
    assert "gaat mee" not in page


def test_death_stops_with_a_task_to_collect_the_devices(
    summaries: dict[str, dict[str, Any]],
) -> None:
    summary = summaries["death"]
    assert summary["departing"]["state"] == "cancelled"
    for device in summary["devices"]:
        assert (device["outcome"], device["daysWithoutDevice"]) == ("stopped", 0)
        assert _owner(device) == ("Gemeente Utrecht", "client-deceased")
        assert "J. Jansen is overleden" in device["owner"]["text"]


def test_no_supplier_leaves_the_device_with_the_receiving_gemeente(
    summaries: dict[str, dict[str, Any]],
) -> None:
    devices = _devices(summaries["no-supplier"])
    rolstoel = devices["rolstoel-1"]
    assert rolstoel["outcome"] == "continued"
    # Three days passed on the scenario's clock and nobody has taken it over yet.
    assert rolstoel["daysWithoutDevice"] == 3
    assert _owner(rolstoel) == ("Gemeente Amsterdam", "no-supplier")
    assert "handbewogen rolstoel" in rolstoel["owner"]["text"]
    scootmobiel = devices["scootmobiel-1"]
    assert (scootmobiel["outcome"], scootmobiel["daysWithoutDevice"], scootmobiel["owner"]) == (
        "continued",
        0,
        None,
    )


def test_bruikleen_bed_moves_along_with_a_service_order(
    summaries: dict[str, dict[str, Any]],
) -> None:
    bed = _devices(summaries["bruikleen"])["bed-1"]
    assert (bed["outcome"], bed["daysWithoutDevice"], bed["owner"]) == ("continued", 0, None)


def test_exception_gives_an_alternative_and_the_client_keeps_the_old_device_meanwhile(
    summaries: dict[str, dict[str, Any]],
) -> None:
    rollator = _devices(summaries["exception"])["rollator-1"]
    # The alternative was reported delivered three days after the move; the client kept the old
    # rollator until then.
    assert (rollator["outcome"], rollator["daysWithoutDevice"], rollator["owner"]) == (
        "alternative",
        0,
        None,
    )


def test_a_parent_consents_for_a_young_client_and_gets_the_letter(
    summaries: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    summary = summaries["young-client"]
    letter = _letter(summary, tmp_path_factory, "invitation-vertegenwoordiger")
    assert letter.startswith("M. de Boer\nNieuwegracht 3\n3512LC Utrecht")
    # The child gets no letter of their own.
    assert summary["letters"] == ["invitation-vertegenwoordiger"]
    assert "J. Jansen is verhuisd naar de gemeente Amsterdam" in letter
    assert summary["consent"]["byRepresentative"] is True
    device = _devices(summary)["bed-1"]
    assert (device["outcome"], device["daysWithoutDevice"], device["owner"]) == (
        "continued",
        0,
        None,
    )

"""The steps a scenario is made of: what the client, the BRP and the suppliers' planners do.

Each step is an async function of the :class:`ScenarioRun`: it acts through the agents' public
faces only (the BRP push endpoint, the letters the agent writes, the client's page, the
planner's API) and waits, within the run's time, until the agents have done their part.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from agent.local.brp_simulator import died, moved, push_events
from agent.local.demo_consent import (
    ConsentClick,
    ScenarioStepFailed,
    click_consent_link,
    letter_link,
    read_letter,
    status_page_lines,
    withdraw_on_page,
)
from agent.local.network import LocalAgent, LocalNetwork, LocalSupplier
from agent.working_days import dutch_date_of

__all__ = [
    "ScenarioRun",
    "ScenarioStepFailed",
    "Step",
    "answer_consent",
    "fetch_consented_dossier",
    "let_days_pass",
    "play_planners",
    "read_letter_step",
    "read_status_page",
    "report_alternative",
    "report_death",
    "scenario_today",
    "start_by_brp",
    "wait_for_progress",
    "wait_for_states",
    "withdraw_consent",
]

_POLL_SECONDS = 0.1
# A little more than the scenario network's deadline job interval.
_JOB_SECONDS = 1.5


@dataclass
class ScenarioRun:
    """One scenario running on a network: its client, its dossier and what it saw."""

    network: LocalNetwork
    http: httpx.AsyncClient
    browser: httpx.AsyncClient
    letters: Path
    today: date
    bsn: str
    client: dict[str, Any]
    destination: dict[str, Any]
    move_date: date
    deadline: float
    departing_key: str
    dossier_id: str | None = None
    link: str | None = None
    # What the run saw: letters, consent, status page, supplier steps, PDFs.
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def departing(self) -> LocalAgent:
        return self.network.agents[self.departing_key]

    def left(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)


Step = Callable[[ScenarioRun], Awaitable[None]]


async def _until(found: Callable[[], Awaitable[Any]], what: str, run: ScenarioRun) -> Any:
    while True:
        value = await found()
        if value:
            return value
        if run.left() <= 0:
            raise ScenarioStepFailed(f"no {what} in time")
        await asyncio.sleep(_POLL_SECONDS)


async def _call(
    http: httpx.AsyncClient, party: LocalAgent | LocalSupplier, method: str, path: str, **kw: Any
) -> Any:
    answer = await http.request(method, party.base_url + path, headers=party.auth(), **kw)
    if answer.status_code >= 300:
        raise ScenarioStepFailed(f"{party.spec.name} answered {answer.status_code}: {answer.text}")
    return answer.json()


async def start_by_brp(run: ScenarioRun) -> None:
    """Import the client at the departing gemeente; the BRP reports the move (or announces it)."""
    await _call(run.http, run.departing, "POST", "/v1/provisions/imports", json=[run.client])
    event = moved(
        run.bsn,
        from_code=run.departing.spec.gemeentecode,
        to_code=run.destination["gemeentecode"],
        address=run.destination,
        move_date=run.move_date,
    )
    agent = run.departing
    known = {d["dossierId"] for d in await _call(run.http, agent, "GET", "/v1/dossiers")}
    statuses = await push_events(
        run.http, agent.base_url + "/v1/brp-events", agent.brp_token, [event]
    )
    if statuses != [202]:
        raise ScenarioStepFailed(f"{agent.spec.name} did not accept the BRP event: {statuses}")

    async def started() -> Any:
        dossiers = await _call(run.http, agent, "GET", "/v1/dossiers")
        return next((d["dossierId"] for d in dossiers if d["dossierId"] not in known), None)

    # The event is handled before its 202: the new dossier is there (or there is none).
    run.dossier_id = await _until(started, "dossier started by the BRP event", run)


async def _read_letter(run: ScenarioRun, kind: str) -> str:
    text = await read_letter(run.letters, run.dossier_id or "", kind=kind, seconds=run.left())
    run.seen.setdefault("letters", {})[kind] = text
    return text


def answer_consent(
    *, refuse: bool = False, representative: str | None = None, indicatie: bool = True
) -> Step:
    """The client (or a parent) opens the letter's link and answers on the page."""

    async def step(run: ScenarioRun) -> None:
        # A parent answering for a child got the letter addressed to them.
        kind = "invitation-vertegenwoordiger" if representative else "invitation"
        link = letter_link(await _read_letter(run, kind))
        run.link = link
        movable = tuple(d["deviceId"] for d in run.client["devices"] if d["movable"])
        click = ConsentClick(
            device_ids=() if refuse else movable,
            indicatie=indicatie,
            functional_information=False,
            representative_name=representative,
            refuse=refuse,
        )
        steps = await click_consent_link(run.browser, link, click, movable)
        run.seen["consent"] = {
            "throughPage": True,
            "linkUsed": True,
            "refused": refuse,
            "deviceIds": list(click.device_ids),
            "byRepresentative": representative is not None,
            **steps,
        }

    return step


def read_letter_step(kind: str) -> Step:
    """Wait for a letter of this kind (e.g. the Wlz notice) and keep its text."""

    async def step(run: ScenarioRun) -> None:
        text = await _read_letter(run, kind)
        if run.link is None and "/link/" in text:
            run.link = letter_link(text)

    return step


def _clock_file(network: LocalNetwork) -> Path:
    return network.folder / "scenario-clock"


def _offset_days(network: LocalNetwork) -> float:
    path = _clock_file(network)
    return float(path.read_text("utf-8").strip() or "0") if path.exists() else 0.0


def scenario_today(network: LocalNetwork) -> date:
    """Today on the scenario's clock: the wall clock plus the days that have passed."""
    return dutch_date_of(datetime.now(UTC) + timedelta(days=_offset_days(network)))


def let_days_pass(days: int) -> Step:
    """Move every agent's clock ``days`` ahead; their deadline jobs then fire as they would."""

    async def step(run: ScenarioRun) -> None:
        # Written aside and renamed: an agent never reads a half-written file.
        path = _clock_file(run.network)
        written = path.with_name(f"{path.name}.new")
        written.write_text(str(_offset_days(run.network) + days), "utf-8")
        written.replace(path)
        run.today = scenario_today(run.network)
        # The agents' scheduled jobs (deadlines every half second) see the new day.
        await asyncio.sleep(_JOB_SECONDS)

    return step


def wait_for_states(departing: Collection[str], receiving: Collection[str] = ()) -> Step:
    """Wait until the departing dossier (and, when given, the receiving one) is in a state."""

    async def step(run: ScenarioRun) -> None:
        agents = list(run.network.agents.values())

        async def reached() -> bool:
            views = {}
            for agent in agents:
                answer = await run.http.get(
                    f"{agent.base_url}/v1/dossiers/{run.dossier_id}", headers=agent.auth()
                )
                if answer.status_code == 200:
                    view = answer.json()
                    views[view["side"]] = view["state"]
            ok = views.get("departing") in departing
            return ok and (not receiving or views.get("receiving") in receiving)

        await _until(reached, f"dossier in {sorted(departing)} / {sorted(receiving)}", run)

    return step


async def wait_for_progress(run: ScenarioRun) -> None:
    """Wait until the departing gemeente heard of every takeover the receiving one recorded."""
    receiving = next(a for a in run.network.agents.values() if a is not run.departing)
    orders = await _call(run.http, receiving, "GET", "/v1/placed-orders")
    taken_over = {
        o["deviceId"]
        for o in orders
        if o["dossierId"] == run.dossier_id
        and o["status"] in ("taken-over", "inspected", "replaced")
    }

    async def heard() -> bool:
        view = await _call(run.http, run.departing, "GET", f"/v1/dossiers/{run.dossier_id}")
        states = {p["deviceId"]: p["state"] for p in view["progress"]}
        return all(states.get(device_id) == "taken-over" for device_id in taken_over)

    await _until(heard, "progress at the departing gemeente", run)


async def play_planners(run: ScenarioRun) -> None:
    """Each receiving supplier's planner: contact the client, take the device over."""
    receiving = next(a for a in run.network.agents.values() if a is not run.departing)

    async def placed() -> Any:
        orders = await _call(run.http, receiving, "GET", "/v1/placed-orders")
        return [o for o in orders if o["dossierId"] == run.dossier_id and o["active"]]

    orders = await _until(placed, "takeover order placed", run)
    steps: list[dict[str, str]] = []
    for order in orders:
        supplier = next(
            s for s in run.network.suppliers.values() if s.spec.oin == order["supplierOin"]
        )

        async def received(supplier: LocalSupplier = supplier, order: Any = order) -> Any:
            answer = await run.http.get(
                f"{supplier.base_url}/v1/orders/{order['orderId']}", headers=supplier.auth()
            )
            return answer.json() if answer.status_code == 200 else None

        got = await _until(received, "takeover order at the supplier", run)
        steps.append(
            {
                "supplier": supplier.spec.name,
                "step": "order received",
                "contactBefore": got["contactBefore"],
                "urgent": (got["order"] or {}).get("urgent", False),
            }
        )
        for status in ("client-contacted", "taken-over"):
            await _call(
                run.http,
                supplier,
                "POST",
                f"/v1/orders/{order['orderId']}/status",
                json={"status": status},
            )
            steps.append({"supplier": supplier.spec.name, "step": status})
    run.seen["planners"] = steps


async def withdraw_consent(run: ScenarioRun) -> None:
    """The client withdraws the consent on the page."""
    if run.link is None:
        raise ScenarioStepFailed("no personal link to withdraw with")
    await withdraw_on_page(run.browser, run.link)


async def report_death(run: ScenarioRun) -> None:
    """The BRP reports that the client died."""
    agent = run.departing
    event = died(run.bsn, on=run.today)
    statuses = await push_events(
        run.http, agent.base_url + "/v1/brp-events", agent.brp_token, [event]
    )
    if statuses != [202]:
        raise ScenarioStepFailed(f"{agent.spec.name} did not accept the BRP event: {statuses}")


def report_alternative(device_id: str) -> Step:
    """The receiving gemeente's case worker reports the alternative for ``device_id`` delivered."""

    async def step(run: ScenarioRun) -> None:
        receiving = next(a for key, a in run.network.agents.items() if key != run.departing_key)
        await _call(
            run.http,
            receiving,
            "POST",
            f"/v1/dossiers/{run.dossier_id}/devices/{device_id}/alternative-delivered",
            json={"deliveredOn": run.today.isoformat(), "doneBy": "consulent"},
        )

    return step


async def fetch_consented_dossier(run: ScenarioRun) -> None:
    """The consulent downloads the dossier PDF to send by secure mail."""
    answer = await run.http.get(
        f"{run.departing.base_url}/v1/dossiers/{run.dossier_id}/consented-dossier",
        headers=run.departing.auth(),
    )
    if answer.status_code != 200 or not answer.content.startswith(b"%PDF"):
        raise ScenarioStepFailed(f"no dossier PDF: {answer.status_code}")
    run.seen["consentedDossierPdfBytes"] = len(answer.content)


async def read_status_page(run: ScenarioRun) -> None:
    """What the client's status page says at the end."""
    if run.link is None:
        return
    # The page session may not exist yet (a notice without a question) or may have ended
    # (days passed): the client opens the link from the letter again.
    session = await run.browser.get(httpx.URL(run.link).join("/mijn-verhuizing"))
    if session.status_code != 200:
        opened = await run.browser.get(run.link)
        if opened.status_code != 303:
            raise ScenarioStepFailed(f"opening the link: the agent answered {opened.status_code}")
    run.seen["statusPage"] = await status_page_lines(run.browser, run.link)

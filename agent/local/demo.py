"""``meeverhuizen demo``: a whole handover between two gemeenten, as real processes on loopback.

A registry and two gemeente agents (Utrecht 0344 departs, Amsterdam 0363 receives) start as
uvicorn servers on 127.0.0.1 with SQLite in a temporary folder. A client with three devices (a
scootmobiel, a hoog-laagbed and a built-in stairlift) is imported in Utrecht, a BRP event of the
move to Amsterdam is pushed to Utrecht's agent and starts the dossier. Utrecht writes the client
a letter with a personal link; the demo opens that link and gives consent on the page as a browser
would, and the handover runs through the agents' own outboxes. Two supplier agents run
too: Utrecht's supplier of the rented scootmobiel and Amsterdam's contracted one, whose
planner the demo plays; the suppliers settle the takeover price. Every process stops at the end.
Each process is waited for by its readiness for as long as it makes progress; a failed run keeps
its folder with the logs and says where it is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from agent.errors import AgentError
from agent.local.brp_simulator import moved, push_events
from agent.local.demo_consent import (
    ConsentClick,
    ConsentStepFailed,
    click_consent_link,
    read_letter_link,
    status_page_lines,
)
from agent.local.demo_suppliers import SupplierStepFailed, supplier_steps
from agent.local.network import (
    AMSTERDAM,
    HULPMIDDELEN,
    UTRECHT,
    ZORGTECHNIEK,
    LocalAgent,
    LocalNetwork,
    local_network,
)
from agent.local.starting import DEFAULT_START_SECONDS
from registry.errors import RegistryError

__all__ = ["DemoFailed", "DemoSummary", "render_summary", "run_demo"]

# A BSN from the range reserved for testing (999...), never a real person's.
_DEMO_BSN = "999993653"
_DEVICE_IDS = ("scootmobiel-1", "bed-1", "traplift-1")
_POLL_SECONDS = 0.1
# The client's choices on the consent page: both movable devices, the indicatie, no functional
# information (optional kinds); identity, address and device data are always needed.
_CONSENT_CLICK = ConsentClick(
    device_ids=_DEVICE_IDS[:2], indicatie=True, functional_information=False
)
_EVENT_SECONDS = 10.0

_STATE_WORDS = {
    "started": "handover started",
    "waiting-for-consent": "waiting for the client's consent",
    "consent-given": "the client gave consent",
    "consent-refused": "the client refused consent",
    "offer-sent": "dossier sent to the receiving gemeente",
    "offer-received": "dossier received from the departing gemeente",
    "decided": "a decision was made for each device",
    "orders-placed": "orders placed with the suppliers",
    "completed": "handover completed",
    "cancelled": "handover cancelled",
    "failed": "handover failed",
}
_OUTCOME_WORDS = {"take-over": "taken over", "exception": "not taken over"}


class DemoFailed(AgentError):
    """A demo process did not start or an API call of the demo was refused."""

    code = "demo_failed"
    title = "The demo could not run"
    status = 500


@dataclass(frozen=True)
class DemoSummary:
    """What the demo did: both dossiers with their timelines and the decision per device."""

    completed: bool
    dossier_id: str
    elapsed_seconds: float
    departing: dict[str, Any]
    receiving: dict[str, Any]
    devices: tuple[dict[str, Any], ...]
    consent: dict[str, Any] = field(default_factory=dict)
    # Each supplier's steps ({supplier, side, steps: [{step, at, detail}]}).
    suppliers: tuple[dict[str, Any], ...] = ()
    # The folder with the processes' logs when it was kept (a handover that did not complete).
    logs: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """Machine-readable summary (camelCase; no BSN or other personal data)."""
        outcome = {d["deviceId"]: d for d in self.devices}
        return {
            "completed": self.completed,
            "dossierId": self.dossier_id,
            "elapsedSeconds": round(self.elapsed_seconds, 3),
            "departing": self.departing,
            "receiving": self.receiving,
            "devices": list(self.devices),
            "takenOver": sorted(k for k, d in outcome.items() if d["outcome"] == "take-over"),
            "notMovable": sorted(
                k for k, d in outcome.items() if d.get("reasonCode") == "not-movable"
            ),
            # The link itself stays out: it is a key to the client's page.
            "consent": self.consent,
            "suppliers": list(self.suppliers),
            "logs": None if self.logs is None else str(self.logs),
        }


def _demo_client(today: date) -> list[dict[str, Any]]:
    device = {"customMade": False, "movable": True, "ownership": "bruikleen"}
    return [
        {
            "bsn": _DEMO_BSN,
            "name": {"initials": "J.", "surname": "Jansen"},
            "address": {
                "street": "Oudegracht",
                "houseNumber": 12,
                "postalCode": "3511AB",
                "city": "Utrecht",
                "gemeentecode": UTRECHT.gemeentecode,
            },
            "contactPreferences": {"channels": ["phone"], "phoneNumber": "+31 30 1234567"},
            "indicatie": {
                "legalBasis": "Wmo 2015 art. 2.3.5",
                "beschikkingReference": "UTR-DEMO-0001",
                "decisionDate": (today - timedelta(days=400)).isoformat(),
                "startDate": (today - timedelta(days=380)).isoformat(),
                "endDate": (today + timedelta(days=3 * 365)).isoformat(),
            },
            "devices": [
                device
                | {
                    "deviceId": _DEVICE_IDS[0],
                    "isoCode": "12 23 03",
                    "description": "Scootmobiel, vier wielen",
                    "ownership": "huur",
                    # Rented from Utrecht's supplier; purchase data for the takeover price.
                    "supplier": {"oin": HULPMIDDELEN.oin, "name": HULPMIDDELEN.name},
                    "purchaseDate": (today - timedelta(days=700)).isoformat(),
                    "purchasePriceCents": 389000,
                },
                device
                | {
                    "deviceId": _DEVICE_IDS[1],
                    "isoCode": "18 12 10",
                    "description": "Hoog-laagbed",
                },
                device
                | {
                    "deviceId": _DEVICE_IDS[2],
                    "isoCode": "18 30 08",
                    "description": "Traplift, ingebouwd",
                    "customMade": True,
                    "movable": False,
                },
            ],
        }
    ]


async def _call(
    http: httpx.AsyncClient, agent: LocalAgent, method: str, path: str, **options: Any
) -> Any:
    answer = await http.request(method, agent.base_url + path, headers=agent.auth(), **options)
    if answer.status_code >= 300:
        raise DemoFailed(f"{agent.spec.name} answered {answer.status_code}: {answer.text}")
    return answer.json()


async def _start_handover(http: httpx.AsyncClient, utrecht: LocalAgent, today: date) -> str:
    await _call(http, utrecht, "POST", "/v1/provisions/imports", json=_demo_client(today))
    new_address = {
        "street": "Damrak",
        "houseNumber": 1,
        "postalCode": "1012LG",
        "city": "Amsterdam",
        "gemeentecode": AMSTERDAM.gemeentecode,
    }
    # The BRP registers the move: its event, pushed to Utrecht's agent, starts the dossier.
    event = moved(
        _DEMO_BSN,
        from_code=UTRECHT.gemeentecode,
        to_code=AMSTERDAM.gemeentecode,
        address=new_address,
        # Moved today: the suppliers' settlement (due on the move date) happens during the demo.
        move_date=today,
    )
    statuses = await push_events(
        http, utrecht.base_url + "/v1/brp-events", utrecht.brp_token, [event]
    )
    if statuses != [202]:
        raise DemoFailed(f"{utrecht.spec.name} did not accept the BRP event: {statuses}")
    return await _dossier_started_by_event(http, utrecht)


async def _dossier_started_by_event(http: httpx.AsyncClient, agent: LocalAgent) -> str:
    deadline = time.monotonic() + _EVENT_SECONDS
    while time.monotonic() < deadline:
        dossiers = await _call(http, agent, "GET", "/v1/dossiers")
        if dossiers:
            return str(dossiers[0]["dossierId"])
        await asyncio.sleep(_POLL_SECONDS)
    raise DemoFailed(f"the BRP event started no dossier at {agent.spec.name}")


async def _dossier(http: httpx.AsyncClient, agent: LocalAgent, dossier_id: str) -> Any:
    answer = await http.get(f"{agent.base_url}/v1/dossiers/{dossier_id}", headers=agent.auth())
    return answer.json() if answer.status_code == 200 else None


async def _wait_for_both(
    http: httpx.AsyncClient, agents: tuple[LocalAgent, LocalAgent], dossier_id: str, seconds: float
) -> tuple[Any, Any]:
    deadline = time.monotonic() + seconds
    while True:
        views = (
            await _dossier(http, agents[0], dossier_id),
            await _dossier(http, agents[1], dossier_id),
        )
        done = all(view is not None and view["state"] == "completed" for view in views)
        if done or time.monotonic() >= deadline:
            return views
        await asyncio.sleep(_POLL_SECONDS)


def _side(agent: LocalAgent, view: Any) -> dict[str, Any]:
    return {
        "gemeente": agent.spec.name,
        "gemeentecode": agent.spec.gemeentecode,
        "state": None if view is None else view["state"],
        "timeline": [] if view is None else list(view["timeline"]),
    }


def _devices(receiving_view: Any) -> tuple[dict[str, Any], ...]:
    client = _demo_client(date.today())[0]
    descriptions = {d["deviceId"]: (d["description"], d["isoCode"]) for d in client["devices"]}
    decisions = [] if receiving_view is None else receiving_view["decisions"]
    return tuple(
        {
            "deviceId": item["deviceId"],
            "description": descriptions.get(item["deviceId"], ("", ""))[0],
            "isoCode": item["isoCode"],
            "outcome": item["outcome"],
            "reasonCode": item["reasonCode"],
            "reasonText": item["reasonText"],
            "alternative": item["alternative"],
            "startDate": item["startDate"],
            "endDate": item["endDate"],
        }
        for item in decisions
    )


async def _give_consent(
    browser: httpx.AsyncClient, letters: Path, dossier_id: str, on_link: Callable[[str], None]
) -> tuple[str, dict[str, Any]]:
    try:
        link = await read_letter_link(letters, dossier_id, seconds=_EVENT_SECONDS)
        on_link(link)
        steps = await click_consent_link(browser, link, _CONSENT_CLICK, _DEVICE_IDS[:2])
    except ConsentStepFailed as exc:
        raise DemoFailed(f"consent step: {exc}") from exc
    return link, {
        "throughPage": True,
        "linkUsed": True,
        "letter": f"{dossier_id}-invitation.pdf",
        "deviceIds": list(_CONSENT_CLICK.device_ids),
        "dataKinds": ["identity", "address", "devices", "indicatie"],
        "functionalInformation": False,
        **steps,
    }


async def _status_lines(browser: httpx.AsyncClient, link: str) -> list[str]:
    try:
        return await status_page_lines(browser, link)
    except ConsentStepFailed as exc:
        raise DemoFailed(f"status page: {exc}") from exc


async def _suppliers(
    http: httpx.AsyncClient, network: LocalNetwork, dossier_id: str, seconds: float
) -> tuple[dict[str, Any], ...]:
    try:
        steps = await supplier_steps(
            http,
            receiving=network.suppliers[ZORGTECHNIEK.key],
            departing=network.suppliers[HULPMIDDELEN.key],
            dossier_id=dossier_id,
            seconds=seconds,
        )
    except SupplierStepFailed as exc:
        raise DemoFailed(f"supplier step: {exc}") from exc
    return steps


@dataclass(frozen=True)
class _Hooks:
    on_werkbak: Callable[[dict[str, str]], None]
    keep_running: Callable[[DemoSummary], Awaitable[None]] | None


def _werkbak_addresses(network: LocalNetwork) -> dict[str, str]:
    addresses = {agent.spec.name: f"{agent.base_url}/werkbak" for agent in network.agents.values()}
    for supplier in network.suppliers.values():
        addresses[supplier.spec.name] = f"{supplier.base_url}/werkbak"
    return addresses


async def _run(
    folder: Path,
    seconds: float,
    on_link: Callable[[str], None],
    start: _Start,
    hooks: _Hooks | None = None,
) -> DemoSummary:
    letters = folder / "letters"
    settings = {
        "consent.letter_directory": letters,
        "takeover.deadline_interval_seconds": 0.5,
        # The werkbak's demo sign-in (no identity provider) exists only in development.
        "environment": "development",
    }
    async with (
        local_network(
            folder,
            suppliers=(HULPMIDDELEN, ZORGTECHNIEK),
            agent_settings=settings,
            start_seconds=start.seconds,
            on_wait=start.on_wait,
        ) as network,
        httpx.AsyncClient(timeout=10.0) as http,
        httpx.AsyncClient(timeout=10.0, follow_redirects=False) as browser,
    ):
        # The handover's time starts when every process is ready.
        began = time.monotonic()
        utrecht, amsterdam = network.agents[UTRECHT.key], network.agents[AMSTERDAM.key]
        if hooks is not None:
            hooks.on_werkbak(_werkbak_addresses(network))
        dossier_id = await _start_handover(http, utrecht, date.today())
        link, consent = await _give_consent(browser, letters, dossier_id, on_link)
        left = max(seconds - (time.monotonic() - began), 1.0)
        suppliers = await _suppliers(http, network, dossier_id, left)
        left = max(seconds - (time.monotonic() - began), 1.0)
        departing, receiving = await _wait_for_both(http, (utrecht, amsterdam), dossier_id, left)
        consent["statusPage"] = await _status_lines(browser, link)
        completed = all(
            view is not None and view["state"] == "completed" for view in (departing, receiving)
        )
        summary = DemoSummary(
            completed=completed,
            dossier_id=dossier_id,
            elapsed_seconds=time.monotonic() - began,
            departing=_side(utrecht, departing),
            receiving=_side(amsterdam, receiving),
            devices=_devices(receiving),
            consent=consent,
            suppliers=suppliers,
        )
        if hooks is not None and hooks.keep_running is not None:
            await hooks.keep_running(summary)
    return summary


@dataclass(frozen=True)
class _Start:
    seconds: float
    on_wait: Callable[[str], None] | None


def run_demo(
    *,
    timeout: float = 60.0,
    folder: Path | None = None,
    on_link: Callable[[str], None] | None = None,
    start_seconds: float = DEFAULT_START_SECONDS,
    on_wait: Callable[[str], None] | None = None,
    on_werkbak: Callable[[dict[str, str]], None] | None = None,
    keep_running: Callable[[DemoSummary], Awaitable[None]] | None = None,
) -> DemoSummary:
    """Run the whole demo; the processes stop at the end, and the folder goes unless it failed.

    ``timeout`` bounds the handover once every process is ready; starting them may take up to
    ``start_seconds``, as long as they make progress, and ``on_wait`` hears what is waited for.
    ``on_link`` gets the client's personal link as soon as the letter is written; it is a
    loopback address that works only while the demo runs. ``on_werkbak`` gets the werkbak
    address of each organisation (demo sign-in, no provider). ``keep_running`` is awaited with
    the summary while every process still runs (e.g. until Ctrl-C). Without ``folder`` the demo
    works in a new temporary folder, removed after a successful run and kept after a failed one.
    Raises :class:`DemoFailed` when a process does not start or an API call is refused; its
    detail names the folder with the logs.
    """
    report = on_link or (lambda _link: None)
    start = _Start(start_seconds, on_wait)
    hooks = _Hooks(on_werkbak or (lambda _addresses: None), keep_running)
    temporary = folder is None
    work = Path(tempfile.mkdtemp(prefix="meeverhuizen-demo-")) if folder is None else folder
    try:
        summary = asyncio.run(_run(work, timeout, report, start, hooks))
    except DemoFailed as exc:
        raise DemoFailed(f"{exc.detail}\nThe logs are kept in {work}") from exc
    except (OSError, RuntimeError, RegistryError, httpx.HTTPError) as exc:
        raise DemoFailed(f"{type(exc).__name__}: {exc}\nThe logs are kept in {work}") from exc
    if not summary.completed:
        return dataclasses.replace(summary, logs=work)
    if temporary:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _time(text: str) -> str:
    return datetime.fromisoformat(text).astimezone().strftime("%H:%M:%S.%f")[:-3]


def _timeline_lines(side: dict[str, Any]) -> list[str]:
    lines = [f"{side['gemeente']} ({side['gemeentecode']}): {side['state'] or 'no dossier'}"]
    for step in side["timeline"]:
        words = _STATE_WORDS.get(step["toState"], step["toState"])
        lines.append(f"  {_time(step['at'])}  {words}  ({step['cause']})")
    return lines


def _device_lines(devices: tuple[dict[str, Any], ...]) -> list[str]:
    lines = ["Devices:"]
    for device in devices:
        outcome = _OUTCOME_WORDS.get(device["outcome"], device["outcome"])
        line = f"  {device['description']} ({device['isoCode']}): {outcome}"
        if device["outcome"] == "take-over":
            until = device["endDate"] or "no end date"
            line += f", continued from {device['startDate']} until {until}"
        lines.append(line)
        if device["reasonText"]:
            lines.append(f"    reason: {device['reasonText']}")
        if device["alternative"]:
            lines.append(f"    alternative: {device['alternative']}")
    return lines


def _supplier_lines(suppliers: tuple[dict[str, Any], ...]) -> list[str]:
    lines: list[str] = []
    for supplier in suppliers:
        lines.append(f"{supplier['supplier']} ({supplier['side']} supplier):")
        for step in supplier["steps"]:
            detail = f"  ({step['detail']})" if step["detail"] else ""
            lines.append(f"  {_time(step['at'])}  {step['step']}{detail}")
        lines.append("")
    return lines


def _consent_lines(consent: dict[str, Any]) -> list[str]:
    if not consent:
        return []
    lines = [
        "Consent: given on the consent page behind the personal link in the letter",
        "(the demo opened the link and clicked like a browser; the link no longer works now",
        "that the demo has stopped). The client's status page said:",
    ]
    return [*lines, *(f"  {line}" for line in consent.get("statusPage", []))]


def render_summary(summary: DemoSummary) -> str:
    """The timeline of both dossiers and the device decisions in plain words."""
    result = "completed" if summary.completed else "NOT completed"
    lines = [
        f"Handover {summary.dossier_id}: {result} in {summary.elapsed_seconds:.1f} s",
        "",
        *_timeline_lines(summary.departing),
        "",
        *_timeline_lines(summary.receiving),
        "",
        *_device_lines(summary.devices),
        "",
        *_supplier_lines(summary.suppliers),
        *_consent_lines(summary.consent),
    ]
    return "\n".join(lines).rstrip()

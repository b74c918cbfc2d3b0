"""The consent pages in real headless Chromium (Playwright), served by uvicorn on loopback.

Open the link, choose per device, consent, see the status; refuse; withdraw; keyboard
only. axe-core runs in every page: no serious or critical violations.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from agent.consent.links import LINK_PATH
from protocol.messages import parse_message
from protocol.signing import sign_message
from tests.agent.conftest import Agents, RecordingChannel
from tests.conftest import free_port

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = "/usr/bin/chromium"
AXE = (Path(__file__).parent / "axe.min.js").read_text()
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed (.ci/run does it)"
)


@dataclass
class Site:
    base: str
    agents: Agents
    letters: RecordingChannel
    page: Any

    async def link(self) -> str:
        await self.agents.start_dossier()
        return f"{self.base}{LINK_PATH}{self.letters.token()}"


@pytest.fixture
async def site(agents: Agents, letters: RecordingChannel) -> AsyncIterator[Site]:
    port = free_port()
    # The fixture ran the lifespan already; uvicorn only serves HTTP here.
    config = uvicorn.Config(
        agents.departing_app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page()
        page.set_default_timeout(10_000)
        try:
            yield Site(f"http://127.0.0.1:{port}", agents, letters, page)
        finally:
            await browser.close()
            server.should_exit = True
            await serving


async def _axe(page: Any) -> None:
    await page.evaluate(AXE)
    result = await page.evaluate(
        "async () => JSON.stringify(await axe.run(document, {resultTypes: ['violations']}))"
    )
    violations = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for v in json.loads(result)["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert violations == [], violations


async def test_consent_per_device_then_status_then_withdrawal(site: Site) -> None:
    page = site.page
    await page.goto(await site.link())
    assert page.url == f"{site.base}/mijn-verhuizing"
    await _axe(page)
    await page.check("#apparaat-dev-1-ja")
    await page.check("#apparaat-dev-2-nee")
    async with page.expect_navigation():
        await page.click("button[value=ja]")
    await site.agents.settle()
    await page.reload()
    assert "Uw scootmobiel (Scootmobiel, vier wielen) gaat mee" in await page.inner_text("main")
    assert "Hoog-laagbed: gaat niet mee." in await page.inner_text("main")
    await _axe(page)
    async with page.expect_navigation():
        await page.click("a.button:has-text('Toestemming intrekken')")
    await _axe(page)
    async with page.expect_navigation():
        await page.click("button:has-text('Ja, trek mijn toestemming in')")
    await site.agents.settle()
    await page.reload()
    assert "U heeft uw toestemming ingetrokken" in await page.inner_text("main")
    await _axe(page)
    receiving = site.agents.receiving
    dossier = (await receiving.list_dossiers())[0]
    assert dossier.state == "consent-withdrawn"


async def _progress_from_amsterdam(site: Site, dossier_id: str, device: dict[str, Any]) -> None:
    """Amsterdam's agent reports the supplier's progress to Utrecht, signed, over HTTP."""
    receiving, departing = site.agents.receiving.settings, site.agents.departing.settings
    now = site.agents.clock.now()
    message = parse_message(
        {
            "messageId": str(uuid.uuid4()),
            "dossierId": dossier_id,
            "messageType": "handover-progress",
            "protocolVersion": "1.0",
            "sender": {"oin": receiving.oin, "role": "receiving-gemeente"},
            "receiver": {"oin": departing.oin, "role": "departing-gemeente"},
            "createdAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "body": {"devices": [{**device, "changedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ")}]},
        }
    )
    signed = sign_message(message, receiving.private_jwk(), signing_time=now)
    answer = await site.agents.http.post(
        "http://utrecht.test/v1/messages", content=signed.body, headers=signed.headers()
    )
    assert answer.status_code == 200, answer.text


async def test_status_page_tells_the_suppliers_progress_and_when_it_is_klaar(site: Site) -> None:
    page = site.page
    await page.goto(await site.link())
    await page.check("#apparaat-dev-1-ja")
    await page.check("#apparaat-dev-2-nee")
    async with page.expect_navigation():
        await page.click("button[value=ja]")
    await site.agents.settle()
    [dossier] = await site.agents.departing.list_dossiers()
    supplier = {"oin": "00000003876543210000", "name": "Zorgtechniek"}

    await _progress_from_amsterdam(
        site,
        dossier.dossier_id,
        {
            "deviceId": "dev-1",
            "state": "client-contacted",
            "followUp": "supplier-order",
            "supplier": supplier,
            "supplierPhone": "020 765 43 21",
            "contactedOn": "2025-03-05",
        },
    )
    await page.reload()
    main = await page.inner_text("main")
    assert (
        "Zorgtechniek (telefoon 020 765 43 21) heeft op 5 maart 2025 contact met u gehad." in main
    )
    assert "De overdracht is nog niet klaar." in main
    assert (
        "Over uw scootmobiel (Scootmobiel, vier wielen): Zorgtechniek, telefoon 020 765 43 21"
        in main
    )
    await _axe(page)

    await _progress_from_amsterdam(
        site,
        dossier.dossier_id,
        {
            "deviceId": "dev-1",
            "state": "taken-over",
            "supplier": supplier,
            "takenOverOn": "2025-03-12",
        },
    )
    await page.reload()
    main = await page.inner_text("main")
    assert "is op 12 maart 2025 overgenomen door de gemeente Amsterdam" in main
    assert (
        "De gemeente Amsterdam heeft uw scootmobiel (Scootmobiel, vier wielen) overgenomen." in main
    )
    assert "De overdracht is klaar." in main
    await _axe(page)


async def test_refusal_and_error_summary(site: Site) -> None:
    page = site.page
    await page.goto(await site.link())
    async with page.expect_navigation():
        await page.click("button[value=ja]")
    summary = page.locator(".error-summary")
    assert await summary.is_visible()
    await _axe(page)
    await summary.locator("a").first.click()
    assert page.url.endswith("#apparaat-dev-1")
    async with page.expect_navigation():
        await page.click("button[value=nee]")
    assert "Wmo-loket" in await page.inner_text("main")
    await _axe(page)


async def test_invalid_link_page_is_accessible(site: Site) -> None:
    page = site.page
    answer = await page.goto(f"{site.base}{LINK_PATH}{'x' * 43}")
    assert answer is not None
    assert answer.status == 404
    await _axe(page)


async def _tab_to(page: Any, script: str, limit: int = 60) -> None:
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"() => {{ const e = document.activeElement; return {script}; }}"):
            return
    raise AssertionError(f"never reached focus: {script}")


async def test_keyboard_only(site: Site) -> None:
    page = site.page
    await page.goto(await site.link())
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.textContent") == (
        "Direct naar de inhoud"
    )
    await page.keyboard.press("Enter")
    assert await page.evaluate("() => document.activeElement.id") == "inhoud"
    await _tab_to(page, "e.id === 'apparaat-dev-1-ja'")
    await page.keyboard.press("Space")
    await _tab_to(page, "e.id === 'apparaat-dev-2-ja'")
    await page.keyboard.press("Space")
    await _tab_to(page, "e.textContent === 'Ik geef toestemming'")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{site.base}/mijn-verhuizing")
    await site.agents.settle()
    await page.reload()
    text = await page.inner_text("main")
    assert "Uw hoog-laagbed gaat mee" in text
    assert "Uw scootmobiel (Scootmobiel, vier wielen) gaat mee" in text

"""The registry's public monitoring pages in real headless Chromium, served by uvicorn.

The country page, then one gemeente chosen with the form (keyboard only), then another month:
axe-core runs on every page (no serious or critical violations) and no count below 5 shows.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from protocol.clock import FrozenClock
from protocol.jwk import generate_private_jwk, public_jwk
from registry.app import create_app
from registry.client import RegistryClient
from registry.monitoring import REPORT_WINDOW_DAYS, DailyReport
from registry.operator import OperatorClient
from registry.settings import RegistrySettings
from tests.browser.test_consent_browser import ARGS, CHROMIUM, _axe
from tests.conftest import free_port
from tests.registry.conftest import START, UTRECHT_OIN

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed (.ci/run does it)"
)
TOKEN = "operator-token-for-the-monitoring-pages-0123"


async def _report(
    base: str, http: httpx.AsyncClient, anchor: dict[str, Any], clock: FrozenClock
) -> None:
    """Utrecht's agent enrols and sends one day's counts."""
    code = await OperatorClient(base, TOKEN, http=http).issue_enrolment_code(gemeentecode="0344")
    key = generate_private_jwk("EdDSA")
    client = RegistryClient(base, anchor, http=http, clock=clock)
    await client.enrol(
        code=code,
        oin=UTRECHT_OIN,
        endpoint="http://utrecht.test",
        protocol_versions=["1.0"],
        message_types=["dossier-offer"],
        public_jwks=[public_jwk(key)],
    )
    report = DailyReport.model_validate(
        {
            "oin": UTRECHT_OIN,
            "kind": "gemeente",
            "day": date(2025, 2, 27).isoformat(),
            "reportedAt": START.isoformat(),
            "handovers": {"departing": {"started": 14, "completed": 3}},
            "daysWithoutDevice": {"none": 6, "oneToThree": 1},
            "openTasks": {"consentNoAnswer": 8, "manualCheck": 2},
        }
    )
    await client.send_daily_report(report, private_jwk=key)


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[tuple[str, Any]]:
    key = generate_private_jwk("EdDSA")
    settings = RegistrySettings(
        environment="production",
        database_url=database_url,
        signing_jwk=json.dumps(key),
        operator_token=TOKEN,
        endpoint_allow_list=[".test"],
    )
    clock = FrozenClock(START)
    app = create_app(settings, clock=clock)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        await _report(base, http, public_jwk(key), clock)
    # A week on, no report can change February any more: it is shown.
    clock.advance(timedelta(days=REPORT_WINDOW_DAYS + 1))
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page()
        page.set_default_timeout(10_000)
        try:
            yield base, page
        finally:
            await browser.close()
            server.should_exit = True
            await serving


async def _check(page: Any) -> str:
    """Axe on the page, no script of the page's own, every count 5 or more; the main text."""
    assert await page.locator("script").count() == 0
    await _axe(page)
    text: str = await page.inner_text("main")
    for cell in await page.locator("td").all_inner_texts():
        assert cell == "minder dan 5" or int(cell) >= 5, cell
    return text


async def test_country_then_a_gemeente_by_keyboard_then_another_month(
    site: tuple[str, Any],
) -> None:
    base, page = site
    await page.goto(f"{base}/monitoring")
    text = await _check(page)
    assert "Hulpmiddelen die meeverhuizen: heel Nederland" in text
    assert "de dagen van 1 februari 2025 tot en met 28 februari 2025" in text
    assert re.search(r"Als vertrekkende gemeente\s+14\s+minder dan 5", text)

    await page.focus("#gemeentecode")
    await page.keyboard.type("Utrecht")
    await page.select_option("#gemeentecode", "0344")
    async with page.expect_navigation():
        await page.locator("button:has-text('Toon de gemeente')").press("Enter")
    text = await _check(page)
    assert "Hulpmiddelen die meeverhuizen: Utrecht" in text
    assert "Deze cijfers stuurde Utrecht zelf." in text
    assert re.search(r"De cliënt gaf geen antwoord\s+8", text)
    assert re.search(r"Iemand moet het dossier nakijken\s+minder dan 5", text)

    await page.select_option("#maand", "2025-01")
    async with page.expect_navigation():
        await page.locator("button:has-text('Toon de cijfers')").press("Enter")
    text = await _check(page)
    assert "de dagen van 1 januari 2025 tot en met 31 januari 2025" in text
    assert "Deze cijfers stuurde Utrecht zelf." in text
    assert re.search(r"Als vertrekkende gemeente\s+minder dan 5\s+minder dan 5", text)

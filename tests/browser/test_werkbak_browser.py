"""The werkbak in real headless Chromium, signing in through a real OpenID Connect provider.

oidc-provider (Node.js) vouches for the people; the registry, two gemeenten and two suppliers
exchange real signed messages; each agent's werkbak is served by uvicorn on loopback. axe-core
runs on every page: no serious or critical violations.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.core.processing_log import ProcessingLog
from protocol.clock import FrozenClock
from tests.browser.test_consent_browser import ARGS, CHROMIUM, _axe, _tab_to
from tests.browser.werkbak_world import Provider, World, oidc_provider, werkbak_world

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed (.ci/run does it)"
)
# MEEVERHUIZEN_SCREENSHOTS=docs writes the pages docs/werkbak.md shows.
SCREENSHOTS = os.environ.get("MEEVERHUIZEN_SCREENSHOTS")


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with oidc_provider() as running:
        yield running


@pytest.fixture
def clock() -> FrozenClock:
    # The provider's ID tokens carry the real time; the agents' clock starts there too.
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def world(
    provider: Provider, database_url: str, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[World]:
    async with werkbak_world(provider, database_url, tmp_path, clock) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def _page(browser: Any) -> Any:
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page


async def _sign_in(page: Any, base: str, login: str) -> None:
    """Through the werkbak's sign-in page and the provider's own form, back to the werkbak."""
    await page.context.clear_cookies()
    await page.goto(f"{base}/werkbak/inloggen")
    await _axe(page)
    async with page.expect_navigation():
        await page.click("a:has-text('Inloggen bij')")
    if not page.url.startswith(base):
        # The provider's own form; with a session at the provider it sends us straight back.
        await page.fill("input[name=login]", login)
        await page.fill("input[name=password]", "any")
        await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/werkbak/**")


async def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"werkbak-{name}.png"), full_page=True)


async def test_sign_in_sign_out_and_session_expiry(
    provider: Provider, world: World, browser: Any
) -> None:
    page = await _page(browser)
    base = world.bases["utrecht"]
    await _sign_in(page, base, "anna")
    assert page.url == f"{base}/werkbak/taken"
    assert "Anna de Vries (consulent)" in await page.inner_text("header")
    await _axe(page)
    # Signing out ends the werkbak session, then the provider's: it asks to confirm.
    async with page.expect_navigation(url=f"{provider.issuer}/**"):
        await page.click("button:has-text('Uitloggen')")
    # The werkbak session ended already, whatever the person answers at the provider.
    other_tab = await page.context.new_page()
    assert (await other_tab.goto(f"{base}/werkbak/taken")).status == 401
    await other_tab.close()
    async with page.expect_navigation(url=f"{base}/werkbak/inloggen**"):
        await page.click("button[name=logout]")
    assert "U bent uitgelogd." in await page.inner_text("main")
    await _axe(page)
    answer = await page.goto(f"{base}/werkbak/taken")
    assert answer.status == 401
    await _axe(page)
    # Signing in again needs the provider's own login: its session has ended too.
    await page.goto(f"{base}/werkbak/inloggen")
    async with page.expect_navigation():
        await page.click("a:has-text('Inloggen bij')")
    assert page.url.startswith(provider.issuer)
    assert await page.locator("input[name=login]").count() == 1
    # Signed in again, the session lasts 60 minutes on the agent's clock, then is gone.
    await _sign_in(page, base, "anna")
    world.clock.advance(timedelta(minutes=61))
    answer = await page.goto(f"{base}/werkbak/taken")
    assert answer.status == 401
    assert "Log eerst in" in await page.inner_text("main")


async def test_a_person_sees_only_their_organisation_and_role(world: World, browser: Any) -> None:
    dossier_id = await world.start_dossier()
    page = await _page(browser)
    # Anna works for Utrecht: Amsterdam's werkbak does not sign her in.
    await _sign_in_refused(page, world.bases["amsterdam"], "anna")
    assert "niet aangemeld voor deze organisatie" in await page.inner_text("main")
    await _axe(page)
    # Gerrit is Utrecht's, without a werkbak role.
    await _sign_in_refused(page, world.bases["utrecht"], "gerrit")
    assert "geen rol in de werkbak" in await page.inner_text("main")
    # Bram, Amsterdam's consulent, does not find Utrecht's dossier in Amsterdam.
    await _sign_in(page, world.bases["amsterdam"], "bram")
    answer = await page.goto(f"{world.bases['amsterdam']}/werkbak/dossiers/{dossier_id}")
    assert answer.status == 404
    await page.goto(f"{world.bases['amsterdam']}/werkbak/zoeken")
    await page.fill("#q", "Jansen")
    async with page.expect_navigation():
        await page.click("button:has-text('Zoeken')")
    assert "Er is geen dossier gevonden." in await page.inner_text("main")
    # A consulent has no operator or planner page.
    for path in ("/werkbak/beheer", "/werkbak/opdrachten"):
        answer = await page.goto(world.bases["amsterdam"] + path)
        assert answer.status == 403
    await _axe(page)


async def _sign_in_refused(page: Any, base: str, login: str) -> None:
    # A new person: the provider's session of the previous one goes with the cookies.
    await page.context.clear_cookies()
    await page.goto(f"{base}/werkbak/inloggen")
    async with page.expect_navigation():
        await page.click("a:has-text('Inloggen bij')")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", "any")
    async with page.expect_navigation(url=f"{base}/werkbak/inloggen/terug**"):
        await page.click("button[type=submit]")


async def test_consulent_searches_records_consent_and_planner_records_contact(
    world: World, browser: Any
) -> None:
    utrecht = world.services["utrecht"]
    dossier_id = await world.start_dossier()
    page = await _page(browser)
    base = world.bases["utrecht"]
    await _sign_in(page, base, "anna")
    # Search by postcode: the look-up is in the processing log with Anna's name.
    await page.goto(f"{base}/werkbak/zoeken")
    await page.fill("#q", "3511 AB")
    async with page.expect_navigation():
        await page.click("button:has-text('Zoeken')")
    await _axe(page)
    await _shot(page, "zoeken")
    records = await ProcessingLog.records(utrecht.database, dossier_id=dossier_id)
    assert [r.actor for r in records if r.activity_id == "werkbak-search"] == ["Anna de Vries"]
    async with page.expect_navigation():
        await page.click("a:has-text('J. Jansen')")
    await _axe(page)
    # The client phoned: consent for the scootmobiel, recorded with a reason.
    await page.check("#apparaat-dev-1")
    await page.fill("#reden-toestemming", "Cliënt belde op 3 maart en gaf toestemming.")
    async with page.expect_navigation():
        await page.click("button:has-text('Toestemming vastleggen')")
    text = await page.inner_text("main")
    assert "Uw handeling is vastgelegd in de tijdlijn." in text
    assert "Anna de Vries: toestemming vastgelegd: Cliënt belde" in text
    assert "Telefonisch" in text
    await world.settle()
    # Amsterdam decided and ordered the takeover at Zorgtechniek; its planner calls the client.
    planner = await _page(browser)
    supplier = world.bases["zorgtechniek"]
    await _sign_in(planner, supplier, "piet")
    assert planner.url == f"{supplier}/werkbak/opdrachten"
    await _axe(planner)
    await _shot(planner, "opdrachten")
    async with planner.expect_navigation():
        await planner.click("a:has-text('J. Jansen')")
    await _axe(planner)
    await _shot(planner, "opdracht")
    # Piet's looks at the list and the order are in Zorgtechniek's processing log, under the
    # order's dossier, with one data subject that is not the dossier id itself.
    zorgtechniek = world.services["zorgtechniek"]
    [order] = await zorgtechniek.supplier.orders()
    records = await ProcessingLog.records(zorgtechniek.database, dossier_id=order.dossier_id)
    assert [(r.activity_id, r.actor) for r in records] == [
        ("werkbak-orders-viewed", "Piet Visser"),
        ("werkbak-order-viewed", "Piet Visser"),
    ]
    assert len({r.data_subject_id for r in records}) == 1
    assert order.dossier_id not in records[0].data_subject_id
    await planner.check("#status-client-contacted")
    async with planner.expect_navigation():
        await planner.click("button:has-text('Status vastleggen')")
    assert "De status is vastgelegd." in await planner.inner_text("main")
    records = await ProcessingLog.records(zorgtechniek.database, dossier_id=order.dossier_id)
    assert [r.activity_id for r in records][2:] == [
        "werkbak-order-changed",
        "werkbak-order-viewed",
    ]
    await world.settle()
    orders = await world.services["amsterdam"].orders.list()
    assert [order.status for order in orders] == ["client-contacted"]
    await planner.goto(f"{supplier}/werkbak/verrekeningen")
    await _axe(planner)
    # Back in Utrecht the dossier page shows the messages and their delivery.
    await page.reload()
    await _axe(page)
    await _shot(page, "dossier")
    assert "Bezorgd" in await page.inner_text("main")


async def test_consulent_takes_and_closes_a_task_by_keyboard(world: World, browser: Any) -> None:
    dossier_id = await world.hand_over()
    # The supplier reports a problem: Amsterdam's consulent gets a task.
    orders = await world.services["zorgtechniek"].supplier.orders(open_only=True)
    await world.services["zorgtechniek"].supplier.record_status(
        orders[0].order_id, "problem", reason_code="client-unreachable", reason_text="Geen gehoor"
    )
    await world.settle()
    page = await _page(browser)
    base = world.bases["amsterdam"]
    await _sign_in(page, base, "bram")
    await _axe(page)
    await _shot(page, "taken")
    row = page.locator("tbody tr").first
    assert "J. Jansen" in await row.inner_text()
    # The list showed the client's name: a processing log record with Bram as actor.
    records = await ProcessingLog.records(world.services["amsterdam"].database)
    assert ("werkbak-worklist-viewed", "Bram Smit") in {(r.activity_id, r.actor) for r in records}
    assert "Scootmobiel, vier wielen" in await row.inner_text()
    # Keyboard only: the skip link, then the first task's button.
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.textContent") == (
        "Direct naar de inhoud"
    )
    await page.keyboard.press("Enter")
    await _tab_to(page, "e.textContent === 'Taak nemen'")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert "U heeft de taak genomen." in await page.inner_text("main")
    assert "Bram Smit" in await page.locator("tbody tr").first.inner_text()
    async with page.expect_navigation():
        await page.click("a:has-text('Afsluiten in het dossier')")
    await _axe(page)
    await page.fill("textarea[name=notitie]", "Cliënt gebeld; leverancier belt morgen opnieuw.")
    async with page.expect_navigation():
        await page.click("button:has-text('Taak afsluiten')")
    text = await page.inner_text("main")
    assert "De taak is afgesloten." in text
    assert "taak afgesloten: Cliënt gebeld" in text
    tasks = await world.services["amsterdam"].tasks.list("done", dossier_id=dossier_id)
    assert [(t.done_by, t.note) for t in tasks] == [
        ("Bram Smit", "Cliënt gebeld; leverancier belt morgen opnieuw.")
    ]
    await page.goto(f"{base}/werkbak/taken")
    assert "Er zijn geen open taken." in await page.inner_text("main")


async def test_receiving_consulent_changes_the_decision_for_a_device(
    world: World, browser: Any
) -> None:
    dossier_id = await world.hand_over()
    page = await _page(browser)
    base = world.bases["amsterdam"]
    await _sign_in(page, base, "bram")
    await page.goto(f"{base}/werkbak/dossiers/{dossier_id}")
    # A second tab of Bram's keeps the form as it was before the change.
    stale = await page.context.new_page()
    await stale.goto(f"{base}/werkbak/dossiers/{dossier_id}")
    await _axe(page)
    assert "Besluit wijzigen: Scootmobiel, vier wielen" in await page.inner_text("main")
    await page.select_option("#redencode-dev-1", "unsafe-or-worn")
    await page.fill("#reden-dev-1", "Uw scootmobiel is versleten en niet meer veilig.")
    await page.fill("#alternatief-dev-1", "U krijgt van ons een nieuwe scootmobiel.")
    async with page.expect_navigation():
        await page.click("button:has-text('Uitzondering maken')")
    await _axe(page)
    text = await page.inner_text("main")
    assert "Uw handeling is vastgelegd in de tijdlijn." in text
    assert (
        "Bram Smit heeft het besluit gewijzigd: wij nemen de scootmobiel (Scootmobiel, vier "
        "wielen) niet over. Reden: Uw scootmobiel is versleten en niet meer veilig."
    ) in text
    # The order is withdrawn, so the dossier is done; the exception may still be taken back.
    assert "Besluit wijzigen: Scootmobiel, vier wielen" in text
    assert "Toch overnemen" in text
    assert "Uitzondering maken" not in text
    await world.settle()
    [order] = await world.services["zorgtechniek"].supplier.orders()
    assert order.status == "cancelled"
    utrecht = await world.services["utrecht"].dossier(dossier_id)
    assert [d.outcome for d in utrecht.decisions] == ["exception"]
    # The stale form is refused in Dutch, and nothing changes.
    await stale.fill("#reden-dev-1", "Toch een uitzondering.")
    await stale.fill("#alternatief-dev-1", "Iets anders.")
    async with stale.expect_navigation():
        await stale.click("button:has-text('Uitzondering maken')")
    await _axe(stale)
    assert "Het besluit over dit hulpmiddel kan nu niet veranderen." in await stale.inner_text(
        "main"
    )


async def test_operator_requeues_a_dead_letter(world: World, browser: Any) -> None:
    dossier_id = await world.start_dossier()

    async def amsterdam_down(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "amsterdam.test":
            return httpx.Response(503)
        return None

    world.network.fault = amsterdam_down
    await world.give_consent(dossier_id)
    await world.settle()
    began = world.clock.now()
    world.clock.advance(timedelta(hours=2))
    await world.settle()
    # Back to the real time: the provider signs its ID tokens with it.
    world.clock.set(began)
    dead = await world.services["utrecht"].outbox.list("dead")
    assert [entry.message_type for entry in dead] == ["dossier-offer"]
    page = await _page(browser)
    base = world.bases["utrecht"]
    await _sign_in(page, base, "olga")
    assert page.url == f"{base}/werkbak/beheer"
    text = await page.inner_text("main")
    assert "dossier-offer" in text
    assert "503" in text
    endpoint = world.services["utrecht"].settings.public_base_url
    assert f"Bereikbaar. Wij staan erin met het adres {endpoint}." in text
    await _axe(page)
    await _shot(page, "beheer")
    world.network.fault = None
    async with page.expect_navigation():
        await page.click("button:has-text('Opnieuw versturen')")
    assert "Het bericht staat weer in de wachtrij." in await page.inner_text("main")
    await world.settle()
    assert (await world.services["amsterdam"].list_dossiers())[0].dossier_id == dossier_id


async def test_planner_disputes_a_takeover_price_by_hand(world: World, browser: Any) -> None:
    await world.hand_over()
    zorgtechniek = world.services["zorgtechniek"]
    [order] = await zorgtechniek.supplier.orders(open_only=True)
    await zorgtechniek.supplier.record_status(order.order_id, "taken-over")
    await world.settle()
    # The move date has passed: Hulpmiddelen BV offers the takeover price at once.
    await world.services["hulpmiddelen"].deadlines.run_due()
    await world.settle()
    page = await _page(browser)
    base = world.bases["zorgtechniek"]
    await _sign_in(page, base, "piet")
    await page.goto(f"{base}/werkbak/verrekeningen")
    await _axe(page)
    assert "Wacht op het antwoord van een planner" in await page.inner_text("main")
    async with page.expect_navigation():
        await page.click("a:has-text('dev-1')")
    await _axe(page)
    await _shot(page, "verrekening")
    text = await page.inner_text("main")
    assert "Een andere leverancier biedt € 2701,39 als overnameprijs voor de scootmobiel" in text
    assert "Wij komen met onze eigen gegevens op hetzelfde bedrag." in text
    assert "Economische levensduur in maanden\t72\t72" in text
    # The scootmobiel came back damaged: Piet disputes the price with a reason.
    await page.check("#reden-device-condition")
    await page.fill("#toelichting", "De kap van de scootmobiel is gebroken.")
    async with page.expect_navigation():
        await page.click("button:has-text('Overnameprijs betwisten')")
    text = await page.inner_text("main")
    assert "U heeft de overnameprijs betwist." in text
    assert "Beantwoord door\nPiet Visser" in text
    assert "Reden\nDe kap van de scootmobiel is gebroken." in text
    await _axe(page)
    await world.settle()
    [offered] = await world.services["hulpmiddelen"].supplier.settlements()
    assert (offered.state, offered.reason_code, offered.reason_text) == (
        "disputed",
        "device-condition",
        "De kap van de scootmobiel is gebroken.",
    )
    assert offered.counter_amount_cents is None  # our own amount is the same

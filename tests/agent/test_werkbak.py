"""The werkbak over HTTP (no browser): demo sign-in only in development, CSRF on every form,
pages per role, and search with every look-up in the processing log with the person.

Real OpenID Connect sign-in, the pages in Chromium and axe are in tests/browser.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agent.app import create_app
from agent.core.processing_log import ProcessingLog
from agent.service import AgentService, DossierStart
from agent.settings import AgentSettings
from protocol.clock import FrozenClock
from protocol.jwk import public_jwk
from protocol.signing import VerificationKey
from tests.agent.conftest import (
    CLIENT_BSN,
    DATA,
    MOVE_DATE,
    NEW_ADDRESS,
    Entry,
    FakeDirectory,
    agent_settings,
    databases,
    network_with_backoffice,
    supplier_settings,
)
from tests.browser.werkbak_world import SUPPLIER

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Site:
    utrecht: AgentService
    network: httpx.AsyncBaseTransport

    def client(self, host: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.network, base_url=f"http://{host}.test")

    async def dossier(self) -> str:
        await self.utrecht.import_provisions((DATA / "clients.json").read_bytes(), "json")
        view = await self.utrecht.start_dossier(
            DossierStart(bsn=CLIENT_BSN, move_date=MOVE_DATE, new_address=NEW_ADDRESS)
        )
        return view.dossier_id


@pytest.fixture
def third_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    with databases(database_url, tmp_path, 1) as [url]:
        yield url


@pytest.fixture
async def site(
    database_url: str, second_database_url: str, third_database_url: str, clock: FrozenClock
) -> AsyncIterator[Site]:
    """Utrecht and a supplier in development (demo sign-in), Amsterdam in production."""
    network, _ = network_with_backoffice()
    directory = FakeDirectory()
    everyone: list[AgentSettings] = [
        agent_settings(database_url, gemeente="utrecht", environment="development"),
        # Production without its start-up checks (TLS, tokens): only the werkbak is tested here.
        agent_settings(second_database_url, gemeente="amsterdam").model_copy(
            update={"environment": "production"}
        ),
        supplier_settings(third_database_url, SUPPLIER).model_copy(
            update={"environment": "development"}
        ),
    ]
    for settings in everyone:
        key = VerificationKey(public_jwk(settings.private_jwk()))
        directory.entries[settings.oin] = Entry(
            settings.oin, settings.public_base_url, settings.gemeentecode, (key,)
        )
    async with httpx.AsyncClient(transport=network) as http:
        apps = [create_app(s, clock=clock, http=http, registry=directory) for s in everyone]
        for settings, app in zip(everyone, apps, strict=True):
            network.routes[settings.public_base_url.removeprefix("http://")] = httpx.ASGITransport(
                app=app
            )
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
            apps[2].router.lifespan_context(apps[2]),
        ):
            yield Site(apps[0].state.service, network)


async def _signed_in(site: Site, host: str, role: str, name: str) -> tuple[httpx.AsyncClient, str]:
    """A client signed in by the demo form; returns it and its session's CSRF token."""
    client = site.client(host)
    page = await client.get("/werkbak/inloggen")
    answer = await client.post(
        "/werkbak/inloggen/demo",
        data={"csrf": _CSRF.search(page.text).group(1), "naam": name, "rol": role},  # type: ignore[union-attr]
    )
    assert answer.status_code == 303
    landing = await client.get(answer.headers["location"], follow_redirects=True)
    assert landing.status_code == 200, landing.text
    token = _CSRF.search(landing.text)
    assert token is not None
    return client, token.group(1)


async def test_demo_sign_in_exists_only_in_development(site: Site) -> None:
    async with site.client("amsterdam") as production:
        page = await production.get("/werkbak/inloggen")
        assert page.status_code == 200
        assert "Inloggen als demo" not in page.text
        assert "Er is geen inlogdienst ingesteld" in page.text
        refused = await production.post("/werkbak/inloggen/demo", data={"rol": "consulent"})
        assert refused.status_code == 404
        assert (await production.get("/werkbak/taken")).status_code == 401
    client, _ = await _signed_in(site, "utrecht", "consulent", "Anna")
    page = await client.get("/werkbak/taken")
    assert "Anna (consulent)" in page.text
    await client.aclose()
    # A gemeente has no planners: the demo form refuses the role.
    other = site.client("utrecht")
    form = await other.get("/werkbak/inloggen")
    token = _CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    refused = await other.post("/werkbak/inloggen/demo", data={"csrf": token, "rol": "planner"})
    assert refused.status_code == 403
    await other.aclose()


async def test_every_form_refuses_a_missing_or_wrong_csrf_token(site: Site) -> None:
    dossier_id = await site.dossier()
    consulent, token = await _signed_in(site, "utrecht", "consulent", "Anna")
    operator, operator_token = await _signed_in(site, "utrecht", "operator", "Olga")
    planner, planner_token = await _signed_in(site, "zorgtechniek", "planner", "Piet")
    task_id = "00000000-0000-4000-8000-000000000001"
    forms = [
        (consulent, token, f"/werkbak/taken/{task_id}/nemen"),
        (consulent, token, f"/werkbak/taken/{task_id}/teruggeven"),
        (consulent, token, f"/werkbak/taken/{task_id}/afsluiten"),
        *(
            (consulent, token, f"/werkbak/dossiers/{dossier_id}/{action}")
            for action in ("urgent", "link-intrekken", "nieuwe-link", "annuleren", "toestemming")
        ),
        (consulent, token, "/werkbak/nieuw"),
        (operator, operator_token, f"/werkbak/beheer/berichten/{task_id}/opnieuw"),
        (planner, planner_token, f"/werkbak/opdrachten/{task_id}/status"),
        (planner, planner_token, f"/werkbak/verrekeningen/{task_id}/accepteren"),
        (planner, planner_token, f"/werkbak/verrekeningen/{task_id}/betwisten"),
        (consulent, token, "/werkbak/uitloggen"),
    ]
    fields = {"reden": "Omdat het moet", "notitie": "Gedaan", "status": "client-contacted"}
    for client, own, path in forms:
        for wrong in ({}, {"csrf": "x" * 43}, {"csrf": operator_token if own == token else token}):
            answer = await client.post(path, data=fields | wrong)
            assert answer.status_code == 403, (path, wrong, answer.status_code)
            assert "Dit formulier is verlopen" in answer.text
    # The search form too: a search from another site would write the log in Anna's name.
    for wrong in ({}, {"csrf": operator_token}):
        answer = await consulent.post("/werkbak/zoeken", data={"q": "Jansen"} | wrong)
        assert answer.status_code == 403
    records = await ProcessingLog.records(site.utrecht.database, dossier_id=dossier_id)
    assert not [r for r in records if r.activity_id == "werkbak-search"]
    # Nothing was applied: not urgent, no timeline line, the link still valid, still signed in.
    view = await site.utrecht.dossier(dossier_id)
    assert [line.cause for line in view.timeline] == ["started by case system", "consent asked"]
    assert (await consulent.get("/werkbak/taken")).status_code == 200
    # With its token the same form works.
    answer = await consulent.post(
        f"/werkbak/dossiers/{dossier_id}/urgent", data={"csrf": token, "reden": "Geen rolstoel"}
    )
    assert answer.status_code == 303
    view = await site.utrecht.dossier(dossier_id)
    assert view.timeline[-1].cause == "Anna: urgent gemaakt: Geen rolstoel"
    for client in (consulent, operator, planner):
        await client.aclose()


async def test_each_role_sees_only_its_own_pages(site: Site) -> None:
    anonymous = site.client("utrecht")
    for path in ("/werkbak/taken", "/werkbak/zoeken", "/werkbak/beheer", "/werkbak/nieuw"):
        assert (await anonymous.get(path)).status_code == 401
    await anonymous.aclose()
    consulent, _ = await _signed_in(site, "utrecht", "consulent", "Anna")
    operator, _ = await _signed_in(site, "utrecht", "operator", "Olga")
    planner, _ = await _signed_in(site, "zorgtechniek", "planner", "Piet")
    assert (await consulent.get("/werkbak/beheer")).status_code == 403
    assert (await consulent.get("/werkbak/opdrachten")).status_code == 403
    assert (await operator.get("/werkbak/taken")).status_code == 403
    assert (await operator.get("/werkbak/zoeken")).status_code == 403
    assert (await planner.get("/werkbak/taken")).status_code == 403
    assert (await planner.get("/werkbak/opdrachten")).status_code == 200
    assert (await operator.get("/werkbak/beheer")).status_code == 200
    # Sign-out ends the session: the same cookie opens nothing afterwards.
    page = await consulent.get("/werkbak/taken")
    token = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    assert (await consulent.post("/werkbak/uitloggen", data={"csrf": token})).status_code == 303
    assert (await consulent.get("/werkbak/taken")).status_code == 401
    for client in (consulent, operator, planner):
        await client.aclose()


async def test_search_finds_by_name_postcode_id_and_only_the_exact_bsn(site: Site) -> None:
    dossier_id = await site.dossier()
    consulent, token = await _signed_in(site, "utrecht", "consulent", "Anna")
    found = {}
    for query in ("jans", "3511ab", "3511 AB", dossier_id, CLIENT_BSN, CLIENT_BSN[:8], "Pietersen"):
        page = await consulent.post("/werkbak/zoeken", data={"q": query, "csrf": token})
        assert page.status_code == 200
        found[query] = f"/werkbak/dossiers/{dossier_id}" in page.text
    assert found == {
        "jans": True,
        "3511ab": True,
        "3511 AB": True,
        dossier_id: True,
        CLIENT_BSN: True,
        CLIENT_BSN[:8]: False,
        "Pietersen": False,
    }
    records = await ProcessingLog.records(site.utrecht.database, dossier_id=dossier_id)
    searches = [(r.activity_id, r.actor) for r in records if r.activity_id == "werkbak-search"]
    assert searches == [("werkbak-search", "Anna")] * 5
    # Opening the dossier is a record too; the page never shows the BSN.
    page = await consulent.get(f"/werkbak/dossiers/{dossier_id}")
    assert "J. Jansen" in page.text
    assert CLIENT_BSN not in page.text
    records = await ProcessingLog.records(site.utrecht.database, dossier_id=dossier_id)
    assert (records[-1].activity_id, records[-1].actor) == ("werkbak-dossier-viewed", "Anna")
    await consulent.aclose()


async def test_an_unknown_takeover_price_is_a_clear_page_not_an_error(site: Site) -> None:
    planner, token = await _signed_in(site, "zorgtechniek", "planner", "Piet")
    unknown = "00000000-0000-4000-8000-000000000002"
    page = await planner.get(f"/werkbak/verrekeningen/{unknown}")
    assert page.status_code == 404
    assert "Deze overnameprijs bestaat niet bij deze leverancier." in page.text
    for action, fields in (
        ("accepteren", {}),
        ("betwisten", {"reden": "other", "toelichting": "x"}),
    ):
        answer = await planner.post(
            f"/werkbak/verrekeningen/{unknown}/{action}", data={"csrf": token} | fields
        )
        assert answer.status_code == 404, action
    # A dispute without a reason is refused before anything is looked up.
    answer = await planner.post(
        f"/werkbak/verrekeningen/{unknown}/betwisten", data={"csrf": token, "reden": "other"}
    )
    assert answer.status_code == 400
    assert "schrijf in de toelichting waarom" in answer.text
    # A consulent has no settlement pages.
    consulent, _ = await _signed_in(site, "utrecht", "consulent", "Anna")
    assert (await consulent.get("/werkbak/verrekeningen")).status_code == 403
    for client in (planner, consulent):
        await client.aclose()


async def test_a_return_from_the_provider_with_another_state_ends_nothing(site: Site) -> None:
    client = site.client("utrecht")
    answer = await client.get("/werkbak/uitgelogd", params={"state": "not-ours"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/werkbak/inloggen?melding=uitgelogd"
    assert "set-cookie" not in answer.headers
    await client.aclose()

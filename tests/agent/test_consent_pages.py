"""Consent by personal link: token exchange, pages, answers, withdrawal, job."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from agent.consent.links import LINK_PATH, RedactLinkTokens, revoke_links
from agent.core.processing_log import ProcessingLog
from agent.storage.tables import DossierRow, InboundMessageRow
from tests.agent.conftest import CLIENT_BSN, Agents, RecordingChannel

CONSENT_FORM = "/mijn-verhuizing/toestemming"


async def _open(browser: httpx.AsyncClient, token: str) -> None:
    answer = await browser.get(f"{LINK_PATH}{token}")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/mijn-verhuizing"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match is not None
    return match[1]


async def _answer_consent_form(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient, choices: dict[str, str]
) -> tuple[str, httpx.Response]:
    """Start a dossier, open its consent page by the link and send the form with ``choices``."""
    dossier_id = await agents.start_dossier()
    await _open(browser, letters.token())
    csrf = _csrf((await browser.get("/mijn-verhuizing")).text)
    return dossier_id, await browser.post(CONSENT_FORM, data={"csrf": csrf, **choices})


async def test_link_goes_out_at_start_and_opens_the_consent_page(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    dossier_id = await agents.start_dossier()
    assert [n.dossier_id for n in letters.notices] == [dossier_id]
    token = letters.token()
    assert len(token) >= 43  # 256 bits, URL-safe base64
    await _open(browser, token)
    page = await browser.get("/mijn-verhuizing")
    assert page.status_code == 200
    assert 'lang="nl"' in page.text
    assert "scootmobiel" in page.text
    assert "Amsterdam" in page.text
    assert "script" not in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert token not in page.text
    records = await ProcessingLog.records(agents.departing.database, dossier_id=dossier_id)
    assert {r.activity_id for r in records} >= {"consent-link-issued", "consent-page-viewed"}
    assert all(CLIENT_BSN not in r.data_subject_id for r in records)


async def test_consent_per_device_sends_exactly_the_chosen_device_and_kinds(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    choices = {
        "apparaat-dev-1": "ja",
        "apparaat-dev-2": "nee",
        "indicatie": "nee",
        "functioneel": "nee",
        "wie": "client",
        "besluit": "ja",
    }
    dossier_id, answer = await _answer_consent_form(agents, letters, browser, choices)
    assert answer.status_code == 303
    await agents.settle()
    offers = [r for r in agents.network.requests if r.url.host == "amsterdam.test"]
    assert offers
    body = offers[0].content.decode()
    assert '"deviceIds":["dev-1"]' in body
    assert "indicatie" not in body.replace('"dataKinds":["identity","address","devices"]', "")
    status = await browser.get("/mijn-verhuizing")
    assert "Uw scootmobiel (Scootmobiel, vier wielen) gaat mee." in status.text
    assert (await agents.departing.dossier(dossier_id)).state == "completed"


async def test_missing_choices_show_an_error_summary_with_links(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    choices = {"wie": "representative", "besluit": "ja"}
    _, answer = await _answer_consent_form(agents, letters, browser, choices)
    assert answer.status_code == 400
    assert 'href="#apparaat-dev-1"' in answer.text
    assert 'href="#vertegenwoordiger-naam"' in answer.text


async def test_form_without_the_session_csrf_token_is_refused(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    dossier_id = await agents.start_dossier()
    await _open(browser, letters.token())
    answer = await browser.post(
        CONSENT_FORM,
        data={"csrf": "0" * 64, "apparaat-dev-1": "ja", "apparaat-dev-2": "ja", "besluit": "ja"},
    )
    assert answer.status_code == 403
    assert (await agents.departing.dossier(dossier_id)).state == "waiting-for-consent"


async def test_refusal_sends_nothing_and_opens_a_task(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    dossier_id, answer = await _answer_consent_form(
        agents, letters, browser, {"wie": "client", "besluit": "nee"}
    )
    assert answer.status_code == 303
    await agents.settle()
    assert not [r for r in agents.network.requests if r.url.host == "amsterdam.test"]
    status = await browser.get("/mijn-verhuizing")
    assert "Wmo-loket" in status.text
    tasks = await agents.departing.tasks.list("open", dossier_id=dossier_id)
    assert [t.kind for t in tasks] == ["consent-refused"]


async def test_expired_revoked_and_guessed_links_get_the_same_answer(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    first = await agents.start_dossier()
    guessed = await browser.get(f"{LINK_PATH}{'A' * 43}")
    token = letters.token()
    async with agents.departing.database.transaction() as session:
        await revoke_links(session, dossier_id=first, now=agents.clock.now())
    revoked = await browser.get(f"{LINK_PATH}{token}")
    await agents.departing.import_provisions(b"[]", "json")
    agents.clock.advance(timedelta(days=31))
    await agents.start_dossier()
    agents.clock.advance(timedelta(days=31))
    expired = await browser.get(f"{LINK_PATH}{letters.token()}")
    for answer in (guessed, revoked, expired):
        assert answer.status_code == 404
        assert "set-cookie" not in answer.headers
    assert guessed.text == revoked.text == expired.text


async def test_guessing_is_rate_limited_per_address(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    await agents.start_dossier()
    limit = agents.departing.settings.consent.attempts_per_address
    answers = [(await browser.get(f"{LINK_PATH}guess{i:04d}")).status_code for i in range(limit)]
    assert set(answers) == {404}
    blocked = await browser.get(f"{LINK_PATH}{letters.token()}")
    assert blocked.status_code == 429
    agents.clock.advance(timedelta(minutes=1))
    assert (await browser.get(f"{LINK_PATH}{letters.token()}")).status_code == 303


async def test_pages_without_a_session_show_nothing(
    agents: Agents, browser: httpx.AsyncClient
) -> None:
    await agents.start_dossier()
    answer = await browser.get("/mijn-verhuizing")
    assert answer.status_code == 401
    assert "scootmobiel" not in answer.text.lower()


async def test_withdrawal_reaches_the_receiver_who_stops_and_deletes(
    agents: Agents, letters: RecordingChannel, browser: httpx.AsyncClient
) -> None:
    both_devices = {"apparaat-dev-1": "ja", "apparaat-dev-2": "ja", "besluit": "ja"}
    dossier_id, _ = await _answer_consent_form(agents, letters, browser, both_devices)
    await agents.settle()
    assert (await agents.receiving.dossier(dossier_id)).state == "completed"
    confirm = await browser.get("/mijn-verhuizing/intrekken")
    answer = await browser.post("/mijn-verhuizing/intrekken", data={"csrf": _csrf(confirm.text)})
    assert answer.status_code == 303
    await agents.settle()
    withdrawals = [
        r
        for r in agents.network.requests
        if r.url.host == "amsterdam.test" and b"consent-withdrawn" in r.content
    ]
    assert withdrawals
    assert "nlgov-adr-payload-sig" in withdrawals[0].headers
    receiving = await agents.receiving.dossier(dossier_id)
    assert receiving.state == "consent-withdrawn"
    assert receiving.decisions == ()
    async with agents.receiving.database.reading() as session:
        row = await session.get(DossierRow, dossier_id)
        assert row is not None
        assert row.client_bsn is None
        offer = (
            await session.scalars(
                __import__("sqlalchemy")
                .select(InboundMessageRow)
                .where(InboundMessageRow.message_type == "dossier-offer")
            )
        ).one()
        assert CLIENT_BSN.encode() not in offer.body
    status = await browser.get("/mijn-verhuizing")
    assert "ingetrokken" in status.text
    records = await ProcessingLog.records(agents.receiving.database, dossier_id=dossier_id)
    received = [r for r in records if r.activity_id == "consent-withdrawal-received"]
    assert received
    assert received[0].parent_span_id is not None


async def test_no_answer_reminds_then_tasks_then_expires(
    agents: Agents, letters: RecordingChannel
) -> None:
    dossier_id = await agents.start_dossier()
    consent = agents.departing.consent.unanswered
    assert (await consent.run_due()).reminders == 0
    agents.clock.advance(timedelta(days=8))
    assert (await consent.run_due()).reminders == 1
    assert [n.kind for n in letters.notices] == ["invitation", "reminder"]
    assert (await consent.run_due()).reminders == 0
    agents.clock.advance(timedelta(days=7))
    assert (await consent.run_due()).tasks == 1
    tasks = await agents.departing.tasks.list("open", dossier_id=dossier_id)
    assert [t.kind for t in tasks] == ["consent-no-answer"]
    agents.clock.advance(timedelta(days=14))
    assert (await consent.run_due()).expired == 1
    assert (await agents.departing.dossier(dossier_id)).state == "consent-expired"
    # The same task, now saying the request expired: the consulent still calls.
    [expired] = await agents.departing.tasks.list("open", dossier_id=dossier_id)
    assert expired.id == tasks[0].id
    assert "De vraag is verlopen, dus de hulpmiddelen verhuizen niet mee." in expired.description


async def test_a_request_that_expires_unseen_still_gives_the_consulent_a_task(
    agents: Agents, letters: RecordingChannel
) -> None:
    # The agent was down from the start until after the expiry: one run does it all.
    dossier_id = await agents.start_dossier()
    agents.clock.advance(timedelta(days=40))
    report = await agents.departing.consent.unanswered.run_due()
    assert (report.expired, report.tasks) == (1, 1)
    [task] = await agents.departing.tasks.list("open", dossier_id=dossier_id)
    assert task.kind == "consent-no-answer"
    assert task.description.startswith("J. Jansen heeft niet geantwoord")


async def test_a_late_answer_closes_the_consulents_no_answer_task(
    agents: Agents, letters: RecordingChannel
) -> None:
    dossier_id = await agents.start_dossier()
    agents.clock.advance(timedelta(days=15))
    assert (await agents.departing.consent.unanswered.run_due()).tasks == 1
    [task] = await agents.departing.tasks.list("open", dossier_id=dossier_id)
    assert task.kind == "consent-no-answer"

    await agents.give_consent(dossier_id)
    assert await agents.departing.tasks.list("open", dossier_id=dossier_id) == []
    [done] = await agents.departing.tasks.list("done", dossier_id=dossier_id)
    assert (done.id, done.done_by) == (task.id, "de cliënt")
    assert done.note == "De cliënt heeft alsnog toestemming gegeven."


def test_access_log_filter_removes_the_token() -> None:
    import logging

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/link/SECRETtoken123", "1.1", 303),
        None,
    )
    RedactLinkTokens().filter(record)
    assert "SECRETtoken123" not in record.getMessage()
    assert "/link/[redacted]" in record.getMessage()

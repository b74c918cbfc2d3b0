"""The demo's consent step: read the link from the letter and click it like a browser.

The departing agent writes its letters to a folder of the demo. The demo opens the link (a 303
to the page, with a session cookie), reads the CSRF token from the form and posts the client's
choices, then reads the plain status page. No BSN is involved anywhere.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agent.consent.links import LINK_PATH

__all__ = [
    "ConsentClick",
    "ScenarioStepFailed",
    "click_consent_link",
    "letter_link",
    "read_letter",
    "status_page_lines",
    "withdraw_on_page",
]

_HOME = "/mijn-verhuizing"
_POLL_SECONDS = 0.1
_CLOSING = "Met vriendelijke groet"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
_STATUS_ITEMS = re.compile(
    r'<p class="status-line">(.*?)</p>'
    r'|<ul class="(?:devices|contacts)">(.*?)</ul>'
    r'|<ol class="timeline">(.*?)</ol>',
    re.S,
)
_ITEM = re.compile(r"<li>(.*?)</li>", re.S)
_TAG = re.compile(r"<[^>]+>")


class ScenarioStepFailed(Exception):
    """A step did not happen in time or an agent refused it (the run records it as its failure)."""


@dataclass(frozen=True)
class ConsentClick:
    """What the demo chose on the consent page."""

    device_ids: tuple[str, ...]
    indicatie: bool
    functional_information: bool
    # Set when a parent or guardian answers (the client is under 16).
    representative_name: str | None = None
    refuse: bool = False

    def form(self, csrf: str, movable: tuple[str, ...]) -> dict[str, str]:
        """The form fields a browser posts for these choices."""
        choices = {f"apparaat-{d}": "ja" if d in self.device_ids else "nee" for d in movable}
        who = {"wie": "client"}
        if self.representative_name is not None:
            who = {
                "wie": "representative",
                "vertegenwoordiger-naam": self.representative_name,
                "vertegenwoordiger-relatie": "legal-representative",
            }
        return (
            choices
            | who
            | {
                "csrf": csrf,
                "indicatie": "ja" if self.indicatie else "nee",
                "functioneel": "ja" if self.functional_information else "nee",
                "besluit": "nee" if self.refuse else "ja",
            }
        )


async def read_letter(letters: Path, dossier_id: str, *, kind: str, seconds: float) -> str:
    """The plain-text copy of one of the dossier's letters, once it is written."""
    letter = letters / f"{dossier_id}-{kind}.txt"
    deadline = time.monotonic() + seconds
    while True:
        # The agent may still be writing it: a letter is whole when its closing is there.
        text = letter.read_text("utf-8") if letter.exists() else ""
        if _CLOSING in text:
            return text
        if time.monotonic() >= deadline:
            raise ScenarioStepFailed(f"the departing agent wrote no {kind} letter")
        await asyncio.sleep(_POLL_SECONDS)


def letter_link(text: str) -> str:
    """The personal link in a letter's text."""
    match = re.search(r"\S*" + re.escape(LINK_PATH) + r"\S+", text)
    if match is None:
        raise ScenarioStepFailed("the letter holds no link")
    return match[0]


async def withdraw_on_page(browser: httpx.AsyncClient, link: str) -> int:
    """Withdraw the consent on the page as the client would; the answer's status code."""
    page_url = httpx.URL(link).join(_HOME + "/intrekken")
    form_page = await browser.get(page_url)
    _expect(form_page, 200, "the withdrawal page")
    csrf = _CSRF.search(form_page.text)
    if csrf is None:
        raise ScenarioStepFailed("the withdrawal page has no form")
    answer = await browser.post(page_url, data={"csrf": csrf[1]})
    _expect(answer, 303, "withdrawing")
    return answer.status_code


async def click_consent_link(
    browser: httpx.AsyncClient, link: str, click: ConsentClick, movable: tuple[str, ...]
) -> dict[str, Any]:
    """Open the link, post the choices with the form's CSRF token; the answers' status codes.

    ``browser`` keeps cookies and does not follow redirects, so each step can be checked.
    """
    opened = await browser.get(link)
    _expect(opened, 303, "opening the link")
    page_url = httpx.URL(link).join(opened.headers["location"])
    form_page = await browser.get(page_url)
    _expect(form_page, 200, "the consent page")
    csrf = _CSRF.search(form_page.text)
    if csrf is None:
        raise ScenarioStepFailed("the consent page has no form")
    answer = await browser.post(
        page_url.join(_HOME + "/toestemming"), data=click.form(csrf[1], movable)
    )
    _expect(answer, 303, "posting the choices")
    return {"linkOpened": opened.status_code, "pageShown": form_page.status_code}


async def status_page_lines(browser: httpx.AsyncClient, link: str) -> list[str]:
    """The status page as plain lines: what happens, the devices and the timeline."""
    page = await browser.get(httpx.URL(link).join(_HOME))
    _expect(page, 200, "the status page")
    lines: list[str] = []
    for status_line, devices, timeline in _STATUS_ITEMS.findall(page.text):
        if status_line:
            lines.append(_plain(status_line))
        for item in _ITEM.findall(devices or timeline):
            lines.append(("- " if devices else "* ") + _plain(item))
    return lines


def _plain(fragment: str) -> str:
    return " ".join(html.unescape(_TAG.sub("", fragment)).split())


def _expect(answer: httpx.Response, status: int, step: str) -> None:
    if answer.status_code != status:
        raise ScenarioStepFailed(f"{step}: the agent answered {answer.status_code}")

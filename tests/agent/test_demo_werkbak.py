"""``meeverhuizen demo --keep-running``: the werkbak of every organisation works while it runs."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest

pytestmark = pytest.mark.slow

_LAUNCHER = "from agent.cli import main; main()"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_ADDRESS = re.compile(r"^  (.+): (http://127\.0\.0\.1:\d+/werkbak)$")


def _sign_in(address: str, role: str) -> str:
    """Demo sign-in in ``role``; the text of the page it lands on."""
    with httpx.Client(follow_redirects=True, timeout=10.0) as browser:
        page = browser.get(f"{address}/inloggen")
        token = _CSRF.search(page.text)
        assert token is not None, page.text
        landing = browser.post(
            f"{address}/inloggen/demo",
            data={"csrf": token.group(1), "naam": "Demo", "rol": role},
        )
        assert landing.status_code == 200, landing.text
        return landing.text


def test_demo_prints_werkbak_links_that_work_until_ctrl_c() -> None:
    demo = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, "demo", "--keep-running", "--timeout", "90"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert demo.stdout is not None
    addresses: dict[str, str] = {}
    try:
        for line in demo.stdout:
            if match := _ADDRESS.match(line.rstrip("\n")):
                addresses[match.group(1)] = match.group(2)
            if "De demo blijft draaien" in line:
                break
        assert set(addresses) == {
            "Gemeente Utrecht",
            "Gemeente Amsterdam",
            "Hulpmiddelen BV",
            "Zorgtechniek",
        }
        # After the handover each role's first page opens: the consulent's, planner's, operator's.
        assert "Open taken" in _sign_in(addresses["Gemeente Utrecht"], "consulent")
        orders = _sign_in(addresses["Zorgtechniek"], "planner")
        assert "Opdrachten" in orders
        operator = _sign_in(addresses["Gemeente Amsterdam"], "operator")
        assert "Niet bezorgde berichten" in operator
    finally:
        demo.send_signal(signal.SIGINT)
        returncode = demo.wait(timeout=60)
        demo.stdout.close()
    assert returncode == 0
    # Ctrl-C stopped every process: the werkbak no longer answers.
    with pytest.raises(httpx.ConnectError):
        httpx.get(addresses["Gemeente Utrecht"], timeout=5.0)

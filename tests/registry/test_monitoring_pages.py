"""The public monitoring pages: server-rendered, no script, small counts never shown.

The browser and axe-core check the same pages in ``tests/browser/test_monitoring_browser.py``.
"""

from __future__ import annotations

import re

from tests.registry.conftest import Registry, enrol_gemeente, enrol_supplier
from tests.registry.test_monitoring import report, send, settle, utrecht_counts


def cells(html: str) -> list[str]:
    return re.findall(r'<td class="number">([^<]*)</td>', html)


async def test_the_country_page_shows_sums_and_hides_counts_below_five(registry: Registry) -> None:
    utrecht = await enrol_gemeente(registry)
    supplier = await enrol_supplier(registry)
    await send(registry, utrecht, report(utrecht.oin, **utrecht_counts(12, 5, 4)))
    await send(
        registry,
        supplier,
        report(supplier.oin, kind="supplier", handovers={"receiving": {"started": 7}}),
    )

    settle(registry)
    page = await registry.http.get("/monitoring")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]
    html = page.text
    assert "<script" not in html
    assert '<html lang="nl">' in html
    assert "de maand februari 2025: de dagen van 1 februari 2025 tot en met 28 februari" in html
    assert '<option value="2025-02" selected>februari 2025</option>' in html
    assert "Er kwamen cijfers van 1 gemeente of regio." in html
    assert "Er kwamen cijfers van 1 leverancier." in html
    shown = cells(html)
    assert {"12", "7", "9"} <= set(shown)
    # Suppliers count takeover orders; days without a device are the gemeenten's.
    assert html.count("<caption>Overnameopdrachten in deze maand</caption>") == 1
    assert html.count("zonder hulpmiddel zat</caption>") == 1
    # Every cell is a count of 5 or more, or says it is less.
    assert all(value == "minder dan 5" or int(value) >= 5 for value in shown)
    assert shown.count("minder dan 5") > 0


async def test_the_page_of_a_gemeente_says_who_reports_and_hides_small_counts(
    registry: Registry,
) -> None:
    utrecht = await enrol_gemeente(registry)
    await registry.operator.assign_gemeenten(oin=utrecht.oin, gemeentecodes=["0344", "0310"])
    await send(registry, utrecht, report(utrecht.oin, **utrecht_counts(3, 5, 4)))

    settle(registry)
    html = (await registry.http.get("/monitoring/gemeente?gemeentecode=0310")).text
    assert "Utrecht stuurt de cijfers voor een regio" in html
    assert "De Bilt" in html
    shown = cells(html)
    assert not {"3", "4"} & set(shown)
    assert all(value == "minder dan 5" or int(value) >= 5 for value in shown)
    assert "/v1/gemeenten/0310/monitoring?month=2025-02" in html

    html = (await registry.http.get("/monitoring/gemeente?gemeentecode=0363")).text
    assert "Amsterdam stuurt nog geen cijfers" in html
    assert cells(html) == []
    answer = (await registry.http.get("/v1/gemeenten/0363/monitoring")).json()["data"]
    assert answer["servedBy"] is None
    assert answer["counts"]["organisations"] == 0
    assert set(answer["counts"]["figures"].values()) == {None}


async def test_a_wrong_choice_is_told_on_the_page(registry: Registry) -> None:
    page = await registry.http.get("/monitoring/gemeente?gemeentecode=9999")
    assert page.status_code == 404
    assert "Kies een gemeente uit de lijst" in page.text
    for month in ("2025-13", "2025-03", "vorige"):
        page = await registry.http.get(f"/monitoring?maand={month}")
        assert page.status_code == 400
        assert "Kies een maand uit de lijst" in page.text
    page = await registry.http.get("/monitoring/gemeente?gemeentecode=0344&maand=gisteren")
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")


async def test_the_style_sheet_is_served(registry: Registry) -> None:
    sheet = await registry.http.get("/monitoring/stijl.css")
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/css")

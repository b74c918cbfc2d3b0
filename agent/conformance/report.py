"""The kit's reports: JUnit XML for CI systems and a readable HTML page for people."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

from agent.conformance.cases import CaseResult

__all__ = ["summary_line", "write_html", "write_junit"]


def summary_line(results: Sequence[CaseResult]) -> str:
    """``N passed, N failed``: the closing line test runners read."""
    failed = sum(1 for result in results if not result.passed)
    return f"{len(results) - failed} passed, {failed} failed"


def write_junit(results: Sequence[CaseResult], path: Path, *, target: str) -> None:
    """One ``testcase`` per case; a failed case carries its reason as ``failure``."""
    failed = sum(1 for result in results if not result.passed)
    suite = ElementTree.Element(
        "testsuite",
        name=f"meeverhuizen conformance: {target}",
        tests=str(len(results)),
        failures=str(failed),
        time=f"{sum(result.seconds for result in results):.3f}",
    )
    for result in results:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=f"protocol.md section {result.case.section}",
            name=result.case.name,
            time=f"{result.seconds:.3f}",
        )
        if not result.passed:
            failure = ElementTree.SubElement(case, "failure", message=result.reason)
            failure.text = result.reason
    ElementTree.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def write_html(results: Sequence[CaseResult], path: Path, *, target: str) -> None:
    """A table of every case with its section, outcome and, when it failed, the reason."""
    rows = "\n".join(
        "<tr class='{cls}'><td>{name}</td><td>{section}</td><td>{outcome}</td>"
        "<td>{reason}</td></tr>".format(
            cls="passed" if result.passed else "failed",
            name=html.escape(result.case.name),
            section=html.escape(result.case.section),
            outcome="passed" if result.passed else "FAILED",
            reason=html.escape(result.reason),
        )
        for result in results
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Meeverhuizen conformance: {html.escape(target)}</title>
<style>body{{font-family:sans-serif}}td,th{{padding:4px 8px;text-align:left}}
.failed{{background:#fdd}}.passed{{background:#dfd}}</style></head>
<body><h1>Meeverhuizen conformance: {html.escape(target)}</h1>
<p>{html.escape(summary_line(results))}. Sections refer to docs/protocol.md.</p>
<table><tr><th>case</th><th>section</th><th>outcome</th><th>reason</th></tr>
{rows}
</table></body></html>
"""
    path.write_text(page, encoding="utf-8")

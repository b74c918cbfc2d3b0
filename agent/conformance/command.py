"""``meeverhuizen conformance``: run the kit against an agent and write its reports."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
import httpx

from agent.conformance.cases import CaseResult
from agent.conformance.report import summary_line, write_html, write_junit
from agent.conformance.run import run_conformance

__all__ = ["conformance_command"]


@click.command("conformance")
@click.option("--target", "target_url", required=True, help="Base URL of the agent under test.")
@click.option("--target-oin", required=True, help="The OIN the agent under test enrolled with.")
@click.option(
    "--role",
    type=click.Choice(["gemeente", "supplier"]),
    default="gemeente",
    show_default=True,
    help="The target's kind: the kit plays the departing gemeente to a gemeente, the receiving "
    "gemeente to a supplier.",
)
@click.option(
    "--registry-url",
    envvar="MEEVERHUIZEN_REGISTRY_URL",
    required=True,
    help="The (test) registry the target uses.",
)
@click.option(
    "--trust-anchor",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The registry's public JWK (JSON file).",
)
@click.option(
    "--operator-token",
    envvar="MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN",
    required=True,
    help="The test registry's operator token: the kit enrols itself as a gemeente.",
)
@click.option("--kit-endpoint", default="http://127.0.0.1:9", show_default=True)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("conformance.xml"),
    show_default=True,
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("conformance.html"),
    show_default=True,
)
def conformance_command(
    target_url: str,
    target_oin: str,
    role: str,
    registry_url: str,
    trust_anchor: Path,
    operator_token: str,
    kit_endpoint: str,
    junit: Path,
    html_path: Path,
) -> None:
    """Play the other party against an agent: every case of protocol.md section 7 and more."""

    anchor = json.loads(trust_anchor.read_text(encoding="utf-8"))

    async def run() -> list[CaseResult]:
        async with httpx.AsyncClient(timeout=30.0) as http:
            return await run_conformance(
                http=http,
                target_url=target_url,
                target_oin=target_oin,
                role=role,
                registry_url=registry_url,
                trust_anchor=anchor,
                operator_token=operator_token,
                kit_endpoint=kit_endpoint,
            )

    try:
        results = asyncio.run(run())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    for result in results:
        outcome = "passed" if result.passed else f"FAILED: {result.reason}"
        click.echo(f"[{result.case.section}] {result.case.name}: {outcome}")
    write_junit(results, junit, target=target_url)
    write_html(results, html_path, target=target_url)
    click.echo(f"reports: {junit}, {html_path}")
    click.echo(summary_line(results))
    if not all(result.passed for result in results):
        raise SystemExit(1)

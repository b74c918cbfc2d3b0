"""``meeverhuizen demo``: a registry, gemeente and supplier agents on loopback, one move."""

from __future__ import annotations

import asyncio
import json

import click

from agent.errors import AgentError
from agent.local.starting import DEFAULT_STALL_SECONDS, DEFAULT_START_SECONDS

__all__ = ["demo_command"]


@click.command("demo")
@click.option(
    "--scenario",
    default="standard",
    show_default=True,
    metavar="NAME",
    help="The path of a move to run; 'list' lists them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option(
    "--timeout", type=float, default=60.0, show_default=True, help="Seconds for the scenario."
)
@click.option(
    "--start-timeout",
    type=click.FloatRange(min=1.0),
    default=DEFAULT_START_SECONDS,
    show_default=True,
    help="Most seconds the processes may take to be ready (they may stall "
    f"{DEFAULT_STALL_SECONDS:.0f} s at most).",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the registry and the agents running after the handover, until Ctrl-C.",
)
def demo_command(
    scenario: str, as_json: bool, timeout: float, start_timeout: float, keep_running: bool
) -> None:
    """Run a registry, gemeente and supplier agents on loopback and one scenario of a move."""
    from agent.local.demo import DemoSummary, render_summary, run_demo, scenario_lines

    def show(summary: DemoSummary) -> None:
        if as_json:
            click.echo(json.dumps(summary.to_json(), indent=2, ensure_ascii=False, default=str))
        else:
            click.echo(render_summary(summary))

    async def hold(summary: DemoSummary) -> None:
        show(summary)
        click.echo("\nDe demo blijft draaien. Stop met Ctrl-C.", err=as_json)
        await asyncio.Event().wait()

    if scenario == "list":
        click.echo("\n".join(scenario_lines()))
        return
    try:
        summary = run_demo(
            scenario=scenario,
            timeout=timeout,
            on_link=None if as_json else _show_link,
            start_seconds=start_timeout,
            on_wait=lambda line: click.echo(line, err=True),
            on_werkbak=None if as_json else _show_werkbak,
            keep_running=hold if keep_running else None,
        )
    except KeyboardInterrupt:
        return
    except AgentError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    if not keep_running:
        show(summary)
    if not summary.completed:
        raise click.ClickException(
            f"scenario {scenario} did not end with every device accounted for within {timeout} s;"
            f" the logs are in {summary.logs}"
        )


def _show_link(link: str) -> None:
    # The demo prints the personal link so a person can open the page themselves.
    click.echo(
        f"Open deze link om de toestemmingspagina te zien: {link}\n"
        "(een adres op deze computer; het werkt alleen zolang de demo loopt)\n"
    )


def _show_werkbak(addresses: dict[str, str]) -> None:
    # Each organisation's werkbak, with the demo sign-in (no identity provider in the demo).
    lines = [f"  {name}: {address}" for name, address in addresses.items()]
    click.echo(
        "De werkbak van elke organisatie (inloggen als demo, zonder inlogdienst):\n"
        + "\n".join(lines)
        + "\n(dit werkt zolang de demo loopt; met --keep-running blijft de demo draaien)\n"
    )

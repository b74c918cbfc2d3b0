"""``meeverhuizen simulate``: a year of moves over every gemeente, and its report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from agent.local.demo_consent import ScenarioStepFailed
from agent.local.starting import StartFailed
from agent.simulation.driver import SimulationFailed
from agent.simulation.report import render_text
from agent.simulation.run import SimulationOptions, simulate

__all__ = ["simulate_command"]

_DEFAULTS = SimulationOptions()


def _plot(report: dict[str, Any], out: Path) -> None:
    try:  # matplotlib comes with the extra: pip install 'meeverhuizen[simulation]'
        from agent.simulation.plots import write_plots
    except ImportError as exc:
        raise click.ClickException(
            f"report.json is in {out}; the plots need matplotlib: "
            "pip install 'meeverhuizen[simulation]'"
        ) from exc
    write_plots(report, out)


@click.command("simulate")
@click.option(
    "--moves",
    type=click.IntRange(min=1),
    default=_DEFAULTS.moves,
    show_default=True,
    help="Moves in the year, each of a client with 1 to 3 devices.",
)
@click.option(
    "--gemeenten",
    type=click.IntRange(min=2, max=342),
    default=None,
    help="Only the N most populous gemeenten (default: all 342).",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1, max=64),
    default=_DEFAULTS.processes,
    show_default=True,
    help="`agent host` processes that share the gemeenten and suppliers.",
)
@click.option(
    "--drop-rate",
    type=click.FloatRange(min=0.0, max=0.5),
    default=_DEFAULTS.drop_rate,
    show_default=True,
    help="Share of connections to the agents that the network breaks.",
)
@click.option(
    "--restarts",
    type=click.IntRange(min=0),
    default=_DEFAULTS.restarts,
    show_default=True,
    help="Agent processes killed with SIGKILL and started again during the year.",
)
@click.option(
    "--day-seconds",
    type=click.FloatRange(min=0.05),
    default=_DEFAULTS.day_seconds,
    show_default=True,
    help="Wall-clock seconds of one simulated day (at least).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=_DEFAULTS.days,
    show_default=True,
    help="Days over which the moves are spread.",
)
@click.option(
    "--tail-days",
    type=click.IntRange(min=0),
    default=_DEFAULTS.tail_days,
    show_default=True,
    help="Days the clock runs on after the last day of moves.",
)
@click.option("--seed", type=int, default=_DEFAULTS.seed, show_default=True, help="Random seed.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for report.json and the plots (PNG).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--work-folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the processes' settings, databases and logs here (default: a temporary folder).",
)
def simulate_command(
    moves: int,
    gemeenten: int | None,
    processes: int,
    drop_rate: float,
    restarts: int,
    day_seconds: float,
    days: int,
    tail_days: int,
    seed: int,
    out: Path | None,
    as_json: bool,
    work_folder: Path | None,
) -> None:
    """Simulate a year of moves over the 342 gemeenten, with faults, and report the outcome.

    A registry and PROCESSES agent hosts on 127.0.0.1 serve every gemeente and the regional
    suppliers; the BRP, the clients and the planners act on a simulated clock that every
    process shares. The report says how long clients were without a device, which deadlines
    were met, which tasks wait at which desk, and whether any dossier was lost or duplicated.
    The exit code is 1 when a dossier was lost or duplicated, or a move ended with nobody to act.
    """
    options = SimulationOptions(
        moves=moves,
        gemeenten=gemeenten,
        processes=processes,
        seed=seed,
        days=days,
        tail_days=tail_days,
        day_seconds=day_seconds,
        drop_rate=drop_rate,
        restarts=restarts,
        folder=work_folder,
    )
    total = days + options.tail_days
    with click.progressbar(
        length=total, label="Simulated days", file=sys.stderr, show_pos=True
    ) as bar:
        try:
            report = simulate(options, on_day=lambda _day: bar.update(1))
        except (SimulationFailed, StartFailed, ScenarioStepFailed) as exc:
            raise click.ClickException(str(exc)) from exc
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
        _plot(report, out)
    click.echo(json.dumps(report, indent=2) if as_json else render_text(report))
    if report["lost"] or report["duplicated"] or report["unaccounted"]:
        sys.exit(1)

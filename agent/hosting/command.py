"""``meeverhuizen agent host``: serve several organisations from one process."""

from __future__ import annotations

from pathlib import Path

import click

from agent.hosting.settings import HostingProblem, load_hosting

__all__ = ["host_command"]


@click.command("host")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Hosting settings (TOML): the shared address and each organisation's settings file.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Server log level; below info the access log is off.",
)
def host_command(config_file: Path, log_level: str) -> None:
    """Serve several organisations' agents from one process, with one endpoint for messages."""
    from agent.hosting.app import create_host_app
    from agent.runtime import serve_forever

    try:
        hosting = load_hosting(config_file)
    except HostingProblem as exc:
        raise click.ClickException(str(exc)) from exc
    serve_forever(
        create_host_app(hosting),
        tls=hosting.settings,
        deployment=hosting.settings,
        host=hosting.settings.host,
        port=hosting.settings.port,
        log_level=log_level,
    )

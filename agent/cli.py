"""The ``meeverhuizen`` command line."""

from __future__ import annotations

import click

from agent.commands import AGENT_COMMANDS
from agent.local.brp_simulator import brp as brp_commands
from registry.cli import registry as registry_commands

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meeverhuizen")
def cli() -> None:
    """Meeverhuizen: Wmo assistive devices move along with their user.

    Run a registry and agents, manage keys, and try the whole handover with `demo`.
    """


cli.add_command(registry_commands)
cli.add_command(brp_commands)


for _command in AGENT_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli()

"""The CLI explains itself: every operator command is there and every command has help."""

from __future__ import annotations

import click
from click.testing import CliRunner

from agent.cli import cli

REQUIRED = {"agent", "brp", "demo", "dossiers", "import", "keys", "outbox", "registry"}


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        found[prefix + name] = command
        if isinstance(command, click.Group):
            found |= _commands(command, prefix + name + " ")
    return found


def test_help_lists_every_top_level_command() -> None:
    answer = CliRunner().invoke(cli, ["--help"])
    assert answer.exit_code == 0
    listed = answer.output.split("Commands:")[1].split()
    assert set(listed) >= REQUIRED


def test_the_named_subcommands_exist() -> None:
    commands = _commands(cli)
    for name in (
        "outbox list",
        "outbox requeue",
        "brp simulate",
        "agent serve",
        "import",
        "agent enrol",
        "keys publish",
        "keys revoke",
        "conformance",
    ):
        assert name in commands, name


def test_every_command_has_one_line_help() -> None:
    missing = [
        name
        for name, command in _commands(cli).items()
        if not command.get_short_help_str(limit=200).strip()
    ]
    assert missing == []


def test_requeue_needs_an_id_or_all_dead() -> None:
    answer = CliRunner().invoke(cli, ["outbox", "requeue", "--config", __file__])
    assert answer.exit_code == 2
    assert "give one MESSAGE_ID or --all-dead" in answer.output

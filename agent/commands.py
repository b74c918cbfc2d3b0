"""The agent commands of the ``meeverhuizen`` CLI: serve, host, enrol, import, outbox, keys."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import click
from pydantic import ValidationError

from agent.conformance.command import conformance_command
from agent.delivery.outbox import OutboxState
from agent.errors import ImportFailed
from agent.local.demo_command import demo_command
from agent.runtime import open_service
from agent.service import AgentService
from agent.settings import AgentSettings, explain_invalid, load_settings
from agent.simulation.command import simulate_command
from protocol.errors import ProblemError
from protocol.jwk import generate_private_jwk, public_jwk
from registry.client import RegistryClient

__all__ = ["AGENT_COMMANDS"]

_T = TypeVar("_T")
_CONFIG = click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Agent settings (TOML); MEEVERHUIZEN_AGENT_* variables override it.",
)
_LOG_LEVEL = click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Server log level; below info the access log is off.",
)


def _settings(config_file: Path) -> AgentSettings:
    try:
        return load_settings(config_file)
    except ValidationError as exc:
        raise click.ClickException(
            f"invalid settings in {config_file}: {explain_invalid(exc)}"
        ) from exc


def _run(config_file: Path, action: Callable[[AgentService], Awaitable[_T]]) -> _T:
    settings = _settings(config_file)

    async def run() -> _T:
        async with open_service(settings) as service:
            return await action(service)

    coroutine: Coroutine[Any, Any, _T] = run()
    try:
        return asyncio.run(coroutine)
    except ImportFailed as exc:
        for problem in exc.problems:
            click.echo(f"line {problem.line}: {problem.reason}", err=True)
        raise click.ClickException("import refused; nothing was applied") from exc
    except ProblemError as exc:  # the agent's and the registry's errors: one line, exit 1
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


@click.group("agent")
def agent_group() -> None:
    """Run a gemeente's or supplier's agent."""


@agent_group.command("migrate")
@_CONFIG
@click.option("--sql", is_flag=True, help="Print the SQL for an empty database; change nothing.")
def migrate(config_file: Path, sql: bool) -> None:
    """Upgrade the agent database to the newest schema (serve does this on start too)."""
    from agent.storage.database import MIGRATIONS
    from registry.server_kit.migrations import migrate_command

    settings = _settings(config_file)
    migrate_command(MIGRATIONS, settings.database_url, sql=sql, schema=settings.database_schema)


@agent_group.command("serve")
@_CONFIG
@_LOG_LEVEL
def serve(config_file: Path, log_level: str) -> None:
    """Serve the agent's API and run its delivery scheduler."""
    from agent.app import create_app
    from agent.runtime import serve_forever

    settings = _settings(config_file)
    serve_forever(
        create_app(settings),
        tls=settings,
        deployment=settings,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
    )


@agent_group.command("host")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Hosting settings (TOML): the shared address and each organisation's settings file.",
)
@_LOG_LEVEL
def host(config_file: Path, log_level: str) -> None:
    """Serve several organisations' agents from one process, with one endpoint for messages."""
    from agent.hosting import HostingProblem, create_host_app, load_hosting
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


@click.command("import")
@_CONFIG
@click.option(
    "--format",
    "import_format",
    type=click.Choice(["csv", "json"]),
    default=None,
    help="Default: from the file extension.",
)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(config_file: Path, import_format: str | None, path: Path) -> None:
    """Import the register of current provisions (CSV or JSON; all or nothing)."""
    chosen: Literal["csv", "json"] = (
        "json" if (import_format or path.suffix.lstrip(".").lower()) == "json" else "csv"
    )
    with _progress("importing clients") as advance:
        result = _run(
            config_file,
            lambda s: s.provisions.import_provisions(path.read_bytes(), chosen, progress=advance),
        )
    click.echo(f"imported {result.clients} clients with {result.devices} devices")


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal, none when redirected; yields ``advance(done, total)``."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    bar: Any = None
    shown = 0

    def advance(done: int, total: int) -> None:
        nonlocal bar, shown
        if bar is None:
            bar = click.progressbar(length=total, label=label, file=sys.stderr).__enter__()
        bar.update(done - shown)
        shown = done

    try:
        yield advance
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


@click.group("outbox")
def outbox_group() -> None:
    """Inspect and requeue outbox messages."""


@outbox_group.command("list")
@_CONFIG
@click.option("--state", type=click.Choice(get_args(OutboxState)), default=None)
def outbox_list(config_file: Path, state: str | None) -> None:
    """List outbox messages (e.g. --state dead for dead letters)."""
    entries = _run(config_file, lambda s: s.outbox.list(state))
    _echo_json([entry.__dict__ for entry in entries])


@outbox_group.command("requeue")
@_CONFIG
@click.option("--all-dead", is_flag=True, help="Requeue every dead letter (with progress).")
@click.argument("message_id", required=False)
def outbox_requeue(config_file: Path, message_id: str | None, all_dead: bool) -> None:
    """Put a dead message (or with --all-dead every one) back in the queue."""
    if (message_id is None) == (not all_dead):
        raise click.UsageError("give one MESSAGE_ID or --all-dead")
    if message_id is not None:
        entry = _run(config_file, lambda s: s.outbox.requeue(message_id))
        click.echo(f"requeued {entry.message_id}")
        return
    with _progress("requeueing dead letters") as advance:
        count = _run(config_file, lambda s: _requeue_dead(s, advance))
    click.echo(f"requeued {count} dead letters")


async def _requeue_dead(service: AgentService, advance: Callable[[int, int], None]) -> int:
    dead = await service.outbox.list("dead")
    for number, entry in enumerate(dead, start=1):
        await service.outbox.requeue(entry.message_id)
        advance(number, len(dead))
    return len(dead)


@click.group("dossiers")
def dossiers_group() -> None:
    """Look at dossiers."""


@dossiers_group.command("list")
@_CONFIG
@click.option("--state", default=None, help="Only dossiers in this state.")
def dossiers_list(config_file: Path, state: str | None) -> None:
    """List dossiers."""
    rows = _run(config_file, lambda s: s.list_dossiers(state))
    _echo_json([row.model_dump(mode="json", by_alias=True) for row in rows])


@dossiers_group.command("show")
@_CONFIG
@click.argument("dossier_id")
def dossiers_show(config_file: Path, dossier_id: str) -> None:
    """Show one dossier with its timeline."""
    view = _run(config_file, lambda s: s.dossier(dossier_id))
    _echo_json(view.model_dump(mode="json", by_alias=True))


@click.group("orders")
def orders_group() -> None:
    """Takeover orders: a supplier's planner records contact and takeover."""


async def _orders(service: AgentService, open_only: bool) -> list[dict[str, Any]]:
    if service.settings.role == "supplier":
        received = await service.supplier.orders(open_only=open_only)
        return [{k: v for k, v in o.__dict__.items() if k != "order"} for o in received]
    return [o.__dict__ for o in await service.orders.list(open_only=open_only)]


@orders_group.command("list")
@_CONFIG
@click.option("--open", "open_only", is_flag=True, help="Only orders still open.")
def orders_list(config_file: Path, open_only: bool) -> None:
    """List orders with their contact deadline (supplier) or status (gemeente)."""
    _echo_json(_run(config_file, lambda s: _orders(s, open_only)))


def _record(config_file: Path, order_id: str, status: Any, **details: Any) -> None:
    order = _run(config_file, lambda s: s.supplier.record_status(order_id, status, **details))
    click.echo(f"order {order.order_id}: {order.status}; the gemeente is told")


@orders_group.command("contact")
@_CONFIG
@click.argument("order_id")
def orders_contact(config_file: Path, order_id: str) -> None:
    """Record that the client was contacted."""
    _record(config_file, order_id, "client-contacted")


@orders_group.command("takeover")
@_CONFIG
@click.argument("order_id")
@click.option("--device", "device_id", default=None, help="One device of the order (default: all).")
@click.option(
    "--status",
    type=click.Choice(["taken-over", "inspected", "replaced"]),
    default="taken-over",
    show_default=True,
)
def orders_takeover(config_file: Path, order_id: str, device_id: str | None, status: str) -> None:
    """Record that the device was taken over (or inspected, or replaced)."""
    _record(config_file, order_id, status, device_id=device_id)


@orders_group.command("refuse")
@_CONFIG
@click.argument("order_id")
@click.option(
    "--reason",
    type=click.Choice(["not-contracted", "no-capacity", "other"]),
    required=True,
)
def orders_refuse(config_file: Path, order_id: str, reason: str) -> None:
    """Refuse the order; the gemeente moves on to its next supplier."""
    _record(config_file, order_id, "refused", reason_code=reason)


@orders_group.command("leaving")
@_CONFIG
def orders_leaving(config_file: Path) -> None:
    """Devices leaving this supplier's contract, with the receiving supplier."""
    devices = _run(config_file, lambda s: s.supplier.departing_devices())
    _echo_json([device.__dict__ for device in devices])


@agent_group.command("enrol")
@_CONFIG
@click.option("--code", required=True, help="The one-time enrolment code from the operator.")
def enrol(config_file: Path, code: str) -> None:
    """Register this agent in the registry: endpoint, message types it accepts, its key."""
    _echo_json(_run(config_file, lambda service: _enrol(service, code)))


def _registry(service: AgentService) -> RegistryClient:
    if not isinstance(service.directory, RegistryClient):
        raise click.ClickException("the agent has no registry client configured")
    return service.directory


def _accepted_message_types(service: AgentService) -> list[str]:
    """The message types this agent handles, for its role: what it lists in the registry."""
    return sorted(service.hooks.handlers)


async def _enrol(service: AgentService, code: str) -> dict[str, Any]:
    settings = service.settings
    entry = await _registry(service).enrol(
        code=code,
        oin=settings.oin,
        endpoint=settings.endpoint,
        protocol_versions=["1.0"],
        message_types=_accepted_message_types(service),
        public_jwks=[public_jwk(settings.private_jwk())],
    )
    return {
        "oin": entry.oin,
        "endpoint": entry.endpoint,
        "messageTypes": list(entry.message_types),
        "kids": [key.kid for key in entry.keys],
    }


@click.group("keys")
def keys_group() -> None:
    """Signing keys: make one, publish it in the registry, revoke one."""


@keys_group.command("publish")
@_CONFIG
@click.option(
    "--new-key",
    "new_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The new private key (from `keys generate`); only its public half is sent.",
)
@click.option(
    "--overlap-days",
    type=click.IntRange(0, 90),
    default=7,
    show_default=True,
    help="Days the current key stays valid beside the new one (messages in flight).",
)
def keys_publish(config_file: Path, new_key: Path, overlap_days: int) -> None:
    """Publish a new signing key and end the current one after the overlap (signed change)."""

    async def publish(service: AgentService) -> dict[str, Any]:
        settings = service.settings
        # The new key file is read like signing_key_file (a JWK JSON or a PEM file).
        new = public_jwk(
            settings.model_copy(
                update={"signing_key_file": new_key, "signing_jwk": None}
            ).private_jwk()
        )
        current = public_jwk(settings.private_jwk())
        end = service.clock.now() + timedelta(days=overlap_days)
        await _registry(service).update_own_entry(
            oin=settings.oin,
            private_jwk=settings.private_jwk(),
            add_keys=[new],
            retire_keys={current["kid"]: end},
        )
        return {"published": new["kid"], "retired": current["kid"], "validUntil": end}

    _echo_json(_run(config_file, publish))
    click.echo("Point signing_key_file at the new key and restart the agent.", err=True)


@keys_group.command("revoke")
@_CONFIG
@click.option("--kid", required=True, help="The key to revoke (another key signs the change).")
@click.option("--reason", required=True, help="Why, e.g. 'compromised'.")
def keys_revoke(config_file: Path, kid: str, reason: str) -> None:
    """Revoke one of this agent's keys now, signed with the configured (other) key."""

    async def revoke(service: AgentService) -> dict[str, Any]:
        await _registry(service).update_own_entry(
            oin=service.settings.oin,
            private_jwk=service.settings.private_jwk(),
            revoke_keys={kid: reason},
        )
        return {"revoked": kid, "reason": reason}

    _echo_json(_run(config_file, revoke))


@keys_group.command("generate")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the private JWK (created with mode 0600).",
)
@click.option("--algorithm", type=click.Choice(["EdDSA", "PS256"]), default="EdDSA")
def keys_generate(out: Path, algorithm: Literal["EdDSA", "PS256"]) -> None:
    """Write a new private signing key; print its public JWK."""
    if out.exists():
        raise click.ClickException(f"{out} exists; refusing to overwrite a key")
    key = generate_private_jwk(algorithm)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(key, handle)
    _echo_json(public_jwk(key))


AGENT_COMMANDS: tuple[click.Command, ...] = (
    agent_group,
    conformance_command,
    demo_command,
    import_command,
    outbox_group,
    dossiers_group,
    orders_group,
    keys_group,
    simulate_command,
)

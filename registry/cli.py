"""``meeverhuizen registry``: run the registry, create its key, and act as its operator."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
from pydantic import ValidationError

from protocol.errors import ProtocolError
from protocol.jwk import generate_private_jwk, private_jwk_to_pem, public_jwk
from registry.errors import RegistryError
from registry.operator import OperatorClient
from registry.server_kit.deployment import uvicorn_proxy_options
from registry.server_kit.tls import uvicorn_tls_options
from registry.settings import RegistrySettings

__all__ = [
    "add_contract",
    "enrolment_code",
    "init_key",
    "migrate",
    "onboard_supplier",
    "registry",
    "revoke_key",
    "serve",
]

_T = TypeVar("_T")
DEFAULT_URL = "http://127.0.0.1:8100"


def _settings(**overrides: Any) -> RegistrySettings:
    try:
        return RegistrySettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise click.ClickException(f"invalid registry settings: {problems}") from exc


@click.group("registry")
def registry() -> None:
    """Run the registry service, create its signing key, and do operator actions."""


@registry.command()
@click.option("--host", help="Address to listen on [env MEEVERHUIZEN_REGISTRY_HOST].")
@click.option("--port", type=int, help="Port [env MEEVERHUIZEN_REGISTRY_PORT].")
@click.option(
    "--database-url", help="Async SQLAlchemy URL [env MEEVERHUIZEN_REGISTRY_DATABASE_URL]."
)
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Registry signing key (PEM) [env MEEVERHUIZEN_REGISTRY_SIGNING_KEY_FILE].",
)
def serve(
    host: str | None, port: int | None, database_url: str | None, key_file: Path | None
) -> None:
    """Serve the registry API with uvicorn."""
    import uvicorn

    from protocol.logs import configure_logging
    from registry.app import create_app

    if key_file is not None and not key_file.is_file():
        raise click.ClickException(f"key file {key_file} does not exist; run `registry init-key`")
    settings = _settings(host=host, port=port, database_url=database_url, signing_key_file=key_file)
    try:
        app = create_app(settings)
    except (OSError, ValueError, ProtocolError) as exc:
        raise click.ClickException(f"cannot start the registry: {exc}") from exc
    configure_logging("info")  # JSON lines with stable event names
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=None,
        **uvicorn_tls_options(settings),
        **uvicorn_proxy_options(settings),
    )


@registry.command()
@click.option(
    "--database-url", help="Async SQLAlchemy URL [env MEEVERHUIZEN_REGISTRY_DATABASE_URL]."
)
@click.option("--sql", is_flag=True, help="Print the SQL for an empty database; change nothing.")
def migrate(database_url: str | None, sql: bool) -> None:
    """Upgrade the registry database to the newest schema (serve does this on start too)."""
    from registry._migrations import MIGRATIONS
    from registry.server_kit.migrations import migrate_command

    migrate_command(MIGRATIONS, _settings(database_url=database_url).database_url, sql=sql)


@registry.command("init-key")
@click.argument("key_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--algorithm", type=click.Choice(["EdDSA", "PS256"]), default="EdDSA")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_key(key_file: Path, algorithm: str, force: bool) -> None:
    """Write a new registry signing key and print its public JWK: the agents' trust anchor."""
    if key_file.exists() and not force:
        raise click.ClickException(f"{key_file} exists; use --force to replace the registry key")
    jwk = generate_private_jwk("EdDSA" if algorithm == "EdDSA" else "PS256")
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_jwk_to_pem(jwk))
    click.echo(json.dumps(public_jwk(jwk), sort_keys=True))


def _operator_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--registry-url",
        envvar="MEEVERHUIZEN_REGISTRY_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="Registry base URL [env MEEVERHUIZEN_REGISTRY_URL].",
    )(command)
    return click.option(
        "--token",
        envvar="MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN",
        required=True,
        help="Operator token [env MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN].",
    )(command)


def _run(registry_url: str, token: str, action: Callable[[OperatorClient], Awaitable[_T]]) -> _T:
    async def main() -> _T:
        async with httpx.AsyncClient(timeout=10.0) as http:
            return await action(OperatorClient(registry_url, token, http=http))

    try:
        return asyncio.run(main())
    except RegistryError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc


@registry.command("enrolment-code")
@_operator_options
@click.option("--gemeentecode", help="CBS gemeentecode of the gemeente that will enrol.")
@click.option("--supplier-oin", help="OIN of an onboarded supplier that will enrol.")
def enrolment_code(
    registry_url: str, token: str, gemeentecode: str | None, supplier_oin: str | None
) -> None:
    """Issue a one-time enrolment code (printed once; the registry keeps only its hash)."""
    if (gemeentecode is None) == (supplier_oin is None):
        raise click.UsageError("give exactly one of --gemeentecode and --supplier-oin")
    code = _run(
        registry_url,
        token,
        lambda operator: operator.issue_enrolment_code(
            gemeentecode=gemeentecode, supplier_oin=supplier_oin
        ),
    )
    click.echo(code)


@registry.command("onboard-supplier")
@_operator_options
@click.option("--oin", required=True, help="Supplier OIN: 00000003 + KvK number + 0000.")
@click.option("--kvk-number", required=True, help="KvK number, 8 digits.")
@click.option("--name", required=True, help="Supplier name.")
def onboard_supplier(registry_url: str, token: str, oin: str, kvk_number: str, name: str) -> None:
    """Add a supplier so that it can get an enrolment code."""
    _run(
        registry_url,
        token,
        lambda operator: operator.onboard_supplier(oin=oin, kvk_number=kvk_number, name=name),
    )
    click.echo(f"supplier {oin} onboarded")


@registry.command("add-contract")
@_operator_options
@click.option("--gemeentecode", required=True)
@click.option("--supplier-oin", required=True)
@click.option("--iso-prefix", "iso_prefixes", multiple=True, required=True, help="e.g. '12 22'")
@click.option("--valid-from", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--valid-until", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--preference", type=int, default=1, show_default=True, help="1 = most preferred")
def add_contract(
    registry_url: str,
    token: str,
    gemeentecode: str,
    supplier_oin: str,
    iso_prefixes: tuple[str, ...],
    valid_from: datetime,
    valid_until: datetime | None,
    preference: int,
) -> None:
    """Record a gemeente's contract with a supplier for ISO 9999 prefixes."""
    until: date | None = valid_until.date() if valid_until else None
    contract_id = _run(
        registry_url,
        token,
        lambda operator: operator.add_contract(
            gemeentecode=gemeentecode,
            supplier_oin=supplier_oin,
            iso_prefixes=iso_prefixes,
            valid_from=valid_from.date(),
            valid_until=until,
            preference=preference,
        ),
    )
    click.echo(contract_id)


@registry.command("serve-gemeenten")
@_operator_options
@click.option("--oin", required=True, help="OIN of the gemeente whose agent serves the codes.")
@click.option(
    "--gemeentecode",
    "gemeentecodes",
    multiple=True,
    required=True,
    help="A gemeentecode it serves; repeat it, its own code included.",
)
def serve_gemeenten(
    registry_url: str, token: str, oin: str, gemeentecodes: tuple[str, ...]
) -> None:
    """Set the gemeentecodes a gemeente's agent serves (a regional service)."""
    _run(
        registry_url,
        token,
        lambda operator: operator.assign_gemeenten(oin=oin, gemeentecodes=gemeentecodes),
    )
    click.echo(f"{oin} serves {', '.join(sorted(set(gemeentecodes)))}")


@registry.command("revoke-key")
@_operator_options
@click.option("--oin", required=True)
@click.option("--kid", required=True, help="RFC 7638 thumbprint of the key.")
@click.option("--reason", required=True)
@click.option("--at", "at_text", help="Revocation time (ISO 8601 with zone); default now.")
def revoke_key(
    registry_url: str, token: str, oin: str, kid: str, reason: str, at_text: str | None
) -> None:
    """Revoke a participant's key; agents stop accepting it within a minute."""
    at = None
    if at_text is not None:
        try:
            at = datetime.fromisoformat(at_text)
        except ValueError as exc:
            raise click.BadParameter("not an ISO 8601 time", param_hint="--at") from exc
        if at.tzinfo is None:
            raise click.BadParameter(
                "give a time zone, e.g. 2025-03-01T12:00:00+01:00", param_hint="--at"
            )
    _run(
        registry_url,
        token,
        lambda operator: operator.revoke_key(oin=oin, kid=kid, reason=reason, at=at),
    )
    click.echo(f"key {kid} of {oin} revoked")

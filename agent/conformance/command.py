"""``meeverhuizen conformance``: run the kit against an agent and write its reports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx
from fastapi import FastAPI

from agent.conformance.cases import CaseResult
from agent.conformance.desk import AgentDesk, OperatorDesk
from agent.conformance.endpoint import serve_endpoint
from agent.conformance.kit import AgentPlanner, Desk, OperatorPlanner, Planner
from agent.conformance.own_registry import TargetEntry, enrol_target, own_registry
from agent.conformance.report import summary_line, write_html, write_junit
from agent.conformance.run import Serve, run_conformance
from agent.local.starting import StartFailed
from protocol.errors import ProblemError
from protocol.jwk import load_private_jwk_from_pem
from registry.client import RegistryClient
from registry.operator import OperatorClient

__all__ = ["conformance_command"]


def _json_file(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _registry_key(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("-----BEGIN"):
        return load_private_jwk_from_pem(text.encode("ascii"))
    return _json_file(path)


@dataclass(frozen=True)
class _Registry:
    url: str
    anchor: Mapping[str, Any]
    operator_token: str


@dataclass(frozen=True)
class _Options:
    target_url: str
    target_oin: str
    role: str
    registry_url: str | None
    trust_anchor: Path | None
    operator_token: str | None
    registry_host: str
    registry_port: int
    registry_key_file: Path | None
    work_dir: Path
    target_key: Path | None
    target_gemeentecode: str | None
    target_name: str
    enrol_seconds: float
    kit_host: str
    kit_port: int
    kit_endpoint: str | None
    answer_seconds: float
    target_token: str | None
    target_brp_token: str | None

    @property
    def endpoint(self) -> str:
        return self.kit_endpoint or f"http://{self.kit_host}:{self.kit_port}"


@asynccontextmanager
async def _registry(options: _Options, http: httpx.AsyncClient) -> AsyncIterator[_Registry]:
    """The registry given by URL, or one of the kit's own with the target enrolled in it."""
    if options.registry_url is not None:
        if options.trust_anchor is None or options.operator_token is None:
            raise click.UsageError("--registry-url needs --trust-anchor and --operator-token")
        anchor = _json_file(options.trust_anchor)
        yield _Registry(options.registry_url, anchor, options.operator_token)
        return
    hosts = {urlsplit(url).hostname or "" for url in (options.target_url, options.endpoint)}
    key = _registry_key(options.registry_key_file) if options.registry_key_file else None
    async with own_registry(
        options.work_dir,
        host=options.registry_host,
        port=options.registry_port,
        http=http,
        endpoint_hosts=sorted(hosts | {"127.0.0.1"}),
        signing_jwk=key,
        on_wait=click.echo,
    ) as started:
        url = f"http://{options.registry_host}:{options.registry_port}"
        click.echo(
            f"kit registry: {url}, trust anchor {options.work_dir / 'registry-anchor.json'}; "
            "the agent under test must use both"
        )
        target = TargetEntry(
            options.target_oin, options.role, options.target_gemeentecode, options.target_name
        )
        public = _json_file(options.target_key) if options.target_key else None
        await enrol_target(
            RegistryClient(url, started.anchor, http=http),
            OperatorClient(url, started.operator_token, http=http),
            target,
            endpoint=options.target_url if public is not None else None,
            public_jwk=public,
            seconds=options.enrol_seconds,
            tell=click.echo,
        )
        yield _Registry(url, started.anchor, started.operator_token)


def _serve(options: _Options) -> Serve:
    def serve(app: FastAPI) -> Any:
        return serve_endpoint(app, host=options.kit_host, port=options.kit_port)

    return serve


async def _run(options: _Options) -> list[CaseResult]:
    async with httpx.AsyncClient(timeout=30.0) as http, _registry(options, http) as registry:
        planner: Planner = OperatorPlanner(click.echo)
        desk: Desk = OperatorDesk(click.echo)
        if options.target_token:
            planner = AgentPlanner(http, options.target_url, options.target_token)
            desk = AgentDesk(
                http,
                options.target_url,
                options.target_token,
                click.echo,
                brp_token=options.target_brp_token,
            )
        return await run_conformance(
            http=http,
            target_url=options.target_url,
            target_oin=options.target_oin,
            role=options.role,
            registry_url=registry.url,
            trust_anchor=registry.anchor,
            operator_token=registry.operator_token,
            kit_endpoint=options.endpoint,
            serve=_serve(options),
            answer_seconds=options.answer_seconds,
            planner=planner,
            desk=desk,
            tell=click.echo,
        )


_PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("conformance")
@click.option("--target", "target_url", required=True, help="Base URL of the agent under test.")
@click.option("--target-oin", required=True, help="The OIN the agent under test enrols with.")
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
    help="A (test) registry the target uses; without it the kit starts a registry of its own.",
)
@click.option("--trust-anchor", type=_PATH, help="With --registry-url: its public JWK (JSON).")
@click.option(
    "--operator-token",
    envvar="MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN",
    help="With --registry-url: its operator token; the kit enrols itself as a gemeente.",
)
@click.option("--registry-host", default="127.0.0.1", show_default=True)
@click.option("--registry-port", type=int, default=8100, show_default=True)
@click.option(
    "--registry-key-file",
    type=_PATH,
    help="The own registry's signing key (registry init-key); a new one when not given.",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("conformance-registry"),
    show_default=True,
    help="The own registry's database, log and trust anchor (registry-anchor.json).",
)
@click.option(
    "--target-key",
    type=_PATH,
    help="The target's public signing JWK (JSON): the kit enrols the target at --target.",
)
@click.option("--target-gemeentecode", help="A gemeente target's CBS code (own registry).")
@click.option(
    "--target-name", default="Leverancier onder test", show_default=True, help="A supplier's name."
)
@click.option("--enrol-seconds", type=float, default=600.0, show_default=True)
@click.option("--kit-host", default="127.0.0.1", show_default=True, help="The kit listens here.")
@click.option("--kit-port", type=int, default=8300, show_default=True)
@click.option(
    "--kit-endpoint", help="The kit's endpoint URL in the registry [default: http://HOST:PORT]."
)
@click.option(
    "--answer-seconds",
    type=float,
    default=60.0,
    show_default=True,
    help="How long a case waits for a message of the target.",
)
@click.option(
    "--target-token",
    envvar="MEEVERHUIZEN_CONFORMANCE_TARGET_TOKEN",
    help="A Meeverhuizen agent's case system token: as a supplier's planner the kit records "
    "contact and takeover; at a gemeente it imports a client, records consent and a delivered "
    "alternative.",
)
@click.option(
    "--target-brp-token",
    envvar="MEEVERHUIZEN_CONFORMANCE_TARGET_BRP_TOKEN",
    help="A Meeverhuizen gemeente agent's BRP push token: the kit reports a move in itself.",
)
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
def conformance_command(junit: Path, html_path: Path, **values: Any) -> None:
    """Play the other party against an agent: its answers, and every case of protocol.md 7."""
    options = _Options(**values)
    try:
        results = asyncio.run(_run(options))
    except (ValueError, ProblemError, httpx.HTTPError, StartFailed) as exc:
        raise click.ClickException(str(exc) or type(exc).__name__) from exc
    for result in results:
        outcome = "passed" if result.passed else f"FAILED: {result.reason}"
        click.echo(f"[{result.case.section}] {result.case.name}: {outcome}")
    write_junit(results, junit, target=options.target_url)
    write_html(results, html_path, target=options.target_url)
    click.echo(f"reports: {junit}, {html_path}")
    click.echo(summary_line(results))
    if not all(result.passed for result in results):
        raise SystemExit(1)

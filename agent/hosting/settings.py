"""What an agent that hosts several organisations is told, and what must hold between them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, ValidationError

from agent.settings import AgentSettings, explain_invalid, load_settings
from registry.server_kit.deployment import (
    DeploymentSettings,
    ProductionRefused,
    insecure_url,
    refuse_in_production,
)
from registry.server_kit.tls import ServerTlsSettings

__all__ = ["Hosting", "HostingProblem", "HostingSettings", "host_name", "load_hosting"]


class HostingProblem(ValueError):
    """The hosting file, or an organisation's settings, cannot be served as given."""


class HostingSettings(ServerTlsSettings, DeploymentSettings):
    """The host's own settings (TOML): its shared address and the organisations it hosts."""

    model_config = ConfigDict(extra="forbid")

    public_base_url: str = Field(
        description="The shared address: every hosted organisation registers it as its "
        "endpoint_url, and a message to any of them arrives at its /v1/messages."
    )
    host: str = Field(default="127.0.0.1", description="Address `agent host` listens on.")
    port: int = Field(default=8100, ge=1, le=65535, description="Port `agent host` listens on.")
    organisations: list[Path] = Field(
        min_length=1,
        description="The settings file (TOML) of each hosted organisation, relative to this file.",
    )


@dataclass(frozen=True)
class Hosting:
    """The host's settings and, in the order given, the settings of each hosted organisation."""

    settings: HostingSettings
    organisations: tuple[AgentSettings, ...]

    def __post_init__(self) -> None:
        _check(self.settings, self.organisations)


def load_hosting(path: Path) -> Hosting:
    """Read the hosting file and each organisation's settings; every problem names its file."""
    try:
        document = tomllib.loads(path.read_text("utf-8"))  # its errors give line and column
        settings = HostingSettings.model_validate(document)
    except tomllib.TOMLDecodeError as exc:
        raise HostingProblem(f"{path}: {exc}") from exc
    except ValidationError as exc:
        raise HostingProblem(f"invalid hosting settings in {path}: {explain_invalid(exc)}") from exc
    organisations = []
    for file in settings.organisations:
        config = file if file.is_absolute() else path.parent / file
        if not config.is_file():
            raise HostingProblem(f"{path}: the organisation settings file {config} does not exist")
        try:
            organisations.append(load_settings(config))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise HostingProblem(f"{config}: {exc}") from exc
        except ValidationError as exc:
            raise HostingProblem(f"invalid settings in {config}: {explain_invalid(exc)}") from exc
    return Hosting(settings, tuple(organisations))


def host_name(url: str) -> str:
    """The host name of ``url``, as the Host header of a request to it names it (no port)."""
    return (urlsplit(url).hostname or "").lower()


def _check(host: HostingSettings, organisations: tuple[AgentSettings, ...]) -> None:
    shared = host.public_base_url.rstrip("/")
    if host.environment == "production":
        reasons = [
            insecure_url("public_base_url", shared),
            *(
                f"{settings.name} ({settings.oin}) runs in development mode"
                for settings in organisations
                if settings.environment != "production"
            ),
        ]
        try:
            refuse_in_production("the host", reasons)
        except ProductionRefused as exc:
            raise HostingProblem(str(exc)) from exc
    seen_oins: set[str] = set()
    seen_hosts = {host_name(shared)}
    databases: dict[tuple[str, str | None], str] = {}
    for settings in organisations:
        who = f"{settings.name} ({settings.oin})"
        if settings.oin in seen_oins:
            raise HostingProblem(f"{who} is hosted twice")
        seen_oins.add(settings.oin)
        if (settings.endpoint_url or "").rstrip("/") != shared:
            raise HostingProblem(
                f"{who}: endpoint_url must be the host's shared address {shared}, "
                f"not {settings.endpoint_url or 'unset'}"
            )
        name = host_name(settings.public_base_url)
        if name in seen_hosts:
            raise HostingProblem(
                f"{who}: public_base_url needs a host name of its own (its pages are found by "
                f"it), and {name} is taken"
            )
        seen_hosts.add(name)
        place = (settings.database_url, settings.database_schema)
        if place in databases:
            raise HostingProblem(
                f"{who} and {databases[place]} share a database: give each its own "
                "database_schema (PostgreSQL) or its own file (SQLite)"
            )
        databases[place] = who

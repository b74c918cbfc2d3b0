"""Typed settings of one agent: a TOML file given with ``--config``, overridden by environment.

Every field carries its description; ``docs/agent.md`` lists them. Environment variables use the
prefix ``MEEVERHUIZEN_AGENT_`` (nested fields with ``__``).
"""

from __future__ import annotations

import hashlib
import json
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from agent.settings.sections import (
    ConsentSettings,
    ContinuationSettings,
    DeviceExceptionPolicy,
    HandoverSettings,
    MaintenanceState,
    TakeoverSettings,
    WerkbakRole,
    WerkbakSettings,
)
from protocol.identifiers import Gemeentecode, IsoCode, Oin
from protocol.jwk import load_private_jwk_from_pem
from registry.server_kit.deployment import (
    DeploymentSettings,
    exposed_file,
    insecure_url,
    placeholder_token_hashes,
    refuse_in_production,
    sqlite_file,
)
from registry.server_kit.tls import ServerTlsSettings

__all__ = [
    "AgentSettings",
    "ConsentSettings",
    "ContinuationSettings",
    "DeviceExceptionPolicy",
    "HandoverSettings",
    "MaintenanceState",
    "TakeoverSettings",
    "WerkbakRole",
    "WerkbakSettings",
    "explain_invalid",
    "hash_token",
    "load_settings",
]

_CONFIG_FILE: ContextVar[Path | None] = ContextVar("_CONFIG_FILE", default=None)

# The SHA-256 of a bearer token, in hex: settings hold this, never the token.
TokenHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token: settings hold API tokens so, the database links and cookies."""
    # "replace": a presented value with a lone surrogate gets a hash that matches nothing, not an
    # encoding error.
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class AgentSettings(BaseSettings, ServerTlsSettings, DeploymentSettings):
    """Settings of one agent instance (one organisation)."""

    model_config = SettingsConfigDict(
        env_prefix="MEEVERHUIZEN_AGENT_", env_nested_delimiter="__", extra="forbid"
    )

    oin: Oin = Field(description="This organisation's OIN (20 digits).")
    role: Literal["gemeente", "supplier"] = Field(
        default="gemeente", description="Kind of organisation this agent acts for."
    )
    gemeentecode: Gemeentecode | None = Field(
        default=None, description="CBS gemeentecode (4 digits); required for a gemeente."
    )
    name: str = Field(min_length=1, description="Organisation name, for logs and the timeline.")
    signing_key_file: Path | None = Field(
        default=None, description="Private signing key: a PEM file or a JWK JSON file."
    )
    signing_jwk: dict[str, Any] | None = Field(
        default=None, repr=False, description="Private signing JWK inline (tests, demo)."
    )
    registry_url: str = Field(
        description="Base URL of the registry, e.g. https://registry.example."
    )
    registry_trust_anchor_file: Path | None = Field(
        default=None, description="The registry's public JWK (JSON file): the trust anchor."
    )
    registry_trust_anchor: dict[str, Any] | None = Field(
        default=None, description="The registry's public JWK inline, instead of the file."
    )
    registry_max_staleness_seconds: int = Field(
        default=3600, gt=0, description="How long verified registry answers serve when it is down."
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///meeverhuizen-agent.sqlite",
        description="Async SQLAlchemy URL: sqlite+aiosqlite:///FILE or postgresql+psycopg://...",
    )
    database_schema: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")] | None = (
        Field(
            default=None,
            description="PostgreSQL schema of this organisation's tables, when one database holds "
            "several organisations (`agent host`); none: the database's default schema.",
        )
    )
    public_base_url: str = Field(
        description="Base URL of this organisation's agent: its API, pages and personal links; "
        "registered as its endpoint unless endpoint_url is set."
    )
    endpoint_url: str | None = Field(
        default=None,
        description="Where other agents send this organisation's messages (registered as its "
        "endpoint); default public_base_url. An agent that hosts several organisations gives "
        "each the host's shared address.",
    )
    peer_allow_list: list[str] = Field(
        default_factory=list,
        description=(
            "Hosts, .domains, addresses or networks (CIDR) of other agents that may be called"
            " although they are loopback, private or otherwise internal, also over http: for a"
            " test network only. Every other peer must be https on a public address."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(default=8100, ge=1, le=65535, description="Port `serve` listens on.")
    outgoing_tls_certificate_file: Path | None = Field(
        default=None,
        description="Certificate (PEM) presented to other agents and the registry (mutual TLS).",
    )
    outgoing_tls_key_file: Path | None = Field(
        default=None, description="Private key (PEM) of the outgoing certificate."
    )
    tls_terminated_by_proxy: bool = Field(
        default=False,
        description="Mutual TLS is terminated by a reverse proxy in front of the agent "
        "(deploy/nginx-mtls.conf); production then needs no tls_* settings of the agent's own.",
    )
    outgoing_tls_ca_file: Path | None = Field(
        default=None,
        description="CA bundle (PEM) to verify the servers we call; default: system trust store.",
    )
    case_system_token_sha256: TokenHash | None = Field(
        default=None,
        description="SHA-256 (hex) of the bearer token of the gemeente's case system.",
    )
    operator_token_sha256: TokenHash | None = Field(
        default=None,
        description="SHA-256 (hex) of the operator's bearer token (also allows outbox actions).",
    )
    webhook_url: str | None = Field(
        default=None, description="Back-office webhook receiving CloudEvents (structured JSON)."
    )
    outbox_max_age_seconds: int = Field(
        default=7 * 24 * 3600, gt=0, description="After this age an undelivered message is dead."
    )
    outbox_base_delay_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay; doubles per attempt, with jitter."
    )
    outbox_max_delay_seconds: float = Field(
        default=3600.0, gt=0, description="Upper bound of the retry delay."
    )
    outbox_batch_size: int = Field(
        default=100, gt=0, description="Messages claimed per delivery pass."
    )
    outbox_claim_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a replica's claim on a delivery pass lasts before another may retry.",
    )
    delivery_interval_seconds: float = Field(
        default=5.0, gt=0, description="Interval of the scheduled delivery pass."
    )
    scheduler_enabled: bool = Field(
        default=True, description="Run the delivery job; tests switch it off and deliver by hand."
    )
    device_exceptions: dict[IsoCode, DeviceExceptionPolicy] = Field(
        default_factory=dict,
        description="Receiving side: exceptions to takeover per ISO 9999 code (prefix match).",
    )
    regional_device_exceptions: dict[Gemeentecode, dict[IsoCode, DeviceExceptionPolicy]] = Field(
        default_factory=dict,
        description=(
            "Receiving side of a regional service: the exceptions of a gemeente it serves, by"
            " gemeentecode, in place of device_exceptions for a client moving there."
        ),
    )
    brp_token_sha256: TokenHash | None = Field(
        default=None,
        description="SHA-256 (hex) of the bearer token the BRP uses to push CloudEvents.",
    )
    brp_feed_url: str | None = Field(
        default=None, description="URL of the BRP feed of unread events (pull); off when unset."
    )
    brp_feed_interval_seconds: float = Field(
        default=60.0, gt=0, description="Interval of the scheduled BRP feed read."
    )
    brp_feed_page_size: int = Field(
        default=10, gt=0, le=1000, description="Events asked per feed request (`limiet`)."
    )
    brp_max_batch_events: int = Field(
        default=1000, gt=0, description="Most CloudEvents accepted in one pushed batch."
    )
    brp_dossier_requests: bool = Field(
        default=False,
        description="Ask the departing gemeente for a dossier when someone moves in (BRP event).",
    )
    scenario_clock_file: Path | None = Field(
        default=None,
        description="Demo only: a file with a number of days the agent's clock runs ahead of "
        "the wall clock, so that a scenario can let days pass. Unset in production.",
    )
    daily_reports: bool = Field(
        default=True,
        description="Send this organisation's daily counts, signed, to the registry's public "
        "monitoring (docs/registry.md). The demo's scenarios turn it off: their clock runs ahead "
        "of the registry's.",
    )
    clock_skew_seconds: int = Field(
        default=300, ge=0, description="Allowed difference between signing time and our clock."
    )
    max_body_bytes: int = Field(
        default=1_048_576, gt=0, description="Largest accepted request body in bytes."
    )
    consent: ConsentSettings = Field(
        default_factory=ConsentSettings,
        description="Consent link, reminders and delivery channels.",
    )

    handover: HandoverSettings = Field(
        default_factory=HandoverSettings,
        description="Urgency by device, Wlz institution addresses, phone numbers for the client.",
    )

    kvk_number: str | None = Field(
        default=None, pattern=r"^[0-9]{8}$", description="Supplier: KvK number (8 digits)."
    )
    takeover: TakeoverSettings = Field(
        default_factory=TakeoverSettings,
        description="Takeover orders, supplier deadlines and settlement.",
    )
    continuation: ContinuationSettings = Field(
        default_factory=ContinuationSettings,
        description="Bruikleen transfers, alternatives for exceptions and fixed device needs.",
    )
    werkbak: WerkbakSettings = Field(
        default_factory=WerkbakSettings,
        description="The werkbak: sign-in with OpenID Connect, roles and sessions.",
    )

    @model_validator(mode="after")
    def _complete(self) -> AgentSettings:
        if self.role == "gemeente" and self.gemeentecode is None:
            raise ValueError("a gemeente agent needs its gemeentecode")
        if self.kvk_number is not None and self.oin != f"00000003{self.kvk_number}0000":
            raise ValueError("a supplier's OIN is 00000003 + KvK number + 0000")
        if self.signing_key_file is None and self.signing_jwk is None:
            raise ValueError("give signing_key_file or signing_jwk")
        if self.registry_trust_anchor_file is None and self.registry_trust_anchor is None:
            raise ValueError("give registry_trust_anchor_file or registry_trust_anchor")
        if (self.outgoing_tls_certificate_file is None) != (self.outgoing_tls_key_file is None):
            raise ValueError(
                "give outgoing_tls_certificate_file and outgoing_tls_key_file, or neither"
            )
        if (self.werkbak.oidc_issuer is None) != (self.werkbak.oidc_client_id is None):
            raise ValueError("give werkbak.oidc_issuer and werkbak.oidc_client_id, or neither")
        if self.database_schema is not None and self.database_url.startswith("sqlite"):
            raise ValueError(
                "database_schema needs PostgreSQL; on SQLite give each organisation its own file"
            )
        return self

    @model_validator(mode="after")
    def _production(self) -> AgentSettings:
        if self.environment == "production":
            refuse_in_production("the agent", self._production_problems())
        return self

    def _production_problems(self) -> list[str | None]:
        urls = (
            ("registry_url", self.registry_url),
            ("public_base_url", self.public_base_url),
            ("endpoint_url", self.endpoint_url),
            ("webhook_url", self.webhook_url),
            ("brp_feed_url", self.brp_feed_url),
        )
        files = (
            ("signing_key_file", self.signing_key_file),
            ("tls_key_file", self.tls_key_file),
            ("outgoing_tls_key_file", self.outgoing_tls_key_file),
            ("database file", sqlite_file(self.database_url)),
        )
        return [
            *(insecure_url(name, url) for name, url in urls),
            *self._mutual_tls_problems(),
            *self._token_problems(),
            *(exposed_file(name, path) for name, path in files),
        ]

    def _mutual_tls_problems(self) -> list[str | None]:
        inbound = self.tls_terminated_by_proxy or self.tls_client_auth == "required"
        return [
            None
            if inbound
            else "mutual TLS: set tls_client_auth = required (with tls_certificate_file, "
            "tls_key_file, tls_client_ca_file) or tls_terminated_by_proxy behind a proxy "
            "that requires client certificates",
            None
            if self.outgoing_tls_certificate_file is not None
            else "mutual TLS: set outgoing_tls_certificate_file and outgoing_tls_key_file",
        ]

    def _token_problems(self) -> list[str | None]:
        required = {"operator_token_sha256": self.operator_token_sha256}
        if self.role == "gemeente":
            required["case_system_token_sha256"] = self.case_system_token_sha256
        configured = required | {"brp_token_sha256": self.brp_token_sha256}
        placeholders = placeholder_token_hashes()
        problems: list[str | None] = [
            f"{name} is required" for name, value in required.items() if value is None
        ]
        problems += [
            f"{name} is the hash of a placeholder token"
            for name, value in configured.items()
            if value in placeholders
        ]
        present = [value for value in configured.values() if value is not None]
        if len(set(present)) != len(present):
            problems.append("the case system, operator and BRP tokens must differ")
        return problems

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Priority: explicit arguments, then environment, then the --config TOML file.
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_CONFIG_FILE.get()),
        )

    @property
    def endpoint(self) -> str:
        """The address registered as this organisation's endpoint."""
        return self.endpoint_url or self.public_base_url

    @property
    def outbox_max_age(self) -> timedelta:
        return timedelta(seconds=self.outbox_max_age_seconds)

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_seconds)

    def device_exceptions_for(self, gemeentecode: str) -> dict[str, DeviceExceptionPolicy]:
        """The exceptions to takeover of the gemeente a client moves to (one of a region)."""
        regional = self.regional_device_exceptions.get(gemeentecode)
        return dict(self.device_exceptions if regional is None else regional)

    def private_jwk(self) -> dict[str, Any]:
        """Load the private signing JWK (inline, JWK JSON file or PEM file)."""
        if self.signing_jwk is not None:
            return dict(self.signing_jwk)
        if self.signing_key_file is None:
            raise ValueError("no signing key configured")
        data = self.signing_key_file.read_bytes()
        if data.lstrip().startswith(b"{"):
            document: dict[str, Any] = json.loads(data)
            return document
        return load_private_jwk_from_pem(data)

    def trust_anchor(self) -> dict[str, Any]:
        """Load the registry's public JWK."""
        if self.registry_trust_anchor is not None:
            return dict(self.registry_trust_anchor)
        if self.registry_trust_anchor_file is None:
            raise ValueError("no registry trust anchor configured")
        document: dict[str, Any] = json.loads(self.registry_trust_anchor_file.read_bytes())
        return document


def explain_invalid(error: ValidationError) -> str:
    """Each invalid field of ``error`` with why, on one line: where each is and what is wrong."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}"
        for item in error.errors()
    )


def load_settings(config_file: Path | None = None, **overrides: Any) -> AgentSettings:
    """Read settings from ``config_file`` (TOML) and the environment; ``overrides`` win."""
    token = _CONFIG_FILE.set(config_file)
    try:
        return AgentSettings(**overrides)
    finally:
        _CONFIG_FILE.reset(token)

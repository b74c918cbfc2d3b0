"""Settings of the registry service: one typed object, read from ``MEEVERHUIZEN_REGISTRY_*``."""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocol import jwk as jwk_module
from registry.server_kit.deployment import (
    PLACEHOLDER_SECRET,
    DeploymentSettings,
    exposed_file,
    placeholder_token_hashes,
    refuse_in_production,
    sqlite_file,
)
from registry.server_kit.tls import ServerTlsSettings

__all__ = ["PLACEHOLDER_SECRET", "RegistrySettings", "get_settings", "load_signing_jwk"]
MAX_ANSWER_AGE_SECONDS = 300  # revocation takes effect within at most 5 minutes


class RegistrySettings(BaseSettings, ServerTlsSettings, DeploymentSettings):
    """Configuration of one registry service."""

    model_config = SettingsConfigDict(env_prefix="MEEVERHUIZEN_REGISTRY_", extra="forbid")

    database_url: str = Field(
        default="sqlite+aiosqlite:///registry.sqlite",
        description="Async SQLAlchemy URL: a SQLite file (default) or postgresql+psycopg://...",
    )
    signing_key_file: Path | None = Field(
        default=None,
        description="PEM or JWK file with the registry's private signing key (the trust anchor).",
    )
    signing_jwk: SecretStr | None = Field(
        default=None, description="The private signing JWK as JSON text, instead of a key file."
    )
    operator_token: SecretStr | None = Field(
        default=None,
        description="Operator bearer token; kept in memory only as its SHA-256 hash.",
    )
    operator_token_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 (hex) of the operator token, so the token itself is stored nowhere.",
    )
    host: str = Field(default="127.0.0.1", description="Address `registry serve` listens on.")
    port: int = Field(default=8100, ge=1, le=65535, description="Port `registry serve` uses.")
    answer_max_age: int = Field(
        default=MAX_ANSWER_AGE_SECONDS,
        ge=0,
        le=MAX_ANSWER_AGE_SECONDS,
        description="Seconds a client may use a signed answer (Cache-Control max-age); <= 300.",
    )
    enrolment_code_ttl: timedelta = Field(
        default=timedelta(days=14), description="How long an enrolment code can be used."
    )
    request_clock_skew: timedelta = Field(
        default=timedelta(minutes=5),
        description="How far the time in a signed change may be from the registry's clock.",
    )
    max_body_bytes: int = Field(
        default=65_536, ge=1024, description="Largest request body the service reads."
    )
    endpoint_allow_list: list[str] = Field(
        default_factory=list,
        description=(
            "Hosts, .domains, addresses or networks (CIDR) an agent endpoint may name although"
            " they are loopback, private or otherwise internal, also over http: for a test"
            " network only. In production every other endpoint must be https on a public"
            " address."
        ),
    )

    @model_validator(mode="after")
    def _tls_complete(self) -> RegistrySettings:
        return self

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> RegistrySettings:
        if self.environment == "development":
            return self
        token = self.operator_token.get_secret_value() if self.operator_token else None
        if token == PLACEHOLDER_SECRET:
            raise ValueError("operator_token is the placeholder; set a real secret")
        if token is not None and len(token) < 16:
            raise ValueError("operator_token must be at least 16 characters")
        if self.signing_key_file is None and self.signing_jwk is None:
            raise ValueError("a signing key (signing_key_file or signing_jwk) is required")
        placeholder = self.operator_token_sha256 in placeholder_token_hashes()
        refuse_in_production(
            "the registry",
            [
                "operator_token_sha256 is the hash of a placeholder token" if placeholder else None,
                exposed_file("signing_key_file", self.signing_key_file),
                exposed_file("tls_key_file", self.tls_key_file),
                exposed_file("database file", sqlite_file(self.database_url)),
            ],
        )
        return self

    def operator_token_hash(self) -> bytes | None:
        """SHA-256 of the operator token, or None when no operator credential is configured."""
        if self.operator_token_sha256 is not None:
            return bytes.fromhex(self.operator_token_sha256)
        if self.operator_token is not None:
            return hashlib.sha256(self.operator_token.get_secret_value().encode()).digest()
        return None


def load_signing_jwk(settings: RegistrySettings) -> dict[str, Any] | None:
    """The registry's private signing JWK from the settings; None when none is configured."""
    if settings.signing_jwk is not None:
        text = settings.signing_jwk.get_secret_value()
    elif settings.signing_key_file is not None:
        text = settings.signing_key_file.read_text(encoding="utf-8")
    else:
        return None
    if text.lstrip().startswith("-----BEGIN"):
        return jwk_module.load_private_jwk_from_pem(text.encode("ascii"))
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def get_settings() -> RegistrySettings:
    """The settings of this process, read once from the environment."""
    return RegistrySettings()

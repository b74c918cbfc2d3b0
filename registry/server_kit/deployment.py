"""Production and development mode, shared by the registry and the agents.

In ``production`` a service refuses to start with a setting that leaves a door open: a plain-HTTP
URL, no mutual TLS, a missing or placeholder secret, a key or database file that other users of
the machine can read. In ``development`` it starts with any setting and logs a warning at start,
so a development configuration is never mistaken for a production one.

Forwarded headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) are believed only from the
proxies named in ``trusted_proxies`` (none by default): uvicorn's own default trusts them from
127.0.0.1, which lets anyone on the machine, or a proxy that passes the headers on, choose the
client address that rate limits count.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, TypedDict

from pydantic import BaseModel, Field
from sqlalchemy.engine import make_url

from protocol.logs import log_event

__all__ = [
    "PLACEHOLDER_SECRET",
    "ApiContact",
    "DeploymentSettings",
    "Environment",
    "ProductionRefused",
    "UvicornProxyOptions",
    "create_private_sqlite_file",
    "exposed_file",
    "insecure_url",
    "log_development_mode",
    "placeholder_token_hashes",
    "refuse_in_production",
    "sqlite_file",
    "uvicorn_proxy_options",
]

Environment = Literal["development", "production"]
PLACEHOLDER_SECRET = "changethis"  # noqa: S105 - the value that is refused
# Tokens that appear in examples and demos: refused in production, also as their SHA-256.
_KNOWN_TOKENS = (PLACEHOLDER_SECRET, "", "secret", "token", "password", "changeme")
# Other users of the machine may neither read nor write key and database files.
_OTHERS = stat.S_IROTH | stat.S_IWOTH


class ProductionRefused(ValueError):
    """A production configuration with settings that production refuses (all of them named)."""

    def __init__(self, service: str, reasons: Sequence[str]) -> None:
        super().__init__(f"{service} refuses to start in production: " + "; ".join(reasons))
        self.reasons = tuple(reasons)


class ApiContact(BaseModel):
    """Who answers for a service's API: the OpenAPI document's ``info.contact`` (API-51)."""

    name: str = Field(
        default="Meeverhuizen maintainers",
        min_length=1,
        max_length=200,
        description="Who answers questions about this API (the operator's service desk).",
    )
    url: str = Field(
        default="https://meeverhuizen.invalid/contact",
        pattern=r"^https?://\S+$",
        description="Web page of that contact.",
    )
    email: str = Field(
        default="api@meeverhuizen.invalid",
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="E-mail address of that contact.",
    )


class DeploymentSettings(BaseModel):
    """The deployment fields that the agent's and the registry's settings share."""

    environment: Environment = Field(
        default="development",
        description="production refuses http URLs, missing mutual TLS, placeholder secrets and "
        "key or database files others can read; development warns at start.",
    )
    api_contact: ApiContact = Field(
        default_factory=ApiContact,
        description="Who answers for this service's API (name, url, email), published as the "
        "OpenAPI document's info.contact: the operator's service desk.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (none by default).",
    )


class UvicornProxyOptions(TypedDict):
    """Keyword arguments of ``uvicorn.run`` / ``uvicorn.Config`` for forwarded headers."""

    proxy_headers: bool
    forwarded_allow_ips: list[str]


def uvicorn_proxy_options(settings: DeploymentSettings) -> UvicornProxyOptions:
    """Believe forwarded headers from the configured proxies only; none: ignore them."""
    return {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
    }


def insecure_url(name: str, url: str | None) -> str | None:
    """Why ``url`` is not acceptable in production (not https), or None."""
    if url is None or url.lower().startswith("https://"):
        return None
    return f"{name} must be an https:// URL"


def exposed_file(name: str, path: Path | None) -> str | None:
    """Why the file at ``path`` is not acceptable in production (others may read it), or None."""
    if path is None or not path.exists():
        return None
    mode = path.stat().st_mode
    if mode & _OTHERS:
        return f"{name} {path} can be read or written by other users (mode {mode & 0o777:o})"
    return None


def placeholder_token_hashes() -> frozenset[str]:
    """SHA-256 (hex) of the placeholder and example tokens, as settings hold token hashes."""
    return frozenset(hashlib.sha256(token.encode()).hexdigest() for token in _KNOWN_TOKENS)


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite database URL; None for another database or an in-memory one."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def create_private_sqlite_file(database_url: str) -> None:
    """Create a SQLite database file readable by its owner only (0600) before SQLite does.

    SQLite creates the ``-wal`` and ``-shm`` files with the mode of the database file. An
    existing file keeps its mode (production refuses it when others can read it).
    """
    path = sqlite_file(database_url)
    if path is None or path.exists() or not path.parent.is_dir():
        return
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it in between
        return
    os.close(descriptor)


def refuse_in_production(service: str, reasons: Iterable[str | None]) -> None:
    """Raise :class:`ProductionRefused` naming every reason that is not None."""
    found = [reason for reason in reasons if reason is not None]
    if found:
        raise ProductionRefused(service, found)


def log_development_mode(log: logging.Logger, service: str) -> None:
    """The warning a service logs at start when it runs in development mode."""
    log_event(
        log,
        "development_mode",
        level=logging.WARNING,
        kind=service,
        reason="development mode accepts placeholder tokens, plain HTTP and key files others "
        "can read; set environment = production for real use",
    )

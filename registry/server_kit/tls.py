"""TLS for the registry and the agents: server options for uvicorn and the client's SSL context.

Digikoppeling (Koppelvlakstandaard REST API, "tweezijdig TLS") and FSC require mutual TLS between
organisations: each side presents a certificate (PKIoverheid in production) and checks the other.
Both services' settings include :class:`ServerTlsSettings` (``tls_certificate_file``,
``tls_key_file``, ``tls_client_ca_file``, ``tls_client_auth``); this module turns them into uvicorn
options.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal, Self, TypedDict

from pydantic import BaseModel, Field, model_validator

__all__ = [
    "ClientAuth",
    "ServerTlsSettings",
    "UvicornTlsOptions",
    "check_server_tls",
    "client_ssl_context",
    "uvicorn_tls_options",
]

ClientAuth = Literal["none", "optional", "required"]

_CERT_REQUIREMENTS: dict[ClientAuth, ssl.VerifyMode] = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


class ServerTlsSettings(BaseModel):
    """The server TLS fields that the agent's and the registry's settings share."""

    tls_certificate_file: Path | None = Field(
        default=None, description="Server certificate chain (PEM); with tls_key_file: serve HTTPS."
    )
    tls_key_file: Path | None = Field(
        default=None, description="Private key (PEM) of the server certificate."
    )
    tls_client_ca_file: Path | None = Field(
        default=None, description="CA bundle (PEM) that client certificates must chain to."
    )
    tls_client_auth: ClientAuth = Field(
        default="none",
        description="Client certificates: none, optional or required (mutual TLS).",
    )

    @model_validator(mode="after")
    def _usable_tls(self) -> Self:
        check_server_tls(self)
        return self


class UvicornTlsOptions(TypedDict, total=False):
    """Keyword arguments of ``uvicorn.run`` / ``uvicorn.Config`` for HTTPS."""

    ssl_certfile: str
    ssl_keyfile: str
    ssl_ca_certs: str
    ssl_cert_reqs: int


def check_server_tls(settings: ServerTlsSettings) -> None:
    """Raise ValueError when the server TLS fields do not form a usable configuration."""
    if (settings.tls_certificate_file is None) != (settings.tls_key_file is None):
        raise ValueError("give both tls_certificate_file and tls_key_file, or neither")
    if settings.tls_client_auth == "none":
        return
    if settings.tls_certificate_file is None:
        raise ValueError("tls_client_auth needs HTTPS: set tls_certificate_file and tls_key_file")
    if settings.tls_client_ca_file is None:
        raise ValueError("tls_client_auth needs tls_client_ca_file to check client certificates")


def uvicorn_tls_options(settings: ServerTlsSettings) -> UvicornTlsOptions:
    """Options that make uvicorn serve HTTPS (and ask for client certificates); empty for HTTP."""
    check_server_tls(settings)
    if settings.tls_certificate_file is None or settings.tls_key_file is None:
        return {}
    options: UvicornTlsOptions = {
        "ssl_certfile": str(settings.tls_certificate_file),
        "ssl_keyfile": str(settings.tls_key_file),
        "ssl_cert_reqs": int(_CERT_REQUIREMENTS[settings.tls_client_auth]),
    }
    if settings.tls_client_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.tls_client_ca_file)
    return options


def client_ssl_context(
    *,
    certificate_file: Path | None = None,
    key_file: Path | None = None,
    ca_file: Path | None = None,
) -> ssl.SSLContext:
    """An SSL context for outgoing HTTPS: verifies servers, presents our certificate if given.

    Without ``ca_file`` the system's trust store is used. Hostname checking stays on.
    """
    if (certificate_file is None) != (key_file is None):
        raise ValueError("give both the client certificate and its key, or neither")
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=None if ca_file is None else str(ca_file)
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certificate_file is not None and key_file is not None:
        context.load_cert_chain(certfile=str(certificate_file), keyfile=str(key_file))
    return context

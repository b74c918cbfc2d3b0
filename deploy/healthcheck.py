"""Container health check: GET the health URL, presenting a client certificate when one is set.

Standard library only, so it runs in the image without the project on the path. Variables:
HEALTHCHECK_URL (default http://127.0.0.1:8100/v1/health), and for mutual TLS HEALTHCHECK_CERT,
HEALTHCHECK_KEY (a certificate the server's client CA trusts) and HEALTHCHECK_CA.

An argument that starts with "/" replaces the path of HEALTHCHECK_URL, so one variable serves
both probes: ``healthcheck.py /v1/health`` (liveness) and ``healthcheck.py /v1/health/ready``
(readiness).
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8100/v1/health"


def _context(url: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=os.environ.get("HEALTHCHECK_CA") or None)
    # On loopback the certificate carries the public name, not 127.0.0.1: the chain is still
    # verified, the host name is not (the probe never leaves the pod or container).
    if urllib.parse.urlsplit(url).hostname in {"127.0.0.1", "localhost", "::1"}:
        context.check_hostname = False
    certificate = os.environ.get("HEALTHCHECK_CERT")
    if certificate:
        context.load_cert_chain(certificate, os.environ.get("HEALTHCHECK_KEY") or None)
    return context


def _url(arguments: list[str]) -> str:
    url = os.environ.get("HEALTHCHECK_URL", DEFAULT_URL)
    if arguments and arguments[0].startswith("/"):
        parts = urllib.parse.urlsplit(url)
        url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, arguments[0], "", ""))
    return url


def main(arguments: list[str] | None = None) -> int:
    """Exit 0 when the service answers 200, 1 otherwise."""
    url = _url(sys.argv[1:] if arguments is None else arguments)
    if not url.startswith(("http://", "https://")):
        return 1
    try:
        with urllib.request.urlopen(url, timeout=4, context=_context(url)) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

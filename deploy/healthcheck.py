"""Container health check: GET the health URL, presenting a client certificate when one is set.

Standard library only, so it runs in the image without the project on the path. Variables:
HEALTHCHECK_URL (default http://127.0.0.1:8100/v1/health), and for mutual TLS HEALTHCHECK_CERT,
HEALTHCHECK_KEY (a certificate the server's client CA trusts) and HEALTHCHECK_CA.
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


def main() -> int:
    """Exit 0 when the service answers 200, 1 otherwise."""
    url = os.environ.get("HEALTHCHECK_URL", DEFAULT_URL)
    if not url.startswith(("http://", "https://")):
        return 1
    try:
        with urllib.request.urlopen(url, timeout=4, context=_context(url)) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""Which agent endpoints may be registered and called: https on a public address.

An endpoint that names (or resolves to) a loopback, link-local, private, unspecified, multicast
or otherwise non-global address would let a participant point other agents, or the registry, at
an internal service (the cloud metadata address, a database port). The registry checks an
endpoint when it is registered, and an agent checks it again before every connection, because
a name may resolve differently later. The connection then goes to the address that was checked
(:meth:`CheckedEndpoint.target`), so a name that resolves to a public address for the check and
to an internal one a moment later (DNS rebinding) cannot redirect it. A test network names its
hosts or networks in an explicit allow-list; an allow-listed host may also be reached over plain
http.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from registry.errors import EndpointNotAllowed

__all__ = [
    "CheckedEndpoint",
    "EndpointRules",
    "RequestTarget",
    "Resolver",
    "address_class",
    "system_resolver",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A host name to the addresses it resolves to (empty when it does not resolve).
Resolver = Callable[[str], Awaitable[Sequence[str]]]


async def system_resolver(host: str) -> Sequence[str]:
    """The addresses the operating system resolves ``host`` to."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    return tuple(str(info[4][0]) for info in infos)


def address_class(address: IpAddress) -> str | None:
    """The refused class of an address, or None for a global unicast address."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved or not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


@dataclass(frozen=True)
class RequestTarget:
    """Where one request goes: a URL on the checked address, and the endpoint's own host name.

    ``headers`` carries ``Host`` and ``extensions`` the TLS server name (``sni_hostname``, a
    request extension of httpx and of its aiohttp transport): the server's certificate is still
    verified for the host name, while no second name lookup happens.
    """

    url: str
    headers: Mapping[str, str]
    extensions: Mapping[str, str]


@dataclass(frozen=True)
class CheckedEndpoint:
    """An endpoint that passed the checks, and the address they found for its host.

    ``address`` is None when the host is named in the allow-list (a test host): it is then
    reached by name.
    """

    url: str
    address: str | None

    def target(self, path: str) -> RequestTarget:
        """The request for ``path`` below the endpoint, to be sent to the checked address."""
        parts = urlsplit(f"{self.url.rstrip('/')}{path}")
        host = parts.hostname or ""
        if self.address is None or _same_address(host, self.address):
            return RequestTarget(urlunsplit(parts), {}, {})
        literal = f"[{self.address}]" if ":" in self.address else self.address
        pinned = parts._replace(netloc=literal + (f":{parts.port}" if parts.port else ""))
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        host_header = parts.netloc.rsplit("@", 1)[-1]  # never user information
        return RequestTarget(urlunsplit(pinned), {"Host": host_header}, extensions)


def _same_address(host: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(address)
    except ValueError:
        return False


def _parse_allowed(entries: Sequence[str]) -> tuple[frozenset[str], tuple[IpNetwork, ...]]:
    names: set[str] = set()
    networks: list[IpNetwork] = []
    for entry in entries:
        text = entry.strip().lower().strip("[]")
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            names.add(text)
    return frozenset(names), tuple(networks)


@dataclass(frozen=True)
class EndpointRules:
    """The checks of an endpoint URL; ``allow_list`` names test hosts and networks."""

    allow_list: Sequence[str] = ()
    resolver: Resolver = system_resolver
    _names: frozenset[str] = field(init=False, repr=False)
    _networks: tuple[IpNetwork, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names, networks = _parse_allowed(self.allow_list)
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_networks", networks)

    async def check(self, url: str) -> CheckedEndpoint:
        """The endpoint and the address to connect to, if ``url`` may be registered or called now.

        Raises ``EndpointNotAllowed`` otherwise. Every address the host resolves to is checked;
        the connection goes to the first.
        """
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not host:
            raise EndpointNotAllowed("an endpoint is an https URL with a host name or address")
        if self._named(host):
            return CheckedEndpoint(url, None)
        addresses = await self._addresses(host)
        checked = CheckedEndpoint(url, str(addresses[0]))
        allowed = all(any(a in network for network in self._networks) for a in addresses)
        if allowed and self._networks:
            return checked
        if parts.scheme != "https":
            raise EndpointNotAllowed("an endpoint must use https")
        for address in addresses:
            if any(address in network for network in self._networks):
                continue
            refused = address_class(address)
            if refused is not None:
                raise EndpointNotAllowed(
                    f"the endpoint's host {host} is a {refused} address ({address})"
                )
        return checked

    def _named(self, host: str) -> bool:
        return host in self._names or any(
            name.startswith(".") and host.endswith(name) for name in self._names
        )

    async def _addresses(self, host: str) -> tuple[IpAddress, ...]:
        try:
            return (ipaddress.ip_address(host),)
        except ValueError:
            pass
        resolved = await self.resolver(host)
        addresses: list[IpAddress] = []
        for text in resolved:
            try:
                addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
            except ValueError:
                continue
        if not addresses:
            raise EndpointNotAllowed(f"the endpoint's host {host} does not resolve")
        return tuple(addresses)

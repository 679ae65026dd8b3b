"""The SSRF guard: may hyperwatch send a request to this URL, and to which address exactly?

Webhook URLs come from users, so a URL pointing inside our network (a database, the cloud
metadata service at 169.254.169.254, a Redis on localhost) must be refused. Contract of
:func:`resolve_target`:

- only ``http`` and ``https``; no credentials in the URL; a well-formed host and port;
- the host is resolved **as the OS would** — numeric forms such as ``2130706433``,
  ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` are parsed with ``inet_aton`` (what
  ``getaddrinfo`` does), names go to the resolver — and **every** address it yields is
  checked: loopback, private, link-local, multicast, reserved, unspecified, CGNAT
  (100.64.0.0/10), IPv6 unique-local, site-local and link-local, and IPv4 embedded in IPv6
  (mapped, compatible, 6to4, NAT64) are refused unless the allowlist permits them;
- the returned :class:`Target` carries the checked IP: the caller connects to *that* address
  (sending ``Host``/SNI for the name) instead of resolving again, so a DNS answer that changes
  between check and connect (rebinding) cannot redirect the request;
- a policy refusal raises :class:`EgressRefused` (permanent); a resolver failure propagates
  as the resolver's ``OSError`` (``socket.gaierror``), which is transient.

The allowlist (``settings.webhook_allowlist``) holds CIDRs (``127.0.0.0/8``) or exact host
names (``hooks.internal``); an allowlisted name may resolve to anything.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from settings import normalise_host_name

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses as strings``; raises ``OSError`` when the name does not resolve."""

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_NUMERIC_V4: Final = re.compile(r"^[0-9a-fx.]+$")
_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
# Special-purpose ranges some Python versions still call global.
_SPECIAL: Final[tuple[IPNetwork, ...]] = (
    ipaddress.IPv4Network("192.0.0.0/24"),
    ipaddress.IPv4Network("198.18.0.0/15"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("100::/64"),
    ipaddress.IPv6Network("2001::/23"),
    ipaddress.IPv6Network("2001:db8::/32"),
    ipaddress.IPv6Network("fec0::/10"),
)


class EgressRefused(ValueError):
    """The URL may not be called. ``reason`` (and ``str()``) is one human sentence."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect: ``ip`` and ``port``, speaking ``scheme``, for ``host`` (the name to
    send as ``Host`` and TLS SNI / certificate name) and ``path`` (path and query)."""

    scheme: str
    host: str
    ip: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == _DEFAULT_PORTS[self.scheme] else f"{name}:{self.port}"

    def pinned_url(self) -> str:
        """The URL with the host replaced by the checked IP (send ``host_header`` with it)."""
        ip = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.scheme}://{ip}:{self.port}{self.path}"


@dataclass(frozen=True, slots=True)
class Allowlist:
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    def permits_host(self, host: str) -> bool:
        return host in self.hosts

    def permits_ip(self, ip: IPAddress) -> bool:
        candidates = [ip]
        embedded = _embedded_v4(ip)
        if embedded is not None:
            candidates.append(embedded)
        return any(
            c in net for net in self.networks for c in candidates if c.version == net.version
        )


def parse_allowlist(entries: Iterable[str]) -> Allowlist:
    """Split allowlist entries into networks and host names; ValueError names a bad entry."""
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = normalise_host_name(entry)
        if name is None:
            raise ValueError(f"webhook allowlist entry {raw!r} is neither a CIDR nor a host name")
        hosts.add(name)
    return Allowlist(networks=tuple(networks), hosts=frozenset(hosts))


def system_resolver(host: str, port: int) -> list[str]:
    """All TCP addresses ``getaddrinfo`` gives for ``host``, in its (preference) order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


def _numeric_v4(host: str) -> ipaddress.IPv4Address | None:
    """The address the OS reads a numeric host as (decimal, octal, hex, short forms)."""
    if not _NUMERIC_V4.match(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    value = int(ip)
    if ip in _NAT64 or (value >> 32 == 0 and value > 1):  # NAT64, or IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


def _category(ip: IPAddress) -> str | None:
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "shared (CGNAT)"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (any(ip in net for net in _SPECIAL if net.version == ip.version), "special-purpose"),
        (not ip.is_global, "non-global"),
    )
    return next((name for hit, name in checks if hit), None)


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why a connection to ``ip`` is refused, or None when it is a public address."""
    embedded = _embedded_v4(ip)
    if embedded is not None:
        category = _category(embedded)
        if category is not None:
            return f"{category} address {embedded} (embedded in {ip})"
    category = _category(ip)
    return f"{category} address {ip}" if category is not None else None


def _host_and_port(url: str) -> tuple[str, str, int, str, bool]:
    """(scheme, host, port, path, host-is-an-IPv6-literal) or EgressRefused."""
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 for c in url):
        raise EgressRefused("the URL must be one line without spaces")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. a bracketed host that is not IPv6
        raise EgressRefused(f"the URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise EgressRefused(f"only http and https URLs are allowed, got {scheme or 'no scheme'!r}")
    if "@" in parts.netloc:
        raise EgressRefused("URLs with credentials (user:password@) are not allowed")
    host = parts.hostname
    if not host:
        raise EgressRefused("the URL has no host")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise EgressRefused("the URL has an invalid port") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, path, "[" in parts.netloc


def resolve_target(
    url: str,
    allowlist: Iterable[str] | Allowlist = (),
    resolver: Resolver = system_resolver,
) -> Target:
    """Check ``url`` and resolve it to the one address to connect to (see module contract).

    Raises :class:`EgressRefused` with the reason; lets the resolver's ``OSError`` through.
    """
    rules = allowlist if isinstance(allowlist, Allowlist) else parse_allowlist(allowlist)
    scheme, host, port, path, bracketed = _host_and_port(url)
    literal: IPAddress | None
    if bracketed:
        try:
            literal = ipaddress.IPv6Address(host)
        except ValueError:
            raise EgressRefused(f"{host!r} is not a valid IPv6 address") from None
    else:
        name = normalise_host_name(host)
        if name is None:
            raise EgressRefused(f"{host!r} is not a valid host name")
        host = name
        literal = _numeric_v4(host)
    raw = [str(literal)] if literal is not None else list(resolver(host, port))
    if not raw:
        raise EgressRefused(f"{host} does not resolve to any address")
    addresses: list[IPAddress] = []
    for text in raw:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError:
            raise EgressRefused(f"{host} resolved to a non-address {text!r}") from None
    if not rules.permits_host(host):
        for ip in addresses:
            reason = forbidden_reason(ip)
            if reason is not None and not rules.permits_ip(ip):
                raise EgressRefused(f"{host} resolves to a {reason}, which is not allowed")
    return Target(scheme=scheme, host=host, ip=str(addresses[0]), port=port, path=path)

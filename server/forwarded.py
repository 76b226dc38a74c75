"""Which client a request came from, when a reverse proxy stands in front.

Behind nginx or Caddy every socket comes from the proxy's address, so per-IP caps and
audit lines would all name the proxy. The proxy says who its client was in
`X-Forwarded-For`, but anyone can send that header: it is believed only from the
addresses the operator trusts (`--forwarded-allow-ips`, as uvicorn names it; trust
none by default). Each proxy appends the address it got the request from, so the list
is read from the right: the first address that is not itself a trusted proxy is the
client. What lies to its left was written by the client and is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

TRUST_ALL: Final = "*"


def parse_trusted(entries: Iterable[str]) -> tuple[str, ...]:
    """Check a list of IPs and CIDRs (or `*`); return it cleaned, or raise ValueError."""
    cleaned = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if entry != TRUST_ALL:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"not an IP address or network: {entry!r} (use 10.0.0.1, 10.0.0.0/8, ::1 or *)"
                ) from None
        cleaned.append(entry)
    return tuple(cleaned)


class TrustedProxies:
    """The proxies whose `X-Forwarded-For` is believed."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        entries = parse_trusted(entries)
        self.trust_all = TRUST_ALL in entries
        self._networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(e, strict=False) for e in entries if e != TRUST_ALL
        )

    def __bool__(self) -> bool:
        return self.trust_all or bool(self._networks)

    def trusts(self, ip: str) -> bool:
        if self.trust_all:
            return True
        if not self._networks:
            return False
        address = _address(ip)
        return address is not None and any(address in network for network in self._networks)

    def client_ip(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """The client's address: `peer` itself unless `peer` is a trusted proxy that said
        whom it forwards for.

        The header's values (one or more headers, each a comma-separated list) are read
        right to left, skipping trusted proxies; a value that is not an address stops
        the walk at the last hop that was one.
        """
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        client = peer
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break
            client = str(address)
            if not self.trusts(client):
                break
        return client


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address

"""Whether a host name stays on this machine, as a browser sees it.

Shared by the server's Host-header check and `tui-collab web`'s: both refuse pages that
reached them under a name rebound to loopback, so both must agree on which names are.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """`localhost` (and names under `.localhost`, which browsers keep on loopback),
    127.0.0.0/8 or ::1; brackets, case and a trailing dot as a Host header may have."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False

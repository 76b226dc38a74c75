"""Server settings: one frozen object built by the command line or by tests."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from server.forwarded import parse_trusted
from server.store.base import SESSION_RETENTION_S, SESSIONS_PER_USER
from tui_collab.protocol import MAX_CELL_CHARS, MAX_MESSAGE_BYTES

AuthMode = Literal["token", "open"]
Durability = Literal["normal", "full"]


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server process needs; timers are here so tests can shrink them."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 9001
    auth: AuthMode = "token"
    secret: str | None = None
    allowed_origins: tuple[str, ...] = ()
    certfile: Path | None = None
    keyfile: Path | None = None
    """TLS: with a certificate (and its key, unless the certfile holds both) serve wss://."""
    durability: Durability = "normal"
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_cell_chars: int = MAX_CELL_CHARS
    rate_per_s: int = 100
    burst: int = 200
    hello_timeout_s: float = 10.0
    ping_interval_s: float = 10.0
    ping_timeout_s: float = 10.0
    offline_grace_s: float = 10.0
    close_timeout_s: float = 2.0
    """How long a closing handshake may take before the TCP connection is dropped."""
    cursor_interval_s: float = 0.05
    max_connections_per_user: int = 8
    max_connections: int = 20_000
    """Every open socket, authenticated or not; over it upgrades get HTTP 503."""
    connects_per_user_s: float = 10.0
    """New connections one user may open a second (burst `connect_burst`); then 503."""
    connect_burst: int = 30
    max_unauthenticated_per_ip: int = 32
    """Sockets from one IP that upgraded without a bearer header and have not said hello."""
    max_upgrading_per_ip: int = 64
    """Sockets from one IP still in the HTTP phase (not yet upgraded or answered); more
    are dropped unread."""
    max_upgrading: int = 1_024
    """Sockets still in the HTTP phase, from everyone."""
    upgrade_timeout_s: float = 5.0
    """How long the HTTP phase (the TLS handshake, the request, its answer) may take."""
    forwarded_allow_ips: tuple[str, ...] = ()
    """Proxies (IPs, CIDRs, or `*`) whose X-Forwarded-For names the client for per-IP caps
    and audit lines; they are held to `max_upgrading` only, not the per-IP upgrade cap."""
    max_board_participants: int = 256
    max_boards_per_team: int = 1_000
    max_cells_per_board: int = 10_000
    """Non-empty cells; this also bounds a board snapshot (about 10.4 MiB at 256 four-byte
    characters a cell, sent in parts of 64 KiB)."""
    send_high_water_bytes: int = 256 * 1024
    """Unread bytes past which a peer stops getting cursor and typing frames."""
    send_hard_cap_bytes: int = 8 * 1024 * 1024
    slow_close_after_s: float = 5.0
    """Over the high-water mark this long closes the connection with 1013."""
    slow_close_grace_s: float = 10.0
    """How long a slow peer has to read its close frame before the socket is dropped."""
    flood_close_after_s: float = 5.0
    """Over the rate limit this long (without a 1 s pause) closes the connection with 4029."""
    malformed_close_after: int = 10
    """Bad frames in a row (within one connection) before it is closed with 1008."""
    node: str = field(default="")
    redis_url: str | None = None
    """Share state with other server processes through this Redis instead of SQLite."""
    node_ttl_s: float = 15.0
    """A node that stops refreshing its liveness key this long is taken for dead."""
    presence_heartbeat_s: float = 30.0
    """How often the users online here are written as alive, so that after a crash their
    last_seen is at most this old; 0 turns the heartbeat off."""
    session_retention_s: float = SESSION_RETENTION_S
    """How long the store keeps a session's record after it ended (an audit trail)."""
    sessions_per_user: int = SESSIONS_PER_USER
    """The most session records kept per user; the oldest go first."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "forwarded_allow_ips", parse_trusted(self.forwarded_allow_ips))
        if self.auth == "open" and not is_loopback(self.host):
            raise ValueError(
                f"--auth open is only allowed on a loopback host, not {self.host!r}: "
                "anyone who can reach the port could claim to be anyone"
            )
        if self.auth == "token" and not self.secret:
            raise ValueError("token auth needs a secret")
        if self.sessions_per_user < 1 or self.session_retention_s <= 0:
            raise ValueError("--sessions-per-user must be at least 1, --session-retention positive")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

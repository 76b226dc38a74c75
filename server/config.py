"""Server settings: one frozen object built by the command line or by tests."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from server.cell_news import WINDOWED_FROM
from server.forwarded import parse_trusted
from server.store.base import SESSION_RETENTION_S, SESSIONS_PER_USER
from tui_collab.defaults import DEFAULT_PORT
from tui_collab.envflags import ENV_PREFIX
from tui_collab.protocol import MAX_BATCH_OPS, MAX_CELL_CHARS, MAX_MESSAGE_BYTES, Limits

AuthMode = Literal["token", "open"]
Durability = Literal["normal", "full"]

_ANNOUNCED: Final = Limits()
"""The limits a welcome states when a server leaves them out: the server's defaults too."""

FLAG: Final = "flag"
"""The key of a field's `Flag` in its metadata."""


@dataclass(frozen=True)
class Flag:
    """How `tui-collab-server serve` sets a `ServerConfig` field: a flag and its variable.

    The flag's default is the field's; its type, or its choices for a `Literal`, follow
    from the field's type (server/cli.py names the few that do not). `{default}` in
    `help` is replaced by the default as the command line would write it.
    """

    name: str
    help: str | None
    env: str
    metavar: str | None = None


def flag(name: str, help: str | None = None, *, metavar: str | None = None) -> dict[str, Any]:
    """Field metadata making the field the flag `--name`, read also from TUI_COLLAB_NAME."""
    return {FLAG: Flag(name, help, ENV_PREFIX + name.upper().replace("-", "_"), metavar)}


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server process needs; timers are here so tests can shrink them."""

    data_dir: Path
    host: str = field(default="127.0.0.1", metadata=flag("host"))
    port: int = field(
        default=DEFAULT_PORT, metadata=flag("port", "0 picks a free port (default {default})")
    )
    auth: AuthMode = field(
        default="token",
        metadata=flag("auth", "open: no tokens, hello names the user (loopback hosts only)"),
    )
    secret: str | None = None
    allowed_origins: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            "allowed-origin",
            "allow browser pages from this origin (repeatable; the variable takes a "
            "comma-separated list)",
        ),
    )
    certfile: Path | None = field(
        default=None, metadata=flag("certfile", "TLS certificate (PEM): serve wss://")
    )
    keyfile: Path | None = field(
        default=None, metadata=flag("keyfile", "TLS private key (PEM), if not in the certfile")
    )
    """TLS: with a certificate (and its key, unless the certfile holds both) serve wss://."""
    durability: Durability = field(
        default="normal",
        metadata=flag(
            "durability", "normal: acked edits survive a process crash; full: also power loss"
        ),
    )
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_cell_chars: int = MAX_CELL_CHARS
    rate_per_s: int = field(
        default=_ANNOUNCED.rate_per_s,
        metadata=flag("rate", "messages a second per connection (default {default})"),
    )
    burst: int = field(
        default=_ANNOUNCED.burst,
        metadata=flag(
            "burst",
            "messages a connection may send at once before the rate applies (default {default})",
        ),
    )
    cell_ops_per_s: int = field(
        default=_ANNOUNCED.cell_ops_per_s,
        metadata=flag("cell-rate", "cells.set ops a second per connection (default {default})"),
    )
    """A batch is one message to `rate_per_s` but up to 1,000 writes: its ops are what a
    connection spends, so one user cannot buy 100,000 writes a second with 100 frames."""
    cell_ops_burst: int = field(
        default=_ANNOUNCED.cell_ops_burst,
        metadata=flag(
            "cell-burst",
            "cells.set ops a connection may send at once before --cell-rate applies "
            "(default {default})",
        ),
    )
    hello_timeout_s: float = field(default=10.0, metadata=flag("hello-timeout"))
    ping_interval_s: float = field(default=10.0, metadata=flag("ping-interval"))
    ping_timeout_s: float = field(default=10.0, metadata=flag("ping-timeout"))
    offline_grace_s: float = field(
        default=10.0,
        metadata=flag(
            "offline-grace", "seconds a lost connection's user stays online (default {default})"
        ),
    )
    close_timeout_s: float = 2.0
    """How long a closing handshake may take before the TCP connection is dropped."""
    drain_s: float = field(
        default=0.0,
        metadata=flag(
            "drain",
            "after SIGTERM, seconds to go on serving while /readyz answers 503, so a load "
            "balancer sends new clients elsewhere first; a second signal ends it (default "
            "{default})",
        ),
    )
    """After SIGTERM, how long `/readyz` says 503 while clients are still served."""
    cursor_interval_s: float = 0.05
    cell_window_from: int = WINDOWED_FROM
    """Connections on a board from which its cell events wait for the cursors' window
    (server/cell_news.py)."""
    max_connections_per_user: int = field(
        default=_ANNOUNCED.max_connections_per_user,
        metadata=flag(
            "max-connections-per-user", "connections one user may hold (default {default})"
        ),
    )
    max_connections: int = field(
        default=20_000,
        metadata=flag(
            "max-connections",
            "open sockets in all; over it upgrades get HTTP 503 (default {default})",
        ),
    )
    """Every open socket, authenticated or not; over it upgrades get HTTP 503."""
    connects_per_user_s: float = field(
        default=10.0,
        metadata=flag(
            "connect-rate",
            "new connections one user may open a second after the burst (default {default})",
        ),
    )
    """New connections one user may open a second (burst `connect_burst`); then 503."""
    connect_burst: int = field(
        default=30,
        metadata=flag(
            "connect-burst",
            "connections one user may open at once, then --connect-rate (default {default})",
        ),
    )
    max_unauthenticated_per_ip: int = field(
        default=32,
        metadata=flag(
            "max-unauthenticated-per-ip",
            "sockets per IP that have not authenticated yet (default {default})",
        ),
    )
    """Sockets from one IP that upgraded without a bearer header and have not said hello."""
    max_upgrading_per_ip: int = field(
        default=64,
        metadata=flag(
            "max-upgrading-per-ip",
            "sockets per IP still sending their HTTP request (default {default})",
        ),
    )
    """Sockets from one IP still in the HTTP phase (not yet upgraded or answered); more
    are dropped unread."""
    max_upgrading: int = field(
        default=1_024,
        metadata=flag(
            "max-upgrading", "sockets still sending their HTTP request, in all (default {default})"
        ),
    )
    """Sockets still in the HTTP phase, from everyone."""
    upgrade_timeout_s: float = field(
        default=5.0,
        metadata=flag(
            "upgrade-timeout",
            "seconds a new socket has to send its HTTP request (and finish TLS) before it is "
            "dropped (default {default})",
        ),
    )
    """How long the HTTP phase (the TLS handshake, the request, its answer) may take."""
    forwarded_allow_ips: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            "forwarded-allow-ips",
            "comma-separated IPs or networks (10.0.0.0/8) of reverse proxies whose "
            "X-Forwarded-For names the client for per-IP caps and audit lines; * trusts any "
            "(default: none)",
            metavar="IPS",
        ),
    )
    """Proxies (IPs, CIDRs, or `*`) whose X-Forwarded-For names the client for per-IP caps
    and audit lines; they are held to `max_upgrading` only, not the per-IP upgrade cap."""
    max_board_participants: int = field(
        default=_ANNOUNCED.max_board_participants,
        metadata=flag("max-board-participants", "users on one board at once (default {default})"),
    )
    max_boards_per_team: int = field(
        default=_ANNOUNCED.max_boards_per_team,
        metadata=flag("max-boards-per-team", "boards one team may create (default {default})"),
    )
    max_cells_per_board: int = field(
        default=_ANNOUNCED.max_cells_per_board,
        metadata=flag("max-cells-per-board", "non-empty cells on one board (default {default})"),
    )
    """Non-empty cells; this also bounds a board snapshot (about 10.4 MiB at 256 four-byte
    characters a cell, sent in parts of 64 KiB)."""
    notes_max_bytes: int = field(
        default=_ANNOUNCED.notes_max_bytes,
        metadata=flag(
            "notes-max-bytes", "a board's notes text, in UTF-8 bytes (default {default})"
        ),
    )
    notes_update_max_bytes: int = field(
        default=_ANNOUNCED.notes_update_max_bytes,
        metadata=flag("notes-update-max-bytes", "one decoded notes.update (default {default})"),
    )
    send_high_water_bytes: int = field(
        default=256 * 1024,
        metadata=flag(
            "send-high-water", "unread bytes past which cursors are skipped (default {default})"
        ),
    )
    """Unread bytes past which a peer stops getting cursor and typing frames."""
    send_hard_cap_bytes: int = 8 * 1024 * 1024
    slow_close_after_s: float = field(
        default=5.0,
        metadata=flag(
            "slow-close-after",
            "seconds over the high-water mark before a connection is closed 1013 (default "
            "{default})",
        ),
    )
    """Over the high-water mark this long closes the connection with 1013."""
    slow_close_grace_s: float = 10.0
    """How long a slow peer has to read its close frame before the socket is dropped."""
    flood_close_after_s: float = 5.0
    """Over the rate limit this long (without a 1 s pause) closes the connection with 4029."""
    malformed_close_after: int = 10
    """Bad frames in a row (within one connection) before it is closed with 1008."""
    node: str = field(default="")
    redis_url: str | None = field(
        default=None,
        metadata=flag(
            "redis",
            "share presence, boards and fan-out with other server processes through this Redis "
            "(redis://host:6379/0) instead of the SQLite file",
            metavar="URL",
        ),
    )
    """Share state with other server processes through this Redis instead of SQLite."""
    node_ttl_s: float = field(
        default=15.0,
        metadata=flag(
            "node-ttl",
            "with --redis: seconds after which a silent node's users go offline (default "
            "{default})",
        ),
    )
    """A node that stops refreshing its liveness key this long is taken for dead."""
    presence_heartbeat_s: float = field(
        default=30.0,
        metadata=flag(
            "presence-heartbeat",
            "seconds between writes of when online users were last alive, so a crash shows a true "
            "last_seen (default {default}; 0 turns it off)",
        ),
    )
    """How often the users online here are written as alive, so that after a crash their
    last_seen is at most this old; 0 turns the heartbeat off."""
    session_retention_s: float = field(
        default=SESSION_RETENTION_S,
        metadata=flag(
            "session-retention",
            "how long a connection's record is kept after it ended: 90s, 15m, 2h, 7d, 1w (default "
            "{default})",
        ),
    )
    """How long the store keeps a session's record after it ended (an audit trail)."""
    sessions_per_user: int = field(
        default=SESSIONS_PER_USER,
        metadata=flag(
            "sessions-per-user",
            "connection records kept per user, the oldest go first (default {default})",
        ),
    )
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
        if self.cell_ops_per_s < 1 or self.cell_ops_burst < MAX_BATCH_OPS:
            raise ValueError(
                f"--cell-rate must be at least 1 and --cell-burst at least {MAX_BATCH_OPS} "
                "(one whole batch)"
            )
        if self.drain_s < 0:
            raise ValueError(f"--drain must be 0 or more seconds, not {self.drain_s:g}")
        if self.sessions_per_user < 1 or self.session_retention_s <= 0:
            raise ValueError("--sessions-per-user must be at least 1, --session-retention positive")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""`tui-collab-server`: serve, mint tokens, print the protocol schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from platformdirs import user_data_dir
from pydantic import ValidationError

from server import __version__
from server.auth import load_secret, mint_token, parse_ttl
from server.config import ServerConfig
from server.forwarded import parse_trusted
from server.logs import HeldLogs
from server.logs import configure as configure_logging
from server.startup import StartupError
from server.store.base import SESSION_RETENTION_S, SESSIONS_PER_USER
from tui_collab.envflags import EnvValueError, env_flag, port, resolve_env

logger = logging.getLogger("server")

PROG: Final = "tui-collab-server"


def default_data_dir() -> Path:
    return Path(user_data_dir("tui-collab", appauthor=False))


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    env: Mapping[str, str] = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Team presence and shared grids over WebSocket. Every flag of serve "
        "(and --data-dir) also reads an environment variable: --port reads "
        "TUI_COLLAB_PORT, --data-dir TUI_COLLAB_DATA_DIR, and so on.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")

    def flag(name: str, **kwargs: Any) -> None:
        env_flag(serve, name, environ=env, **kwargs)

    flag("host", default="127.0.0.1")
    flag("port", type=port, default=9001, help="0 picks a free port (default 9001)")
    _data_dir_flag(serve, env)
    flag(
        "auth",
        choices=("token", "open"),
        default="token",
        help="open: no tokens, hello names the user (loopback hosts only)",
    )
    flag(
        "allowed-origin",
        action="append",
        default=[],
        help="allow browser pages from this origin (repeatable; the variable takes a "
        "comma-separated list)",
    )
    flag(
        "durability",
        choices=("normal", "full"),
        default="normal",
        help="normal: acked edits survive a process crash; full: also power loss",
    )
    flag("ping-interval", type=float, default=10.0)
    flag("ping-timeout", type=float, default=10.0)
    flag(
        "offline-grace",
        type=float,
        default=10.0,
        help="seconds a lost connection's user stays online (default 10)",
    )
    flag(
        "presence-heartbeat",
        type=float,
        default=30.0,
        help="seconds between writes of when online users were last alive, so a crash "
        "shows a true last_seen (default 30; 0 turns it off)",
    )
    flag(
        "session-retention",
        type=_duration,
        default=SESSION_RETENTION_S,
        help="how long a connection's record is kept after it ended: 90s, 15m, 2h, 7d, 1w "
        "(default 7d)",
    )
    flag(
        "sessions-per-user",
        type=int,
        default=SESSIONS_PER_USER,
        help=f"connection records kept per user, the oldest go first (default {SESSIONS_PER_USER})",
    )
    flag("hello-timeout", type=float, default=10.0)
    flag(
        "forwarded-allow-ips",
        type=_trusted_proxies,
        default=(),
        metavar="IPS",
        help="comma-separated IPs or networks (10.0.0.0/8) of reverse proxies whose "
        "X-Forwarded-For names the client for per-IP caps and audit lines; * trusts any "
        "(default: none)",
    )
    flag(
        "upgrade-timeout",
        type=float,
        default=5.0,
        help="seconds a new socket has to send its HTTP request (and finish TLS) before it "
        "is dropped (default 5)",
    )
    flag("certfile", type=Path, help="TLS certificate (PEM): serve wss://")
    flag("keyfile", type=Path, help="TLS private key (PEM), if not in the certfile")
    flag(
        "loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop; uvloop needs `pip install uvloop` (see docs/benchmarks.md)",
    )
    flag("rate", type=int, default=100, help="messages a second per connection (default 100)")
    flag(
        "burst",
        type=int,
        default=200,
        help="messages a connection may send at once before the rate applies (default 200)",
    )
    flag(
        "max-board-participants",
        type=int,
        default=256,
        help="users on one board at once (default 256)",
    )
    for name, default, text in (
        ("max-connections", 20_000, "open sockets in all; over it upgrades get HTTP 503"),
        ("max-connections-per-user", 8, "connections one user may hold"),
        ("connect-burst", 30, "connections one user may open at once, then --connect-rate"),
        ("max-unauthenticated-per-ip", 32, "sockets per IP that have not authenticated yet"),
        ("max-upgrading-per-ip", 64, "sockets per IP still sending their HTTP request"),
        ("max-upgrading", 1_024, "sockets still sending their HTTP request, in all"),
        ("max-boards-per-team", 1_000, "boards one team may create"),
        ("max-cells-per-board", 10_000, "non-empty cells on one board"),
        ("send-high-water", 256 * 1024, "unread bytes past which cursors are skipped"),
    ):
        flag(name, type=int, default=default, help=f"{text} (default {default})")
    flag(
        "redis",
        metavar="URL",
        help="share presence, boards and fan-out with other server processes through this "
        "Redis (redis://host:6379/0) instead of the SQLite file",
    )
    flag(
        "node-ttl",
        type=float,
        default=15.0,
        help="with --redis: seconds after which a silent node's users go offline (default 15)",
    )
    flag(
        "connect-rate",
        type=float,
        default=10.0,
        help="new connections one user may open a second after the burst (default 10)",
    )
    flag(
        "slow-close-after",
        type=float,
        default=5.0,
        help="seconds over the high-water mark before a connection is closed 1013 (default 5)",
    )
    flag("log-level", default="info", choices=("debug", "info", "warning", "error"))
    _debug_flag(serve, env)

    token = commands.add_parser("token", help="print a signed token for a user")
    token.add_argument("--user", required=True)
    token.add_argument("--team", required=True)
    token.add_argument("--name")
    token.add_argument("--ttl", default="7d", help="lifetime: 90s, 15m, 2h, 7d (default 7d)")
    _data_dir_flag(token, env)
    _debug_flag(token, env)

    commands.add_parser("schema", help="print the JSON Schema of every message")
    return parser


def _duration(text: str) -> int:
    """`90s`, `15m`, `2h`, `7d` or `1w`, in seconds (for flags and their variables)."""
    try:
        return parse_ttl(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a number and one of s, m, h, d, w (e.g. 7d)"
        ) from None


def _trusted_proxies(text: str) -> tuple[str, ...]:
    try:
        return parse_trusted(text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _data_dir_flag(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    env_flag(
        parser,
        "data-dir",
        environ=environ,
        type=Path,
        default=default_data_dir(),
        help="where the database and the signing secret live",
    )


def _debug_flag(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    env_flag(
        parser,
        "debug",
        environ=environ,
        action="store_true",
        help="when it cannot start, also print the traceback and the log lines before it",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        resolve_env(args)
    except EnvValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if args.command == "schema":
        from tui_collab.protocol import json_schema

        json.dump(json_schema(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if args.command == "token":
        return token(args)
    return serve(args)


def token(args: argparse.Namespace) -> int:
    prog = f"{PROG} token"
    try:
        ttl = parse_ttl(args.ttl)
        secret = load_secret(args.data_dir)
        print(mint_token(secret, args.user, args.team, args.name, ttl))
    except StartupError as exc:
        return cannot_start(prog, exc, args.debug)
    except ValidationError as exc:
        error = exc.errors()[0]
        print(f"{prog}: invalid value {error['input']!r}: {error['msg']}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0


def serve(args: argparse.Namespace) -> int:
    held = HeldLogs(configure_logging(args.log_level))
    try:
        config = _config(args)
    except StartupError as exc:
        return cannot_start(PROG, exc, args.debug, held)
    except ValueError as exc:
        held.drop()
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        run_loop(_serve(config, held), args.loop)
    except StartupError as exc:
        return cannot_start(PROG, exc, args.debug, held)
    return 0


def cannot_start(prog: str, exc: StartupError, debug: bool, held: HeldLogs | None = None) -> int:
    """Print why in one line (after the traceback and the held logs with --debug); exit 1."""
    if held is not None:
        if debug:
            held.release()
        else:
            held.drop()
    if debug:
        traceback.print_exception(exc)
    print(f"{prog}: {exc}", file=sys.stderr)
    return 1


def _config(args: argparse.Namespace) -> ServerConfig:
    secret = load_secret(args.data_dir) if args.auth == "token" else None
    return ServerConfig(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        auth=args.auth,
        secret=secret,
        allowed_origins=tuple(args.allowed_origin),
        durability=args.durability,
        ping_interval_s=args.ping_interval,
        ping_timeout_s=args.ping_timeout,
        offline_grace_s=args.offline_grace,
        presence_heartbeat_s=args.presence_heartbeat,
        session_retention_s=args.session_retention,
        sessions_per_user=args.sessions_per_user,
        hello_timeout_s=args.hello_timeout,
        max_board_participants=args.max_board_participants,
        max_connections=args.max_connections,
        max_connections_per_user=args.max_connections_per_user,
        connects_per_user_s=args.connect_rate,
        redis_url=args.redis,
        node_ttl_s=args.node_ttl,
        connect_burst=args.connect_burst,
        max_unauthenticated_per_ip=args.max_unauthenticated_per_ip,
        max_upgrading_per_ip=args.max_upgrading_per_ip,
        max_upgrading=args.max_upgrading,
        upgrade_timeout_s=args.upgrade_timeout,
        forwarded_allow_ips=args.forwarded_allow_ips,
        max_boards_per_team=args.max_boards_per_team,
        max_cells_per_board=args.max_cells_per_board,
        send_high_water_bytes=args.send_high_water,
        slow_close_after_s=args.slow_close_after,
        rate_per_s=args.rate,
        certfile=args.certfile,
        keyfile=args.keyfile,
        burst=args.burst,
    )


def run_loop(main: Coroutine[Any, Any, None], loop: str) -> None:
    if loop == "uvloop":
        try:
            import uvloop  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise SystemExit(
                "tui-collab-server: --loop uvloop needs `pip install uvloop`"
            ) from None
        uvloop.run(main)
    else:
        asyncio.run(main)


async def _serve(config: ServerConfig, held: HeldLogs) -> None:
    # Imported here: it is most of the start-up time, which `token` and a bad flag or
    # variable need not wait for.
    from server.app import CollabServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = CollabServer(config)
    try:
        await server.start()
    except StartupError:
        raise
    except OSError as exc:  # no check foresaw it; still one line (--debug shows where)
        raise StartupError(f"cannot start: {exc}") from exc
    held.release()
    try:
        # Scripts wait for this exact line; it is printed once connections are accepted.
        print(f"listening on {server.url}", flush=True)
        await stop.wait()
        logger.info("shutting down")
    finally:
        await server.stop()
    with contextlib.suppress(Exception):
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

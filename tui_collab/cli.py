"""`tui-collab`: the terminal app, and `tui-collab who` for shell prompts and status lines.

With no `--server`, the app starts a server inside its own process (loopback only, open
auth, data in the user's data dir) so one command is enough to see it work; teammates
on the same machine join it with `--server`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

from tui_collab import __version__

ENV_PREFIX = "TUI_COLLAB_"
DEFAULT_PORT = 9001


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name, default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-collab",
        description="Team presence and a shared grid in the terminal. With no --server, "
        "starts a local server in this process that teammates on this machine can join.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _connection_flags(parser)
    parser.add_argument(
        "--board",
        default=_env("BOARD", "main"),
        help="board to open (created if the team has none by that id)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="add four simulated teammates (local or open-mode servers)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(_env("PORT", str(DEFAULT_PORT)) or 0),
        help="port of the local server (default 9001; 0 picks a free one)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(_env("DATA_DIR") or user_data_dir("tui-collab", appauthor=False)),
    )
    commands = parser.add_subparsers(dest="command")
    who = commands.add_parser("who", help="print the team's presence as a table")
    _connection_flags(who)
    who.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=_env("SERVER"),
        help="ws:// or wss:// URL of a server, e.g. ws://host:9001/ws",
    )
    parser.add_argument(
        "--token",
        default=_env("TOKEN"),
        help="token from `tui-collab-server token` (or TUI_COLLAB_TOKEN)",
    )
    parser.add_argument("--user", default=_env("USER_ID"), help="user id (open-mode servers)")
    parser.add_argument("--team", default=_env("TEAM"), help="team (open-mode servers)")
    parser.add_argument("--name", default=_env("NAME"), help="display name (open-mode servers)")
    parser.add_argument(
        "--cafile",
        type=Path,
        default=_env("CAFILE"),
        help="CA certificate (PEM) to trust for wss:// (default: the system's)",
    )


def default_user() -> str:
    """The login name, made into a valid user id."""
    with contextlib.suppress(Exception):
        login = re.sub(r"[^A-Za-z0-9._@-]+", "-", getpass.getuser()).strip("-._@")
        if login:
            return login[:64]
    return "me"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "who":
        return who(args)
    try:
        asyncio.run(run_app(args))
    except OSError as exc:
        print(f"tui-collab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


async def run_app(args: argparse.Namespace) -> None:
    from server.app import CollabServer
    from server.config import ServerConfig
    from tui_collab.app import CollabApp
    from tui_collab.client import CollabClient

    args.data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=args.data_dir / "tui-collab.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    server: CollabServer | None = None
    url = args.server
    if url is None:
        server = await _start_local_server(CollabServer, ServerConfig, args)
        url = server.url
    user = args.user or default_user()
    team = args.team or "local"
    tls = tls_context(args.cafile)
    if args.token:
        client = CollabClient(url, token=args.token, ssl_context=tls)
    else:
        client = CollabClient(url, user=user, team=team, name=args.name, ssl_context=tls)
    where = f"{url}" if server is None else f"local server {url}"
    app = CollabApp(client, board=args.board, where=where)
    demo: asyncio.Task[None] | None = None
    if args.demo:
        from tui_collab.demo import run_demo

        demo = asyncio.create_task(run_demo(url, team, args.board))
    try:
        await app.run_async()
    finally:
        if demo is not None:
            demo.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await demo
        if server is not None:
            await server.stop()


async def _start_local_server(server_cls: Any, config_cls: Any, args: argparse.Namespace) -> Any:
    """The embedded server: the default port if it is free, any free port otherwise."""
    for port in (args.port, 0) if args.port else (0,):
        config = config_cls(data_dir=args.data_dir, host="127.0.0.1", port=port, auth="open")
        server = server_cls(config)
        try:
            await server.start()
        except OSError:
            await server.store.close()
            continue
        return server
    raise OSError("could not start a local server")


def tls_context(cafile: Path | None) -> ssl.SSLContext | None:
    """Trust `cafile` for wss:// (a team's own CA); None keeps the system's trust store."""
    return None if cafile is None else ssl.create_default_context(cafile=str(cafile))


def who(args: argparse.Namespace) -> int:
    url = args.server or f"ws://127.0.0.1:{DEFAULT_PORT}/ws"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        print(f"tui-collab who: {url} is not a ws:// or wss:// URL", file=sys.stderr)
        return 2
    scheme = "https" if parts.scheme == "wss" else "http"
    query = "" if args.token else f"?team={urllib.parse.quote(args.team or 'local')}"
    request = urllib.request.Request(f"{scheme}://{parts.netloc}/api/presence{query}")  # noqa: S310
    if args.token:
        request.add_header("Authorization", f"Bearer {args.token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=tls_context(args.cafile)) as reply:  # noqa: S310 (http/https only)
            payload = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        print(f"tui-collab who: the server said {exc.code} {exc.reason}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"tui-collab who: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    print(format_who(payload["members"]))
    return 0


def format_who(members: list[dict[str, Any]]) -> str:
    """A plain table, most available first; safe to print (values carry no control chars)."""
    from tui_collab.protocol import Presence
    from tui_collab.widgets.presence import sort_members

    rows = [("STATUS", "NAME", "USER", "ACTIVITY", "LAST SEEN")]
    for member in sort_members(Presence.model_validate(m, strict=False) for m in members):
        activity = ""
        if member.activity is not None:
            activity = member.activity.kind.replace("_", " ")
            if member.activity.board:
                activity += f" {member.activity.board}"
            if member.activity.detail:
                activity += f": {member.activity.detail}"
        seen = member.last_seen.strftime("%Y-%m-%d %H:%M UTC") if member.last_seen else ""
        rows.append(
            (
                member.status,
                member.name,
                member.user,
                activity,
                "" if member.status != "offline" else seen,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


if __name__ == "__main__":
    sys.exit(main())

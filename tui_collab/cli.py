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
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_collab import __version__
from tui_collab.defaults import DEFAULT_PORT, default_data_dir
from tui_collab.envflags import EnvValueError, env_flag, port, resolve_env

if TYPE_CHECKING:
    from tui_collab.client import TokenProvider
    from tui_collab.events import Closed


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    env: Mapping[str, str] = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="tui-collab",
        description="Team presence and a shared grid in the terminal. With no --server, "
        "starts a local server in this process that teammates on this machine can join. "
        "Every flag also reads a TUI_COLLAB_* environment variable, shown in [env …].",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _connection_flags(parser, env)
    env_flag(
        parser,
        "board",
        environ=env,
        default="main",
        help="board to open (created if the team has none by that id)",
    )
    env_flag(
        parser,
        "demo",
        environ=env,
        action="store_true",
        help="add four simulated teammates (local or open-mode servers)",
    )
    env_flag(
        parser,
        "port",
        environ=env,
        type=port,
        default=DEFAULT_PORT,
        help=f"port of the local server (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    env_flag(
        parser,
        "data-dir",
        environ=env,
        type=Path,
        default=default_data_dir(),
        help="where the outbox, the log and the local server's data live",
    )
    env_flag(
        parser,
        "debug",
        environ=env,
        action="store_true",
        help="log in detail to the data dir's tui-collab.log; show tracebacks of start-up errors",
    )
    commands = parser.add_subparsers(dest="command")
    who = commands.add_parser("who", help="print the team's presence as a table")
    _connection_flags(who, env)
    who.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _connection_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    env_flag(
        parser,
        "server",
        environ=env,
        help="ws:// or wss:// URL of a server, e.g. ws://host:9001/ws",
    )
    tokens = parser.add_mutually_exclusive_group()
    env_flag(tokens, "token", environ=env, help="token from `tui-collab-server token`")
    env_flag(
        tokens,
        "token-command",
        environ=env,
        metavar="CMD",
        help="shell command that prints a fresh token; run at start, before the token "
        "expires and after a refusal (like git's credential helpers)",
    )
    env_flag(
        tokens,
        "token-file",
        environ=env,
        metavar="PATH",
        type=Path,
        help="file holding the token; reread whenever a fresh one is needed",
    )
    env_flag(parser, "user", environ=env, variable="USER_ID", help="user id (open-mode servers)")
    env_flag(parser, "team", environ=env, help="team (open-mode servers)")
    env_flag(parser, "name", environ=env, help="display name (open-mode servers)")
    env_flag(
        parser,
        "cafile",
        environ=env,
        type=Path,
        help="CA certificate (PEM) to trust for wss://, besides the system's",
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
    try:
        resolve_env(args)
    except EnvValueError as exc:
        print(f"tui-collab: {exc}", file=sys.stderr)
        return 2
    if args.command == "who":
        return who(args)
    try:
        return asyncio.run(run_app(args))
    except StartupFailure as exc:
        if args.debug:
            traceback.print_exception(exc.__cause__ or exc)
        print(f"tui-collab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


class StartupFailure(Exception):
    """The app cannot start; the message is the one line the person sees."""


async def run_app(args: argparse.Namespace) -> int:
    from server.startup import warn_if_wide
    from tui_collab.app import CollabApp
    from tui_collab.client import CollabClient
    from tui_collab.outbox import Outbox, OutboxError
    from tui_collab.private_files import create_private_file
    from tui_collab.tokens import token_identity

    data_dir = prepare_data_dir(args.data_dir)
    log_file = data_dir / "tui-collab.log"
    with contextlib.suppress(OSError):  # basicConfig says why it cannot open it
        create_private_file(log_file)
    logging.basicConfig(
        filename=log_file,
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    warn_if_wide(data_dir)  # into the log, not over the screen
    tls = tls_context(args.cafile)
    provider = token_provider(args)
    token = args.token
    if provider is not None:
        token = await first_token(provider)
    server = None
    url = args.server
    if url is None:
        server = await _start_local_server(args)
        url = server.url
    user, team = args.user or default_user(), args.team or "local"
    if token is not None:
        user, team = token_identity(token) or (user, team)
    try:
        outbox = Outbox.in_dir(data_dir, url, team, user)
    except OutboxError as exc:
        raise StartupFailure(f"{exc}: check the data dir (--data-dir)") from exc
    if token is not None:
        client = CollabClient(
            url, token=token, token_provider=provider, ssl_context=tls, outbox=outbox
        )
    else:
        client = CollabClient(
            url, user=user, team=team, name=args.name, ssl_context=tls, outbox=outbox
        )
    where = f"{url}" if server is None else f"local server {url}"
    app = CollabApp(client, board=args.board, where=where)
    demo: asyncio.Task[None] | None = None
    try:
        await first_contact(client)
        if args.demo:
            from tui_collab.demo import run_demo

            demo = asyncio.create_task(run_demo(url, team, args.board))
        await app.run_async()
    finally:
        if demo is not None:
            demo.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await demo
        if server is not None:
            await server.stop()
        outbox.close()
    return exit_report(client, app.return_code, app_said=bool(app.exit_message))


FIRST_CONTACT_S = 5.0
"""How long the first connection attempt may take before the screen opens anyway."""


async def first_contact(client: Any) -> None:
    """Start connecting before the screen opens, so a failure retrying cannot fix (a
    refused token, a certificate that does not verify) is one line, not a screen."""
    from tui_collab.events import Closed, Connecting, StateChanged

    settled = asyncio.Event()
    unsubscribe = client.on(
        StateChanged,
        lambda event: settled.set() if not isinstance(event.state, Connecting) else None,
    )
    try:
        client.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_CONTACT_S):
                await settled.wait()
    finally:
        unsubscribe()
    if isinstance(client.state, Closed):
        await client.close()
        raise StartupFailure(final_words(client.state))


def final_words(state: Closed) -> str:
    """One line on why the client gave up, and what to do about it."""
    from tui_collab.retry import FinalReason

    line = state.detail or state.reason.replace("_", " ")
    if state.reason == FinalReason.UNAUTHORIZED:
        line += (
            ": ask the server's admin for a new token (tui-collab-server token --user USER "
            "--team TEAM), or pass --token-command to renew it by itself"
        )
    return line


def exit_report(client: Any, return_code: int | None, *, app_said: bool = False) -> int:
    """What the person should know once the screen is gone, and the exit status.

    `app_said`: the app printed its own closing words (the quit prompt's outcome).
    """
    from tui_collab.events import Closed
    from tui_collab.retry import FinalReason

    state = client.state
    if isinstance(state, Closed) and state.reason not in (FinalReason.CLOSED, ""):
        print(f"tui-collab: {final_words(state)}", file=sys.stderr)
        return return_code or 1
    if client.unsaved_count and not app_said:
        print(
            f"tui-collab: {client.unsaved_count} unsaved edits kept; they are sent the next "
            "time tui-collab connects to this server as this user",
            file=sys.stderr,
        )
    return return_code or 0


def prepare_data_dir(path: Path) -> Path:
    from server.startup import StartupError, check_data_dir

    try:
        return check_data_dir(path, warn=False)
    except StartupError as exc:
        raise StartupFailure(str(exc)) from exc


def token_provider(args: argparse.Namespace) -> TokenProvider | None:
    """A command beats a file beats a fixed token (flags and variables alike)."""
    from tui_collab.token_source import command_provider, file_provider

    if args.token_command:
        return command_provider(args.token_command)
    if args.token_file is not None:
        return file_provider(args.token_file)
    return None


async def first_token(provider: TokenProvider) -> str:
    """Fetch a token before the screen opens: a broken helper is one clear line."""
    from tui_collab.token_source import TokenSourceError

    try:
        return await provider()
    except TokenSourceError as exc:
        raise StartupFailure(str(exc)) from exc


async def _start_local_server(args: argparse.Namespace) -> Any:
    """The embedded server: the default port if it is free, any free port otherwise."""
    from server.app import CollabServer
    from server.config import ServerConfig
    from server.startup import ListenError, StartupError

    for candidate in (args.port, 0) if args.port else (0,):
        config = ServerConfig(data_dir=args.data_dir, host="127.0.0.1", port=candidate, auth="open")
        server = CollabServer(config)
        try:
            await server.start()
        except ListenError:
            continue  # the default port is taken: any free one will do
        except StartupError as exc:
            raise StartupFailure(f"cannot start the local server: {exc}") from exc
        return server
    raise StartupFailure("cannot start the local server: no free port on 127.0.0.1")


def tls_context(cafile: Path | None) -> ssl.SSLContext | None:
    """The system's trust store plus `cafile` (a team's own CA); None: the system's only."""
    if cafile is None:
        return None
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(cafile))
    except FileNotFoundError as exc:
        raise StartupFailure(f"CA file {cafile} does not exist: check --cafile") from exc
    except (OSError, ssl.SSLError) as exc:
        raise StartupFailure(
            f"cannot use CA file {cafile} ({exc}): --cafile takes a PEM certificate"
        ) from exc
    return context


def who(args: argparse.Namespace) -> int:
    from tui_collab.retry import FinalReason, final_detail, tls_failure

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
        context = tls_context(args.cafile)
        with urllib.request.urlopen(request, timeout=5, context=context) as reply:  # noqa: S310 (http/https only)
            payload = json.loads(reply.read())
    except StartupFailure as exc:
        print(f"tui-collab who: {exc}", file=sys.stderr)
        return 2
    except urllib.error.HTTPError as exc:
        print(f"tui-collab who: the server said {exc.code} {exc.reason}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            line = final_detail(FinalReason.TLS, url, tls_failure(parts.netloc, reason))
            print(f"tui-collab who: {line}", file=sys.stderr)
        else:
            print(f"tui-collab who: cannot reach {url}: {reason}", file=sys.stderr)
        return 1
    except OSError as exc:
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

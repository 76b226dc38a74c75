"""`tui-collab`: the terminal app; `tui-collab who` for shell prompts and status lines;
`tui-collab export` and `import` to move a board's cells to and from CSV, TSV or JSON.

With no `--server`, the app starts a server inside its own process (loopback only, open
auth, data in the user's data dir) so one command is enough to see it work; teammates
on the same machine join it with `--server`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_collab import __version__
from tui_collab.config import ConfigError, default_config_path, describe, settle, theme_name
from tui_collab.defaults import DEFAULT_PORT, default_data_dir
from tui_collab.demo_dir import throwaway_data_dir
from tui_collab.envflags import EnvValueError, env_flag, port
from tui_collab.web_cli import add_web_command, run_web

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
    env_flag(
        parser,
        "theme",
        environ=env,
        type=theme_name,
        help="colour theme (one picked in the command palette is saved in the config file)",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser(
        "config",
        help="print the effective settings and where each came from",
        description="Print what `tui-collab [FLAGS]` would use, and where each value "
        "came from: a flag, an environment variable, the config file or the default.",
    )
    who = commands.add_parser("who", help="print the team's presence as a table")
    _connection_flags(who, env)
    who.add_argument("--json", action="store_true", help="print JSON instead of a table")
    export = commands.add_parser(
        "export",
        help="write a board's cells as CSV, TSV or JSON",
        description="Write a board's cells: CSV/TSV as the rectangle from A1 to the last "
        "row and column holding a value; JSON with every non-empty cell, its writer and time.",
    )
    _connection_flags(export, env)
    export.add_argument("board", help="board id")
    export.add_argument(
        "--format", choices=TRANSFER_FORMATS, help="default: from -o's extension, else csv"
    )
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    imports = commands.add_parser(
        "import",
        help="write a CSV, TSV or JSON file's cells into a board",
        description="Write a file's cells into a board, the file's first cell at --at. "
        "The whole file is checked first: a value the server would refuse, or a cell "
        "outside the board, refuses the import before anything is written.",
    )
    _connection_flags(imports, env)
    imports.add_argument("board", help="board id")
    imports.add_argument("file", help="file to read ('-': standard input)")
    imports.add_argument(
        "--format", choices=TRANSFER_FORMATS, help="default: from the file's extension, else csv"
    )
    imports.add_argument(
        "--at", default="A1", metavar="CELL", help="where the file's first cell lands (default A1)"
    )
    imports.add_argument(
        "--clear-empty",
        action="store_true",
        help="CSV/TSV: an empty field clears its cell (by default it is skipped)",
    )
    imports.add_argument(
        "--create",
        action="store_true",
        help="create the board if the team has none by that id (big enough for the file)",
    )
    add_web_command(commands)
    return parser


TRANSFER_FORMATS = ("csv", "tsv", "json")


def _connection_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    env_flag(
        parser,
        "config",
        environ=env,
        metavar="PATH",
        type=Path,
        help=f"config file (default {default_config_path()})",
    )
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
    try:
        settings = settle(build_parser, argv, os.environ)
    except (ConfigError, EnvValueError) as exc:
        print(f"tui-collab: {exc}", file=sys.stderr)
        return 2
    args = settings.args
    if args.command == "config":
        print(describe(settings))
        return 0
    if args.command == "who":
        return who(args)
    if args.command in ("export", "import"):
        return transfer(args)
    if args.command == "web":
        return run_web(args)
    try:
        with contextlib.ExitStack() as cleanup:
            intro = []
            if args.demo and settings.sources["data_dir"].layer in ("default", "file"):
                args.data_dir = cleanup.enter_context(throwaway_data_dir())
                intro.append(f"demo data in {args.data_dir} (removed on exit)")
                print(f"tui-collab: {intro[0]}", file=sys.stderr)  # seen once the app is gone
            return asyncio.run(run_app(args, config_path=settings.config.path, intro=intro))
    except StartupFailure as exc:
        if args.debug:
            traceback.print_exception(exc.__cause__ or exc)
        print(f"tui-collab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


class StartupFailure(Exception):
    """The app cannot start; the message is the one line the person sees."""


async def run_app(
    args: argparse.Namespace, *, config_path: Path | None = None, intro: Sequence[str] = ()
) -> int:
    """`config_path`: where a theme picked in the palette is saved; `intro`: the feed's
    first lines."""
    _check_server_package()  # before the first import of `server`
    from server.startup import warn_if_wide
    from tui_collab.app import CollabApp
    from tui_collab.client import CollabClient
    from tui_collab.config_theme import save_theme
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
    saver = None if config_path is None else functools.partial(save_theme, config_path)
    app = CollabApp(client, board=args.board, where=where, intro=intro, save_theme=saver)
    if args.theme is not None:
        app.theme = args.theme
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


def _check_server_package() -> None:
    """Refuse, naming the path, a `server` package that is not ours and comes first."""
    from tui_collab.server_package import ServerPackageError, check_server_package

    try:
        check_server_package()
    except ServerPackageError as exc:
        raise StartupFailure(str(exc)) from exc


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
    from tui_collab.server_package import ServerPackageError, check_server_extras

    try:
        check_server_extras("without --server, tui-collab starts a local server, which")
    except ServerPackageError as exc:
        raise StartupFailure(f"{exc}; or pass --server URL") from exc
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


CONNECT_S = 15.0
"""How long `export` and `import` try to reach the server before giving up."""


def transfer(args: argparse.Namespace) -> int:
    """`export` or `import`: one line on stderr and a non-zero status for any failure."""
    from tui_collab.transfer import TransferError

    try:
        with _quiet_client_logs():
            if args.command == "import":
                return asyncio.run(import_board(args))
            text = asyncio.run(export_board(args))
        if args.output is None or args.output == "-":
            sys.stdout.write(text)
            return 0
        try:
            Path(args.output).write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            raise StartupFailure(f"cannot write {args.output}: {exc.strerror or exc}") from None
        return 0
    except (StartupFailure, TransferError) as exc:
        print(f"tui-collab {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def connect_client(args: argparse.Namespace) -> Any:
    """A connected `CollabClient` for a one-shot command: the same flags as the app, a
    few quick attempts, and no outbox (the command waits for its acks itself)."""
    from tui_collab.backoff import Backoff
    from tui_collab.client import CollabClient
    from tui_collab.events import Closed

    url = args.server or f"ws://127.0.0.1:{DEFAULT_PORT}/ws"
    tls = tls_context(args.cafile)
    provider = token_provider(args)
    token = args.token
    if provider is not None:
        token = await first_token(provider)
    quick = Backoff(base_s=0.2, cap_s=1.0)
    if token is not None:
        client = CollabClient(
            url,
            token=token,
            token_provider=provider,
            ssl_context=tls,
            backoff=quick,
            max_attempts=3,
        )
    else:
        user, team = args.user or default_user(), args.team or "local"
        client = CollabClient(
            url,
            user=user,
            team=team,
            name=args.name,
            ssl_context=tls,
            backoff=quick,
            max_attempts=3,
        )
    client.start()
    try:
        async with asyncio.timeout(CONNECT_S):
            await client.wait_connected()
    except ConnectionError:
        await client.close()
        state = client.state
        raise StartupFailure(
            final_words(state) if isinstance(state, Closed) else f"cannot reach {url}"
        ) from None
    except TimeoutError:
        await client.close()
        raise StartupFailure(f"cannot reach {url} within {CONNECT_S:.0f} s") from None
    return client


@contextlib.contextmanager
def _quiet_client_logs() -> Iterator[None]:
    """The client logs for an app's log file; a command says what matters itself (and
    a thousand refused edits must not become a thousand lines on stderr)."""
    loggers = [logging.getLogger(name) for name in ("tui_collab", "websockets")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


async def _join(client: Any, board: str) -> Any:
    from tui_collab.client_state import ClientError

    try:
        return await client.join(board)
    except ClientError as exc:
        raise StartupFailure(f"cannot open board {board}: {exc.message}") from None


def _no_board(client: Any, board: str, hint: str) -> StartupFailure:
    team = client.welcome.team if client.welcome is not None else "this team"
    return StartupFailure(f"team {team} has no board {board!r}{hint}")


async def export_board(args: argparse.Namespace) -> str:
    """The board's cells in the format asked for (or -o's extension says)."""
    from tui_collab.transfer import format_board, guess_format

    fmt = args.format or (guess_format(args.output) if args.output else "csv")
    client = await connect_client(args)
    try:
        if args.board not in client.boards:
            raise _no_board(client, args.board, "")
        mirror = await _join(client, args.board)
        text = format_board(
            fmt,
            board=mirror.id,
            title=mirror.meta.title,
            width=mirror.meta.width,
            height=mirror.meta.height,
            version=mirror.version,
            cells=list(mirror.cells),
        )
    finally:
        await client.close()
    return text


async def import_board(args: argparse.Namespace) -> int:
    """Check the whole file, then write it with `set_cells`; nothing is sent for a file
    with a value the server would refuse or a cell outside the board."""
    from tui_collab.client_state import ClientError
    from tui_collab.transfer import check, guess_format, parse, parse_cell_name

    fmt = args.format or guess_format(args.file)
    at = parse_cell_name(args.at)
    cells = parse(_read_input(args.file), fmt, at=at, clear_empty=args.clear_empty)
    check(cells)  # before connecting: a bad file costs no connection
    client = await connect_client(args)
    try:
        max_chars = client.welcome.limits.max_cell_chars
        if args.board not in client.boards:
            if not args.create:
                raise _no_board(client, args.board, ": create it in the app, or pass --create")
            await _create_for(client, args.board, cells)
        mirror = await _join(client, args.board)
        check(
            cells,
            width=mirror.meta.width,
            height=mirror.meta.height,
            board=f"board {args.board}",
            max_chars=max_chars,
        )
        acks = []
        if cells:
            try:
                acks = await client.set_cells(args.board, [(c.x, c.y, c.value) for c in cells])
            except ClientError as exc:
                raise StartupFailure(f"the server refused the import: {exc}") from None
            except ConnectionError as exc:
                raise StartupFailure(f"connection lost during the import: {exc}") from None
    finally:
        await client.close()
    from tui_collab.cells import cell_name

    kept = sum(1 for ack in acks if ack.applied is False)
    note = f" ({kept} not changed: a newer edit holds them)" if kept else ""
    noun = "cell" if len(cells) == 1 else "cells"
    print(f"imported {len(cells)} {noun} into {args.board} at {cell_name(*at)}{note}")
    return 0


def _read_input(name: str) -> str:
    from tui_collab.transfer import TransferError

    try:
        if name == "-":
            return sys.stdin.buffer.read().decode("utf-8-sig")
        return Path(name).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TransferError(f"{name} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise TransferError(f"cannot read {name}: {exc.strerror or exc}") from None


IMPORT_BOARD_SIZE = (26, 40)
"""The smallest board `import --create` makes (the app's new-board size)."""


async def _create_for(client: Any, board: str, cells: Sequence[Any]) -> None:
    """A new board big enough for the file (and at least the app's default size)."""
    from tui_collab.client_state import ClientError
    from tui_collab.protocol import MAX_BOARD_HEIGHT, MAX_BOARD_WIDTH

    width = min(MAX_BOARD_WIDTH, max([IMPORT_BOARD_SIZE[0], *(c.x + 1 for c in cells)]))
    height = min(MAX_BOARD_HEIGHT, max([IMPORT_BOARD_SIZE[1], *(c.y + 1 for c in cells)]))
    try:
        await client.create_board(board.replace("-", " ").title(), width, height, board=board)
    except ClientError as exc:
        raise StartupFailure(f"cannot create board {board}: {exc.message}") from None


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

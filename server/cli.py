"""`tui-collab-server`: serve, mint tokens, print the protocol schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import Any, Final, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import ValidationError

from server import __version__
from server.auth import format_ttl, load_secret, mint_token, parse_ttl
from server.collector import settle as settle_collector
from server.config import FLAG, Flag, ServerConfig
from server.forwarded import parse_trusted
from server.logs import HeldLogs
from server.logs import configure as configure_logging
from server.startup import StartupError
from tui_collab.defaults import default_data_dir
from tui_collab.envflags import ENV_PREFIX, EnvValueError, env_flag, port, resolve_env
from tui_collab.server_package import ServerPackageError, check_server_package

logger = logging.getLogger("server")

PROG: Final = "tui-collab-server"


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

    _data_dir_flag(serve, env)
    for item, meta in config_flags():
        env_flag(
            serve,
            meta.name,
            environ=env,
            variable=meta.env.removeprefix(ENV_PREFIX),
            help=None if meta.help is None else meta.help.format(default=_shown(item)),
            metavar=meta.metavar,
            **_parsing(item),
        )
    flag(
        "loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop; uvloop needs `pip install uvloop` (see docs/benchmarks.md)",
    )
    flag("log-level", default="info", choices=("debug", "info", "warning", "error"))
    flag(
        "log-format",
        default="text",
        choices=("text", "json"),
        help="json: one object a line (time, level, logger, message, fields); tokens are "
        "redacted in both",
    )
    _debug_flag(serve, env)

    token = commands.add_parser("token", help="print a signed token for a user")
    token.add_argument("--user", required=True)
    token.add_argument("--team", required=True)
    token.add_argument("--name")
    token.add_argument(
        "--ttl", default="7d", help="lifetime: 90s, 15m, 2h, 7d (default %(default)s)"
    )
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


_CONVERTERS: Final[dict[str, Callable[[str], Any]]] = {
    "port": port,
    "session_retention_s": _duration,
    "forwarded_allow_ips": _trusted_proxies,
}
"""Flags whose values the field's type alone would not parse or check."""


def config_flags() -> Iterator[tuple[dataclasses.Field[Any], Flag]]:
    """Each `ServerConfig` field that is a flag of serve, with its `Flag`, in field order."""
    for item in dataclasses.fields(ServerConfig):
        meta = item.metadata.get(FLAG)
        if meta is not None:
            yield item, meta


@functools.cache
def _field_types() -> dict[str, Any]:
    return get_type_hints(ServerConfig)


def _dest(meta: Flag) -> str:
    return meta.name.replace("-", "_")


def _parsing(item: dataclasses.Field[Any]) -> dict[str, Any]:
    """The flag's default, and its type or choices: from the field, but for a few flags."""
    if item.name == "allowed_origins":  # repeatable: a list here, a tuple in the config
        return {"action": "append", "default": []}
    kwargs: dict[str, Any] = {"default": item.default}
    if item.name in _CONVERTERS:
        return kwargs | {"type": _CONVERTERS[item.name]}
    kind = _field_types()[item.name]
    if get_origin(kind) in (Union, UnionType):  # `X | None`: None is the default only
        (kind,) = (arg for arg in get_args(kind) if arg is not type(None))
    if get_origin(kind) is Literal:
        return kwargs | {"choices": get_args(kind)}
    if kind in (int, float, Path):
        return kwargs | {"type": kind}
    if kind is str:
        return kwargs
    raise TypeError(f"ServerConfig.{item.name}: no flag parsing for {kind!r}")


def _shown(item: dataclasses.Field[Any]) -> str:
    """A field's default as the help writes it: 10 for 10.0, 7d for a week in seconds."""
    value: Any = item.default
    if item.name == "session_retention_s":
        return format_ttl(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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
    try:
        check_server_package()  # this module is ours; is the `server` it runs in?
    except ServerPackageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
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
    held = HeldLogs(configure_logging(args.log_level, args.log_format))
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
    values = {item.name: getattr(args, _dest(meta)) for item, meta in config_flags()}
    values["allowed_origins"] = tuple(values["allowed_origins"])
    return ServerConfig(data_dir=args.data_dir, secret=secret, **values)


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

    signals: asyncio.Queue[signal.Signals] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signals.put_nowait, sig)
    server = CollabServer(config)
    try:
        await server.start()
    except StartupError:
        raise
    except OSError as exc:  # no check foresaw it; still one line (--debug shows where)
        raise StartupError(f"cannot start: {exc}") from exc
    held.release()
    # Start-up is done: what it made stays for the life of the process.
    settle_collector()
    try:
        # Scripts wait for this exact line; it is printed once connections are accepted.
        print(f"listening on {server.url}", flush=True)
        if await signals.get() == signal.SIGTERM and config.drain_s > 0:
            server.drain()  # /readyz says 503 while the balancer catches up
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signals.get(), config.drain_s)
        logger.info("shutting down")
    finally:
        await server.stop()
    with contextlib.suppress(Exception):
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

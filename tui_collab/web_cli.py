"""The `tui-collab web` subcommand's flags (the serving lives in web.py, loaded only
when the command runs, so the rest of the CLI needs no aiohttp)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def web_port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return value


def add_web_command(commands: Any) -> argparse.ArgumentParser:
    """`tui-collab web [--host] [--port] [--server URL] [--max-visitors N]`."""
    web: argparse.ArgumentParser = commands.add_parser(
        "web",
        help="serve the app to browsers: each visitor signs in as a teammate",
        description="Serve the app in browser pages (through textual-serve). Every page "
        "runs its own app, signed in as its visitor, on one collab server: --server, "
        "or one started here and shared (open mode, this machine only). Needs the "
        "`web` extra: pip install 'tui-collab[web]'.",
    )
    web.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1; anything else needs a token-mode "
        "--server and, for TLS, a proxy in front)",
    )
    web.add_argument(
        "--port",
        dest="web_port",
        metavar="PORT",
        type=web_port,
        default=8000,
        help="port to serve on (default 8000; 0 picks a free one)",
    )
    # SUPPRESS: absent here, the top-level flag (and its TUI_COLLAB_* variable) holds.
    web.add_argument(
        "--server",
        default=argparse.SUPPRESS,
        help="ws:// or wss:// URL of the collab server (default: start one here)",
    )
    web.add_argument(
        "--cafile",
        type=Path,
        default=argparse.SUPPRESS,
        help="CA certificate (PEM) to trust for a wss:// --server",
    )
    web.add_argument(
        "--max-visitors",
        type=positive,
        default=20,
        metavar="N",
        help="pages served at once; more get a page saying it is full (default 20)",
    )
    web.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        help="a proxy's public origin allowed to open terminals, e.g. "
        "https://collab.example.com (repeatable)",
    )
    return web


def run_web(args: argparse.Namespace) -> int:
    try:
        from tui_collab.web import main
    except ImportError as exc:
        import sys

        print(
            f"tui-collab web: {exc.name or exc} is missing: pip install 'tui-collab[web]'",
            file=sys.stderr,
        )
        return 1
    return main(args)

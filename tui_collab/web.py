"""`tui-collab web`: the app in a browser page, every visitor a teammate of their own.

One aiohttp server hands out the page (textual-serve's terminal script and styles) and,
per page, starts an app process (`tui_collab.web_visitor`) that signs its visitor in
and talks to ONE collab server: `--server`, or one this command embeds and shares.
Pages beyond `--max-visitors` get a page saying so. A page that closes or stops
answering (no pong within the heartbeat) ends its app, by force if it must.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tui_collab.hosts import is_loopback
from tui_collab.signin import AuthMode
from tui_collab.web_visitors import (
    Visitor,
    VisitorCommand,
    clamp_size,
    visitor_argv,
    visitor_env,
)

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
"""Ping the page this often; a page that has not answered by the next ping is gone."""
GRACE_S = 2.0
"""How long a visitor's app has to end at each step (quit, end of input, SIGTERM)."""


class WebStartupError(Exception):
    """`tui-collab web` cannot start; the message is the one line the person sees."""


@dataclass
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    server: str = ""
    auth: AuthMode = "open"
    team: str = "local"
    board: str = "main"
    cafile: Path | None = None
    max_visitors: int = 20
    allowed_origins: frozenset[str] = field(default_factory=frozenset)
    grace_s: float = GRACE_S
    heartbeat_s: float = HEARTBEAT_S


def _page(name: str) -> str:
    return files("tui_collab").joinpath(name).read_text(encoding="utf-8")


def _static_dir() -> Path:
    import textual_serve

    return Path(textual_serve.__file__).parent / "static"


class WebFront:
    """The aiohttp side: the page, the terminal socket, one visitor per socket."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.visitors: set[Visitor] = set()
        self._page = _page("web_page.html")
        self._full_page = _page("web_full.html")
        self._proxied_hosts = {urllib.parse.urlsplit(o).netloc for o in settings.allowed_origins}

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._check_host])
        app.add_routes(
            [
                web.get("/", self.index),
                web.get("/ws", self.terminal),
                web.get("/favicon.ico", _no_icon),
                web.static("/static", _static_dir()),
            ]
        )
        app.on_shutdown.append(self._end_all)
        return app

    @web.middleware
    async def _check_host(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """On a loopback bind, answer only for a loopback name or a proxy's public one
        (`--allowed-origin`): a page whose name was rebound to 127.0.0.1 must not start
        visitors (DNS rebinding)."""
        host = request.url.host or ""
        if (
            is_loopback(self.settings.host)
            and not is_loopback(host)
            and request.host not in self._proxied_hosts
        ):
            log.warning("refused a request for host %r", request.host)
            return web.Response(status=403, text="this server answers only for localhost")
        response: web.StreamResponse = await handler(request)
        return response

    def full(self) -> bool:
        return len(self.visitors) >= self.settings.max_visitors

    async def index(self, request: web.Request) -> web.Response:
        headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
        if self.full():
            text = self._full_page.replace("{{max}}", str(self.settings.max_visitors))
            return web.Response(status=503, text=text, content_type="text/html", headers=headers)
        return web.Response(text=self._page, content_type="text/html", headers=headers)

    def _origin_allowed(self, request: web.Request) -> bool:
        """A browser names the page that opens a socket: only this server's own pages
        (or `--allowed-origin`, a proxy's public name) may drive a visitor."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser: no page can be speaking for someone
        own = {f"http://{request.host}", f"https://{request.host}"}
        return origin in own or origin in self.settings.allowed_origins

    async def terminal(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_allowed(request):
            log.warning("refused a terminal socket from origin %r", request.headers["Origin"])
            return web.Response(status=403, text="origin not allowed (see --allowed-origin)")
        if self.full():
            return web.Response(status=503, text="every visitor seat is taken; try again later")
        width = _size(request.query.get("width"), 80)
        height = _size(request.query.get("height"), 24)
        socket_ = web.WebSocketResponse(heartbeat=self.settings.heartbeat_s)
        s = self.settings
        command = VisitorCommand(
            argv=visitor_argv(
                s.server,
                auth=s.auth,
                team=s.team,
                board=s.board,
                cafile=None if s.cafile is None else str(s.cafile),
            ),
            env=visitor_env(os.environ, width, height),
        )
        visitor = Visitor(
            command,
            send_bytes=socket_.send_bytes,
            send_text=socket_.send_str,
            close_page=socket_.close,
            grace_s=s.grace_s,
        )
        self.visitors.add(visitor)  # the seat is taken before the first await
        try:
            await socket_.prepare(request)
            await visitor.start()
            async for message in socket_:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    envelope = json.loads(message.data)
                except ValueError:
                    log.warning("visitor %s: page sent text that is not JSON", visitor.pid)
                    continue
                await visitor.on_page_message(envelope)
        finally:
            # The page closed, stopped answering, or the app quit: end it either way.
            await visitor.stop()
            self.visitors.discard(visitor)
            with contextlib.suppress(Exception):
                await socket_.close()
        return socket_

    async def _end_all(self, _app: web.Application) -> None:
        await asyncio.gather(*(v.stop() for v in list(self.visitors)))


async def _no_icon(_request: web.Request) -> web.Response:
    return web.Response(status=204)


def _size(text: str | None, default: int) -> int:
    try:
        return clamp_size(int(text or default))
    except ValueError:
        return default


def probe_auth(url: str, cafile: Path | None) -> AuthMode:
    """Ask the collab server whether it wants tokens: its presence API answers an
    open-mode server's question without one and refuses a token-mode server's."""
    from tui_collab.cli import StartupFailure, tls_context

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise WebStartupError(f"{url} is not a ws:// or wss:// URL (e.g. ws://host:9001/ws)")
    scheme = "https" if parts.scheme == "wss" else "http"
    probe = f"{scheme}://{parts.netloc}/api/presence?team=local"
    try:
        context = tls_context(cafile)
        with urllib.request.urlopen(probe, timeout=5, context=context) as reply:  # noqa: S310 (http/https only)
            reply.read()
    except StartupFailure as exc:
        raise WebStartupError(str(exc)) from None
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return "token"
        raise WebStartupError(f"{url}: the server said {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebStartupError(f"cannot reach {url}: {reason}") from None
    return "open"


def check_exposure(settings: WebSettings) -> None:
    """Open mode trusts whatever name is typed: fine on one machine, not on a network."""
    public = [o for o in settings.allowed_origins if not is_loopback(_origin_host(o))]
    if settings.auth == "open" and public:
        raise WebStartupError(
            f"--allowed-origin {public[0]} would let anyone who reaches that name sign in "
            "under any name: an open-mode server is for this machine only. Serve a "
            "token-mode server's board (--server, tui-collab-server serve --auth token) instead"
        )
    if settings.auth == "open" and not is_loopback(settings.host):
        raise WebStartupError(
            f"--host {settings.host} would let anyone who reaches the page sign in under "
            "any name: an open-mode server is for this machine only. Serve a token-mode "
            "server's board (--server, tui-collab-server serve --auth token) instead"
        )
    if settings.max_visitors < 1:
        raise WebStartupError("--max-visitors must be at least 1")


def _origin_host(origin: str) -> str:
    return urllib.parse.urlsplit(origin).hostname or ""


def check_origins(origins: frozenset[str]) -> None:
    for origin in origins:
        parts = urllib.parse.urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise WebStartupError(
                f"--allowed-origin {origin!r} is not an origin: scheme and host only, "
                "e.g. https://collab.example.com"
            )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, so the port (0: any free one) is known before serving."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise WebStartupError(f"cannot resolve --host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise WebStartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(settings: WebSettings, args: argparse.Namespace) -> None:
    """Run until SIGINT or SIGTERM: the embedded server (if any), then the page."""
    from tui_collab.cli import StartupFailure, _start_local_server, prepare_data_dir

    sock = bind(settings.host, settings.port)  # a port in use: nothing else started
    embedded = None
    if not settings.server:
        try:
            prepare_data_dir(args.data_dir)
            embedded = await _start_local_server(args)
        except StartupFailure as exc:
            sock.close()
            raise WebStartupError(str(exc)) from None
        settings.server = embedded.url
        settings.auth = "open"
    runner = web.AppRunner(WebFront(settings).application(), handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        where = "embedded server" if embedded is not None else "server"
        print(
            f"serving http://{shown}:{port}/ ({settings.auth} mode, {where} {settings.server})",
            flush=True,
        )
        await stop.wait()
    finally:
        await runner.cleanup()
        if embedded is not None:
            await embedded.stop()


def settings_from(args: argparse.Namespace) -> WebSettings:
    cafile: Path | None = args.cafile
    settings = WebSettings(
        host=args.host,
        port=args.web_port,
        server=args.server or "",
        board=args.board,
        team=args.team or "local",
        cafile=cafile,
        max_visitors=args.max_visitors,
        allowed_origins=frozenset(o.rstrip("/") for o in args.allowed_origin or ()),
    )
    check_origins(settings.allowed_origins)
    if settings.server:
        settings.auth = probe_auth(settings.server, cafile)
    return settings


def main(args: argparse.Namespace) -> int:
    """`tui-collab web`: one line on stderr and status 1 if it cannot start."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        settings = settings_from(args)
        check_exposure(settings)
        asyncio.run(serve(settings, args))
    except WebStartupError as exc:
        print(f"tui-collab web: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0

"""A visitor's app process behind one page: started, fed, read, and always ended.

Speaks Textual's web-driver framing (as textual-serve does): a `__GANGLION__` line, then
packets of one type byte (`D` terminal data, `M` JSON meta, `P` packed), a 4-byte big-
endian length and the payload, both ways. Unlike textual-serve, it reads the app's
output to the end whatever became of the page (an app blocked writing to a full pipe
cannot even hear SIGTERM) and ends the app's whole process group once the page is
gone: politely first, by force after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

READY_LINE = b"__GANGLION__\n"
STDERR_LINE_CHARS = 500
"""A visitor's stderr line is logged up to this length."""

MAX_TERMINAL = 500
"""Columns or rows a page may ask for: the app draws (and keeps) every cell of it."""

SendBytes = Callable[[bytes], Awaitable[None]]
SendText = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class VisitorCommand:
    """How to start a visitor's app: argv and the variables it must (not) inherit."""

    argv: Sequence[str]
    env: Mapping[str, str]


def visitor_env(base: Mapping[str, str], width: int, height: int) -> dict[str, str]:
    """The host's environment without its tui-collab settings (a visitor must not sign
    in with the host's token), with Textual's web driver and the page's size."""
    env = {k: v for k, v in base.items() if not k.startswith(("TUI_COLLAB_", "TEXTUAL"))}
    env.update(
        TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver",
        TEXTUAL_FPS="60",
        TEXTUAL_COLOR_SYSTEM="truecolor",
        TERM_PROGRAM="textual",
        COLUMNS=str(width),
        ROWS=str(height),
        PYTHONUNBUFFERED="1",
    )
    return env


def clamp_size(value: int) -> int:
    return min(max(value, 1), MAX_TERMINAL)


def packet(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


class Visitor:
    """One page's app process."""

    def __init__(
        self,
        command: VisitorCommand,
        *,
        send_bytes: SendBytes,
        send_text: SendText,
        close_page: Callable[[], Awaitable[object]],
        grace_s: float = 2.0,
    ) -> None:
        self.command = command
        self._send_bytes = send_bytes
        self._send_text = send_text
        self._close_page = close_page
        self.grace_s = grace_s
        self.process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._page_open = True

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(self.command.env),
            start_new_session=True,  # its own process group: ended whole, children too
        )
        self._tasks = [
            asyncio.create_task(self._read_output(), name=f"visitor-{self.pid}-out"),
            asyncio.create_task(self._read_errors(), name=f"visitor-{self.pid}-err"),
        ]
        log.info("visitor app started (pid %s)", self.pid)

    # --- page -> app ----------------------------------------------------------------

    async def on_page_message(self, envelope: object) -> None:
        """A message from textual.js: keys, a resize, focus, a ping."""
        if not (isinstance(envelope, list) and envelope and isinstance(envelope[0], str)):
            log.warning("visitor %s: not a page message: %.80r", self.pid, envelope)
            return
        kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
        size = data if isinstance(data, dict) else {}
        width, height = size.get("width"), size.get("height")
        if kind == "stdin" and isinstance(data, str):
            await self._write(packet(b"D", data.encode("utf-8")))
        elif kind == "resize" and isinstance(width, int) and isinstance(height, int):
            resize = {"type": "resize", "width": clamp_size(width), "height": clamp_size(height)}
            await self._meta(resize)
        elif kind in ("focus", "blur"):
            await self._meta({"type": kind})
        elif kind == "ping":
            await self._to_page_text(json.dumps(["pong", data]))
        else:
            log.warning("visitor %s: not a page message: %.80r", self.pid, envelope)

    async def _meta(self, meta: dict[str, object]) -> None:
        await self._write(packet(b"M", json.dumps(meta).encode()))

    async def _write(self, data: bytes) -> None:
        stdin = None if self.process is None else self.process.stdin
        if stdin is None or stdin.is_closing():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            stdin.write(data)
            await stdin.drain()

    # --- app -> page ----------------------------------------------------------------

    async def _read_output(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        stdout = self.process.stdout
        try:
            # Anything before the ready line is the app failing to start.
            while (line := await stdout.readline()) != READY_LINE:
                if not line:
                    return
                log.warning("visitor %s: %s", self.pid, line.decode(errors="replace").rstrip())
            while True:
                kind = await stdout.readexactly(1)
                size = int.from_bytes(await stdout.readexactly(4), "big")
                payload = await stdout.readexactly(size)
                if kind == b"D":
                    await self._to_page_bytes(payload)
                elif kind == b"M":
                    await self._on_meta(payload)
                # `P` (file deliveries) is not offered to visitors: nothing to read.
        except asyncio.IncompleteReadError:
            pass  # the app ended
        finally:
            if self._page_open:
                self._page_open = False
                with contextlib.suppress(Exception):
                    await self._close_page()

    async def _on_meta(self, payload: bytes) -> None:
        try:
            meta = json.loads(payload)
        except ValueError:
            log.warning("visitor %s: meta packet is not JSON", self.pid)
            return
        if meta.get("type") == "exit":  # the app quit: the page shows it ended
            self._page_open = False
            with contextlib.suppress(Exception):
                await self._close_page()
        elif meta.get("type") == "open_url":
            url, new_tab = meta.get("url"), meta.get("new_tab", True)
            await self._to_page_text(json.dumps(["open_url", {"url": url, "new_tab": new_tab}]))

    async def _to_page_bytes(self, data: bytes) -> None:
        """Send to the page while it is there; after that, read and drop."""
        if not self._page_open:
            return
        try:
            await self._send_bytes(data)
        except (ConnectionError, RuntimeError):
            self._page_open = False

    async def _to_page_text(self, text: str) -> None:
        if not self._page_open:
            return
        try:
            await self._send_text(text)
        except (ConnectionError, RuntimeError):
            self._page_open = False

    async def _read_errors(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            text = line.decode(errors="replace").rstrip()
            if text:
                log.warning("visitor %s: %s", self.pid, text[:STDERR_LINE_CHARS])

    # --- ending ---------------------------------------------------------------------

    async def stop(self) -> int | None:
        """End the app: quit, then end of input, then SIGTERM, then SIGKILL to its
        process group, each after `grace_s`. Returns its exit status."""
        self._page_open = False
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            await self._meta({"type": "quit"})
            if process.stdin is not None:
                process.stdin.close()
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None:
                    log.warning(
                        "visitor %s did not end within %.1f s: %s", self.pid, self.grace_s, sig.name
                    )
                    _signal_group(process.pid, sig)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), self.grace_s)
                    break
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(task, self.grace_s)
        log.info("visitor app %s ended (status %s)", process.pid, process.returncode)
        return process.returncode


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the visitor's process group (its pid: it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def visitor_argv(server: str, *, auth: str, team: str, board: str, cafile: str | None) -> list[str]:
    argv = [sys.executable, "-m", "tui_collab.web_visitor", "--server", server]
    argv += ["--auth", auth, "--team", team, "--board", board]
    if cafile is not None:
        argv += ["--cafile", cafile]
    return argv

"""A real `tui-collab web` process and real Chromium pages on it (Playwright, driving
Debian's `chromium`: no browser is ever downloaded).

A page's terminal is read from what the page was sent: every binary frame on its
terminal socket, escape sequences removed. A value drawn in a cell arrives as one run
of text, so "the page shows X" is "X is in that text".
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
SERVING = re.compile(r"^serving (http://\S+) \((\w+) mode, (?:embedded )?server (\S+)\)$")
VISITOR_STARTED = re.compile(r"visitor app started \(pid (\d+)\)")
ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def chromium() -> str:
    """Debian's chromium, or a failed test that says how to get it (CI installs it)."""
    path = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if path is None:
        pytest.fail("chromium is not installed: apt-get install --no-install-recommends chromium")
    return path


class WebProcess:
    """`tui-collab web` as a person starts it, on free ports and a temporary data dir."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.args = args
        self.log_path = data_dir.parent / f"{data_dir.name}-web.log"
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.mode = ""
        self.server_url = ""

    def start(self, timeout: float = 20.0) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_COLLAB_")}
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "tui_collab.cli", "--data-dir", str(self.data_dir)),
                    *("--port", "0", "web", "--port", "0", *self.args),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"tui-collab web exited early: {self.log()}")
            match = SERVING.match(line.strip())
            if match:
                self.url, self.mode, self.server_url = match.groups()
                return self.url
        raise TimeoutError("tui-collab web did not print its serving line")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def visitor_pids(self) -> list[int]:
        """Visitor app processes in the order they started."""
        return [int(pid) for pid in VISITOR_STARTED.findall(self.log())]

    def stop(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def process_gone(pid: int) -> bool:
    """Whether `pid` has ended (and been reaped, or is only a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class TerminalPage:
    """A Playwright page on `tui-collab web`, with the text its terminal was sent."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self._chunks: list[str] = []
        page.on("websocket", self._watch)

    def _watch(self, socket: Any) -> None:
        socket.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self._chunks.append(payload.decode("utf-8", errors="replace"))

    def text(self) -> str:
        """Everything drawn so far, escape sequences removed."""
        return ESCAPES.sub("", "".join(self._chunks))

    async def wait_for_text(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if time.monotonic() >= deadline:
                tail = self.text()[-400:]
                raise AssertionError(
                    f"not within {timeout} s: {text!r} on the page; last: {tail!r}"
                )
            await asyncio.sleep(0.05)

    async def type(self, text: str) -> None:
        await self.page.keyboard.type(text)

    async def press(self, *keys: str) -> None:
        for key in keys:
            await self.page.keyboard.press(key)

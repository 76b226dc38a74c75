"""The app ends when its terminal or pipe goes away, and a visitor's app ends however
stubborn: no process left spinning a core for a page or a terminal nobody has."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from server.app import CollabServer
from tests.conftest import StartServer
from tests.support.browser import process_gone
from tests.support.waiting import eventually
from tui_collab.web_visitors import READY_LINE, Visitor, VisitorCommand, visitor_env

ENDS_WITHIN_S = 5.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def read_until(fd: int, marker: bytes, timeout: float = 20.0) -> None:
    """Read a pty's output until `marker` appears (the app is drawing)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline, f"no {marker!r} within {timeout} s: {seen[-300:]!r}"
        if select.select([fd], [], [], 0)[0]:
            seen += os.read(fd, 65536)
        else:
            await asyncio.sleep(0.05)


async def open_server(start_server: StartServer) -> CollabServer:
    return await start_server(auth="open")


async def test_the_app_exits_when_its_terminal_goes_away(
    start_server: StartServer, tmp_path: Path
) -> None:
    """A killed tmux or a dropped SSH session: the terminal's reads end, and the app
    exits instead of spinning on them."""
    server = await open_server(start_server)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    args = ["--server", server.url, "--user", "ada", "--team", "local"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUI_COLLAB_", "TEXTUAL"))}
    app = subprocess.Popen(
        [sys.executable, "-m", "tui_collab.cli", *args, "--data-dir", str(tmp_path / "app")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color"},
        start_new_session=True,
    )
    os.close(slave)
    try:
        await read_until(master, b"connected")
        os.close(master)
        await eventually(lambda: app.poll() is not None, ENDS_WITHIN_S, "the app exited")
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


async def test_a_visitor_app_exits_when_its_pipe_closes(start_server: StartServer) -> None:
    """`tui-collab web` gone (even killed): the visitor's input ends and it exits, and
    it spent no core waiting."""
    server = await open_server(start_server)
    app = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tui_collab.web_visitor", "--server", server.url),
        *("--auth", "open"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=visitor_env(os.environ, 100, 30),
    )
    assert app.stdin is not None
    assert app.stdout is not None
    try:
        async with asyncio.timeout(20):
            while await app.stdout.readline() != READY_LINE:
                pass
        drain = asyncio.create_task(app.stdout.read())
        app.stdin.close()
        async with asyncio.timeout(ENDS_WITHIN_S):
            await app.wait()
        await drain
    finally:
        if app.returncode is None:
            app.kill()
            await app.wait()


async def test_a_stubborn_visitor_and_its_children_are_killed() -> None:
    """An app that ignores quit, end of input and SIGTERM, with a child of its own:
    `stop` ends the whole process group by force after the grace periods."""
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "print('__GANGLION__', flush=True)\n"
        "time.sleep(60)\n"
    )

    async def send(_data: bytes) -> None:
        pass

    async def send_text(_text: str) -> None:
        pass

    async def close_page() -> None:
        pass

    visitor = Visitor(
        VisitorCommand([sys.executable, "-c", script], dict(os.environ)),
        send_bytes=send,
        send_text=send_text,
        close_page=close_page,
        grace_s=0.3,
    )
    await visitor.start()
    assert visitor.process is not None
    assert visitor.pid is not None
    await eventually(lambda: _child_of(visitor.pid) is not None, 10.0, "the child started")
    child = _child_of(visitor.pid)
    assert child is not None
    started = time.monotonic()
    status = await visitor.stop()
    assert status == -9
    assert time.monotonic() - started < 3.0
    await eventually(lambda: process_gone(child), 3.0, "the app's child was killed too")


def _child_of(pid: int | None) -> int | None:
    """The first child of `pid`, from /proc (its `children` list)."""
    if pid is None:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return None
    return int(children[0]) if children else None

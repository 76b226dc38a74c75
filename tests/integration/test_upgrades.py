"""The HTTP phase bounded: per-IP and total caps, a short deadline, failed accepts summed up.

A socket that connects and then sends its request slowly (or never) is dropped at the
upgrade deadline; over the per-IP cap it is dropped unread at once, so a flood of them
never takes the descriptors a real client needs. When descriptors run out anyway,
asyncio's per-failure tracebacks become one log line per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import socket
import time

import pytest

from tests.conftest import StartServer, token
from tests.support.metrics import sample
from tests.support.peer import Peer
from tests.support.waiting import eventually

HALF_REQUEST = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"


def _open_half_requests(port: int, count: int, source: str = "127.0.0.2") -> list[socket.socket]:
    """Start `count` connections from `source` (not the normal clients' 127.0.0.1)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((source, 0))
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def _send_half(sockets: list[socket.socket]) -> int:
    sent = 0
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.send(HALF_REQUEST)
            sent += 1
    return sent


def _dropped(sock: socket.socket) -> bool:
    """Whether the server has closed this socket (EOF or reset), reading past anything
    it said first (a refusal's response), so that asking again is safe."""
    try:
        while sock.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def _fill_descriptors(fillers: list[int]) -> None:
    """Take every descriptor left (into `fillers`), until open fails with EMFILE."""
    while True:
        try:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        except OSError as exc:
            if exc.errno != errno.EMFILE:
                raise
            return


def _fd_headroom(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def test_1100_half_open_upgrades_leave_a_normal_client_connecting_at_once(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    _fd_headroom(4096)
    server = await start_server(max_upgrading_per_ip=64, upgrade_timeout_s=1.0)
    half_open: list[socket.socket] = []
    try:
        with caplog.at_level(logging.WARNING, "tui_collab.audit"):
            for _ in range(11):
                batch = _open_half_requests(server.port, 100)
                half_open += batch
                await asyncio.sleep(0.01)  # the server accepts (and drops) meanwhile
                _send_half(batch)
            # Kept: a bound, not a condition to wait for (it must hold at every moment);
            # the pause lets the server take in the last batch before it is checked.
            await asyncio.sleep(0.05)
            assert len(server.upgrades) <= 64
            started = time.monotonic()
            peer = await Peer.join(server.url, token("ada", "core"), header=True)
            connect_s = time.monotonic() - started
        assert connect_s < 2.0, connect_s  # behind the backlog's deadline it took 9.6 s

        def refused() -> float:
            return sample(
                server.metrics, "tui_collab_refused_connections_total", cap="upgrading_per_ip"
            )

        # The server may still be taking the last of them from the backlog.
        await eventually(lambda: refused() >= 1_000, 15, "the half-open sockets refused")
        lines = [
            r.getMessage()
            for r in caplog.records
            if r.name == "tui_collab.audit" and "cap=upgrading_per_ip" in r.getMessage()
        ]
        assert len(lines) == 1, lines  # one per IP per interval, not one per socket
        assert "ip=127.0.0.2" in lines[0]
        # The deadline closes the ones that were let in; the client that upgraded stays.
        # Stragglers taken from the backlog late get their own 1 s: a few deadlines, not
        # the 5 s default nor forever.
        await eventually(lambda: len(server.upgrades) == 0, 3.0, "the upgrade deadline")
        assert len(server.upgrades) == 0
        # Closing a thousand sockets takes the server a moment on a busy machine.
        await eventually(
            lambda: all(_dropped(sock) for sock in half_open), 5, "every half-open closed"
        )
        await peer.send({"type": "presence.query", "id": "q"})
        await peer.next("presence.snapshot", re="q")
        await peer.close()
    finally:
        for sock in half_open:
            sock.close()


async def test_the_total_cap_holds_sockets_from_every_address(start_server: StartServer) -> None:
    server = await start_server(max_upgrading_per_ip=100, max_upgrading=5, upgrade_timeout_s=2)

    def refused(cap: str) -> float:
        return sample(server.metrics, "tui_collab_refused_connections_total", cap=cap)

    held = _open_half_requests(server.port, 5)
    try:
        await eventually(lambda: len(server.upgrades) == 5, what="five requests upgrading")
        assert len(server.upgrades) == 5
        over = _open_half_requests(server.port, 3)
        await eventually(lambda: refused("upgrading") == 3, what="three refused")
        assert all(_dropped(sock) for sock in over)
        assert refused("upgrading") == 3
        for sock in over:
            sock.close()
        # Answered HTTP requests and upgrades leave the HTTP phase at once.
        for sock in held[:2]:
            sock.close()
        await eventually(lambda: len(server.upgrades) == 3, what="two requests gone")
        peer = await Peer.join(server.url, token("ada", "core"), header=True)
        assert len(server.upgrades) == 3
        await peer.close()
    finally:
        for sock in held:
            sock.close()


async def test_failed_accepts_are_one_log_line_with_a_count_not_one_each(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server()
    waiting = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers: list[int] = []
    try:
        with caplog.at_level(logging.ERROR):
            # No descriptor left: every accept the server tries fails with EMFILE.
            top = max(int(fd) for fd in os.listdir("/proc/self/fd"))
            resource.setrlimit(resource.RLIMIT_NOFILE, (top + 1, hard))
            _fill_descriptors(fillers)
            await eventually(lambda: server.accept_failures.count > 1, what="accepts fail")
            for fd in fillers:
                os.close(fd)
            fillers.clear()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            failures = server.accept_failures.count
            during = [r for r in caplog.records if "cannot accept" in r.getMessage()]
            # asyncio retries accepting after 1 s; the server is then fine again.
            peer = await Peer.join(server.url, token("ada", "core"), header=True)
            await peer.close()
            for sock in waiting:
                sock.close()
            await server.stop()
            after = [r for r in caplog.records if "cannot accept" in r.getMessage()]
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for sock in waiting:
            sock.close()
    assert failures > 1
    assert len(during) == 1
    assert during[0].exc_info is None  # no traceback
    assert len(after) == 2  # and the count of those held back, at the latest on stop
    assert f"{failures - 1} like this" in after[1].getMessage()

"""`tui-collab web`'s own refusals: who may open a terminal, how many, and where it may
listen; each a clear answer, never a silent one."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiohttp import web
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from server.app import CollabServer
from tests.conftest import StartServer
from tests.support.browser import WebProcess, process_gone
from tests.support.waiting import eventually
from tui_collab.cli import main
from tui_collab.hosts import is_loopback
from tui_collab.web import WebFront, WebSettings, bind


def get(url: str, host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if host is not None:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def refused(url: str, origin: str | None = None) -> int:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url, origin=origin):  # type: ignore[arg-type]
            pass
    return caught.value.response.status_code


async def test_host_origin_and_seats(tmp_path: Path, server: CollabServer) -> None:
    proxy = ("--allowed-origin", "https://collab.example.com")
    web = WebProcess(tmp_path / "data", "--server", server.url, "--max-visitors", "1", *proxy)
    await asyncio.to_thread(web.start)  # the server answers its question meanwhile
    try:
        assert web.mode == "token"  # asked the server: it wants tokens
        port = web.url.rsplit(":", 1)[1].strip("/")
        socket_url = f"ws://127.0.0.1:{port}/ws"
        status, _ = await asyncio.to_thread(get, web.url, f"attacker.example:{port}")
        assert status == 403  # a rebound name must not reach a loopback-only page
        status, _ = await asyncio.to_thread(get, web.url, "collab.example.com")
        assert status == 200  # the proxy's public name, as --allowed-origin says
        assert await refused(socket_url, origin="http://attacker.example") == 403

        own = f"http://127.0.0.1:{port}"
        async with connect(socket_url, origin=own) as page:  # type: ignore[arg-type]
            await eventually(lambda: len(web.visitor_pids()) == 1, 10.0, "a visitor started")
            status, text = await asyncio.to_thread(get, web.url)
            assert status == 503
            assert "tui-collab is full: every seat (1) is taken" in text
            assert await refused(socket_url, origin=own) == 503
            await asyncio.wait_for(page.recv(), 20)  # the app draws its sign-in screen
            # What no page should send: logged and dropped, the app keeps going.
            for bad in ("not json", '{"a": 1}', '["resize", {"width": 1e9}]', '["stdin", 5]'):
                await page.send(bad)
            await page.send('["resize", {"width": 1000000000, "height": 3}]')
            await page.send('["ping", "p1"]')
            while (frame := await asyncio.wait_for(page.recv(), 10)) != '["pong", "p1"]':
                assert isinstance(frame, bytes)
        (pid,) = web.visitor_pids()
        await eventually(lambda: process_gone(pid), 8.0, "the visitor's app ended")
        await eventually(lambda: page_status(web.url), 5.0, "the seat is free again")
    finally:
        assert await asyncio.to_thread(web.stop) == 0, web.log()
    log = web.log()
    assert "page sent text that is not JSON" in log
    assert "not a page message" in log
    assert "Traceback" not in log


async def page_status(url: str) -> bool:
    status, _ = await asyncio.to_thread(get, url)
    return status == 200


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (("--host", "0.0.0.0"), 1, "an open-mode server is for this machine only"),
        (("--server", "http://127.0.0.1:9/ws"), 1, "is not a ws:// or wss:// URL"),
        (("--server", "ws://127.0.0.1:9/ws"), 1, "cannot reach ws://127.0.0.1:9/ws"),
        (("--allowed-origin", "https://collab.example.com"), 1, "sign in under any name"),
        (("--allowed-origin", "collab.example.com"), 1, "is not an origin"),
        (("--max-visitors", "0"), 2, "0 is not at least 1"),
        (("--port", "70000"), 2, "70000 is not a port"),
    ],
)
def test_what_web_will_not_do(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    status: int,
    says: str,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    try:
        done = main(["--data-dir", str(tmp_path / "data"), "web", *args])
    except SystemExit as exc:  # argparse's own refusals
        done = exc.code  # type: ignore[assignment]
    assert done == status
    out, err = capsys.readouterr()
    assert says in err
    assert out == ""
    assert not (tmp_path / "data").exists()  # refused before anything started


def test_a_port_in_use_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    taken = bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        status = main(["--data-dir", str(tmp_path / "data"), "web", "--port", str(port)])
    finally:
        taken.close()
    assert status == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # no local server was started first


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("app.localhost", True),
        ("127.0.0.2", True),
        ("[::1]", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("attacker.example", False),
        ("10.0.0.1", False),
    ],
)
def test_loopback_names(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_a_page_that_stops_answering_ends_its_app(start_server: StartServer) -> None:
    """No pong by the next ping (a laptop lid shut, a network gone): the app ends."""
    server = await start_server(auth="open")
    settings = WebSettings(server=server.url, heartbeat_s=0.5, grace_s=0.5)
    front = WebFront(settings)
    runner = web.AppRunner(front.application())
    await runner.setup()
    sock = bind("127.0.0.1", 0)
    await web.SockSite(runner, sock).start()
    port = sock.getsockname()[1]
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws", close_timeout=0.2) as page:
            await asyncio.wait_for(page.recv(), 20)  # the app draws its sign-in screen
            (visitor,) = front.visitors
            pid = visitor.pid
            assert pid is not None
            page.transport.pause_reading()  # pings go unanswered from here on
            await eventually(lambda: process_gone(pid), 8.0, "the silent page's app ended")
            await eventually(lambda: not front.visitors, 2.0, "its seat freed")
    finally:
        await runner.cleanup()

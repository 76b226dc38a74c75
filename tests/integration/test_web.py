"""`tui-collab web` end to end: a real Chromium, two pages, two teammates, one server.

Set TUI_COLLAB_WEB_SCREENSHOT=docs/images/web.png to also save the picture the README
shows (page 2 once the raw client's cell has arrived).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.board import join_board
from tests.support.browser import TerminalPage, WebProcess, chromium, process_gone
from tests.support.peer import Peer
from tests.support.roster import next_entry, presence_seen
from tests.support.waiting import eventually

VIEWPORT = {"width": 1200, "height": 700}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"], headless=True
        )
        yield browser
        await browser.close()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebProcess]:
    process = WebProcess(tmp_path / "data")
    process.start()
    yield process
    assert process.stop() == 0, process.log()
    assert all(process_gone(pid) for pid in process.visitor_pids())  # none outlives it


async def open_page(browser: Browser, web: WebProcess) -> TerminalPage:
    page = TerminalPage(await browser.new_page(viewport=VIEWPORT))  # type: ignore[arg-type]
    await page.page.goto(web.url)
    return page


async def sign_in(page: TerminalPage, name: str) -> None:
    """Type at once, without a click: the page focuses the terminal by itself."""
    await page.wait_for_text("Your name")
    await page.type(name)
    await page.press("Enter")
    await page.wait_for_text(f"signed in to team local as {name}")
    await page.wait_for_text("26\N{MULTIPLICATION SIGN}40")  # the board is on screen


async def test_two_pages_two_teammates_one_server(browser: Browser, web: WebProcess) -> None:
    assert web.mode == "open"
    ada = await open_page(browser, web)
    await sign_in(ada, "Ada")
    bob = await open_page(browser, web)
    await sign_in(bob, "Bob")
    ada_pid, bob_pid = web.visitor_pids()

    observer = await Peer.join(web.server_url, user="observer", team="local")
    try:
        members = presence_seen(observer)
        assert members["Ada"]["status"] == "online"
        assert members["Bob"]["status"] == "online"
        await join_board(observer, "main")

        await ada.press("ArrowRight", "ArrowRight", "ArrowDown")
        await eventually(
            lambda: any(
                c == {"user": "Ada", "x": 2, "y": 1}
                for m in observer.log
                if m.get("type") == "cursors"
                for c in m["cursors"]
            ),
            what="Ada's cursor at C2 on the raw client",
        )

        await observer.send(
            {
                "type": "cell.set",
                "id": "obs-1",
                "board": "main",
                "x": 0,
                "y": 4,
                "value": "web-ok",
                "op": "obs-1",
                "clock": 1,
            }
        )
        await observer.next("ack", re="obs-1")
        await ada.wait_for_text("web-ok")
        await bob.wait_for_text("web-ok")
        await save_screenshot(bob)

        await ada.page.close()
        await next_entry(observer, "presence", timeout=5.0, user="Ada", status="offline")
        await eventually(lambda: process_gone(ada_pid), 5.0, "Ada's app process ended")
        assert not process_gone(bob_pid)
        assert presence_seen(observer)["Bob"]["status"] == "online"
    finally:
        await observer.close()


async def save_screenshot(page: TerminalPage) -> None:
    target = os.environ.get("TUI_COLLAB_WEB_SCREENSHOT")
    if target:
        shot: Any = page.page.screenshot
        await shot(path=target)

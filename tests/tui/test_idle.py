"""Auto-away after five minutes without input, back on the next key, click or scroll."""

from __future__ import annotations

from textual import events

from server.app import CollabServer
from tests.conftest import StartServer
from tests.tui.conftest import wait_for
from tui_collab.app import AWAY_AFTER_S, Clock, CollabApp
from tui_collab.client import CollabClient
from tui_collab.widgets.grid import ROW_HEADER_WIDTH


class ManualClock:
    """Monotonic time that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_goes_away_when_idle_and_comes_back_on_a_key(start_server: StartServer) -> None:
    server: CollabServer = await start_server(auth="open", secret=None)
    monotonic = ManualClock()
    client = CollabClient(server.url, user="alice", team="core")
    app = CollabApp(client, board="plan", clock=Clock(monotonic=monotonic))

    def status() -> str:
        member = server.presence.member("core", "alice")
        return "" if member is None else member.status

    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None and status() == "online")
        monotonic.now += AWAY_AFTER_S - 1
        app._check_idle()
        # A delay is the point: nothing may change within it (no `away` sent too early).
        await pilot.pause(0.2)
        assert status() == "online"
        monotonic.now += 2
        app._check_idle()
        await wait_for(pilot, lambda: status() == "away")
        await pilot.press("right")
        await wait_for(pilot, lambda: status() == "online")


async def test_a_click_or_a_scroll_counts_as_being_here(start_server: StartServer) -> None:
    server: CollabServer = await start_server(auth="open", secret=None)
    monotonic = ManualClock()
    client = CollabClient(server.url, user="alice", team="core")
    app = CollabApp(client, board="plan", clock=Clock(monotonic=monotonic))

    def status() -> str:
        member = server.presence.member("core", "alice")
        return "" if member is None else member.status

    async def go_away() -> None:
        monotonic.now += AWAY_AFTER_S + 1
        app._check_idle()
        await wait_for(pilot, lambda: status() == "away")

    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None and status() == "online")
        await go_away()
        await pilot.click(app.grid, offset=(ROW_HEADER_WIDTH + 2, 3))
        await wait_for(pilot, lambda: status() == "online")
        assert app.last_input == monotonic.now

        await go_away()
        # The way a terminal's wheel arrives: at the app, before any widget has it.
        app.post_message(
            events.MouseScrollDown(
                widget=None,
                x=40,
                y=10,
                delta_x=0,
                delta_y=1,
                button=0,
                shift=False,
                meta=False,
                ctrl=False,
            )
        )
        await wait_for(pilot, lambda: status() == "online")

        await go_away()
        app.post_message(
            events.MouseMove(
                widget=None,
                x=41,
                y=10,
                delta_x=1,
                delta_y=0,
                button=0,
                shift=False,
                meta=False,
                ctrl=False,
            )
        )
        # A delay is the point: the status must not change within it.
        await pilot.pause(0.2)
        assert status() == "away"  # a mouse that only passes over is not a person here

"""Auto-away after five minutes without input, back to online on the next key."""

from __future__ import annotations

from server.app import CollabServer
from tests.conftest import StartServer
from tests.tui.conftest import wait_for
from tui_collab.app import AWAY_AFTER_S, Clock, CollabApp
from tui_collab.client import CollabClient


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
        await pilot.pause(0.2)
        assert status() == "online"
        monotonic.now += 2
        app._check_idle()
        await wait_for(pilot, lambda: status() == "away")
        await pilot.press("right")
        await wait_for(pilot, lambda: status() == "online")

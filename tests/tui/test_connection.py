"""What the app says about the connection: one feed line per outage."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.conftest import StartServer
from tests.tui.conftest import wait_for
from tui_collab.app import Clock, CollabApp
from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient
from tui_collab.events import Connected, Reconnecting


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def retried(pilot: Pilot[None], client: CollabClient, times: int) -> None:
    start = client.attempts
    await wait_for(pilot, lambda: client.attempts >= start + times)


def feed_lines(app: CollabApp, part: str) -> list[str]:
    return [str(line) for line in app.feed.lines if part in str(line)]


async def test_one_feed_line_per_outage_and_one_when_it_is_back(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(auth="open", secret=None, data_dir=tmp_path / "d")
    port = server.port
    monotonic = ManualClock()
    client = CollabClient(
        server.url, user="alice", team="core", backoff=Backoff(base_s=0.02, cap_s=0.05)
    )
    app = CollabApp(client, board="plan", clock=Clock(monotonic=monotonic))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        for outage in (1, 2):
            await server.stop()
            await wait_for(pilot, lambda: isinstance(client.state, Reconnecting))
            await retried(pilot, client, 3)
            assert len(feed_lines(app, "connection lost")) == outage
            monotonic.now += 12
            server = await start_server(
                auth="open", secret=None, data_dir=tmp_path / "d", port=port
            )
            await wait_for(pilot, lambda: isinstance(client.state, Connected), timeout=10)
            assert len(feed_lines(app, "reconnected after 12 s")) == outage
        lost = feed_lines(app, "connection lost")
        assert all(line.endswith("; retrying") for line in lost)
        assert "ConnectionRefusedError" not in " ".join(lost)  # a retry's error: not news
        assert len(feed_lines(app, "signed in")) == 1

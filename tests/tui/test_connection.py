"""What the app says about the connection: outages, final refusals, the token's time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.conftest import StartServer, token
from tests.support.waiting import eventually
from tests.tui.conftest import Notices, wait_for
from tests.tui.scripted import scripted_server
from tui_collab.app import Clock, CollabApp
from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient
from tui_collab.events import Closed, Connected, Reconnecting, StateChanged
from tui_collab.widgets.status import token_notice


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


async def test_a_final_refusal_before_connecting_exits_with_the_detail(
    start_server: StartServer,
) -> None:
    server = await start_server()  # tokens required
    client = CollabClient(server.url, token="not-a-token")
    app = CollabApp(client, board="plan")
    notices = Notices()
    async with app.run_test(size=(120, 36), message_hook=notices):
        await eventually(lambda: app.return_code is not None, what="the app exits")
    assert app.return_code == 1
    state = client.state
    assert isinstance(state, Closed)
    assert state.reason == "unauthorized"
    assert state.detail
    assert [n.message for n in notices.seen if n.severity == "error"] == [state.detail]


async def test_a_final_close_after_connecting_stays_and_shows_the_detail() -> None:
    async with scripted_server() as script:
        client = CollabClient(script.url, user="alice", team="core")
        app = CollabApp(client, board="plan")
        notices = Notices()
        async with app.run_test(size=(120, 36), message_hook=notices) as pilot:
            await wait_for(pilot, lambda: app.grid.mirror is not None)
            detail = "the server refused the token (expired); get a new one with `make token`"
            app._on_state(StateChanged(Closed("unauthorized", detail)))
            await pilot.pause()
            assert app.is_running
            assert app.return_code is None
            rendered = str(app.status_bar.render())
            assert detail in rendered
            assert "r reconnects" not in rendered  # a retry cannot fix it
            assert notices.find(detail)


@pytest.mark.parametrize(
    ("left", "said"),
    [
        (3600, None),
        (301, None),
        (300, "token expires in 5 min"),
        (299, "token expires in 4 min"),
        (60, "token expires in 1 min"),
        (59.5, "token expires in 59 s"),
        (0, "token expired"),
        (-10, "token expired"),
    ],
)
def test_token_notice(left: float, said: str | None) -> None:
    assert token_notice(1_000_000.0 + left, 1_000_000.0) == said
    assert token_notice(None, 1_000_000.0) is None


async def test_the_status_bar_says_when_the_token_runs_out_soon() -> None:
    jwt = token("alice", "core", ttl_s=3600)
    async with scripted_server() as script:
        client = CollabClient(script.url, token=jwt)
        expires_at = client.token_expires_at
        assert expires_at is not None
        now = [datetime.fromtimestamp(expires_at - 600, UTC)]
        app = CollabApp(client, board="plan", clock=Clock(now=lambda: now[0]))
        async with app.run_test(size=(140, 36)) as pilot:
            await wait_for(pilot, lambda: app.grid.mirror is not None)
            assert "token" not in str(app.status_bar.render())
            now[0] = datetime.fromtimestamp(expires_at - 4 * 60 - 30, UTC)
            assert "token expires in 4 min" in str(app.status_bar.render())
            # On screen by the bar's own 1 s refresh, with nothing else happening.
            await wait_for(
                pilot,
                lambda: "token&#160;expires&#160;in&#160;4&#160;min" in app.export_screenshot(),
            )

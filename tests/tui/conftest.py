"""TUI fixtures: a still clock, a fixed theme, and SVG snapshots taken inside async tests."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from pytest_textual_snapshot import SVGImageExtension
from rich.segment import Segment
from syrupy.assertion import SnapshotAssertion
from textual.message import Message
from textual.notifications import Notification, Notify
from textual.pilot import Pilot

from server.app import CollabServer
from tests.conftest import StartServer
from tests.support.waiting import eventually
from tests.tui.scripted import NOW
from tui_collab.app import Clock, CollabApp
from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient
from tui_collab.outbox import Outbox
from tui_collab.widgets.grid import CELL_WIDTH, ROW_HEADER_WIDTH

FIXED_CLOCK = Clock(now=lambda: NOW, monotonic=lambda: 1000.0)


def live_app(url: str, board: str = "plan", outbox: Outbox | None = None) -> CollabApp:
    """Alice against a real server, reconnecting within a fraction of a second."""
    client = CollabClient(
        url,
        user="alice",
        team="core",
        name="Alice",
        backoff=Backoff(base_s=0.05, cap_s=0.2),
        outbox=outbox,
    )
    return CollabApp(client, board=board)


async def open_server(start_server: StartServer) -> CollabServer:
    """A real server in open mode: the app names itself in hello."""
    return await start_server(auth="open", secret=None)


def snapshot_app(url: str, outbox: Outbox | None = None) -> CollabApp:
    """Alice as the snapshots show her: fixed names, clock, theme, place and a slow,
    seeded backoff (so a reconnect countdown reads the same every run)."""
    client = CollabClient(
        url,
        user="alice",
        team="core",
        name="Alice Ng",
        client_id="c-alice",
        backoff=Backoff(base_s=8.0, cap_s=10.0, rng=random.Random(4)),
        outbox=outbox,
    )
    app = CollabApp(client, board="plan", clock=FIXED_CLOCK, where="ws://team.example:9001/ws")
    app.theme = "textual-dark"
    return app


@pytest.fixture
def svg_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(SVGImageExtension)


def cell_segments(app: CollabApp, x: int, y: int) -> list[Segment]:
    """The segments painted for one cell (of a grid not scrolled)."""
    line = app.grid.render_line(1 + y)
    start = ROW_HEADER_WIDTH + x * CELL_WIDTH
    out, at = [], 0
    for segment in line:
        if start <= at < start + CELL_WIDTH:
            out.append(segment)
        at += segment.cell_length
    return out


async def wait_for(
    pilot: Pilot[None],
    predicate: Callable[[], object],
    timeout: float = 5.0,
    what: str = "the app's state",
) -> None:
    """Let the app run until `predicate` holds (bounded), then let it paint."""
    await eventually(predicate, timeout, what, step=lambda: pilot.pause(0.02))
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


class Notices:
    """Every notification the app posts, as a `run_test(message_hook=...)`.

    `run_test` does not paint toasts (notifications=False), but `notify` still posts a
    `Notify` message; this keeps them so a test can read what the person was told.
    """

    def __init__(self) -> None:
        self.seen: list[Notification] = []

    def __call__(self, message: Message) -> None:
        if isinstance(message, Notify):
            self.seen.append(message.notification)

    @property
    def messages(self) -> list[str]:
        return [n.message for n in self.seen]

    def find(self, part: str) -> list[Notification]:
        return [n for n in self.seen if part in n.message]

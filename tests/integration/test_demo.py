"""The demo teammates, watched by an ordinary client on a real open-mode server.

Everything asserted here is what a newcomer would see: teammates online, cursors that
move, typing marks, values landing in cells, someone stepping out and coming back, and
nothing left behind once the demo is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from tests.conftest import StartServer
from tests.support.waiting import eventually
from tui_collab.cells import column_name
from tui_collab.client import CollabClient
from tui_collab.demo import CAST, plausible_value, run_demo
from tui_collab.protocol import (
    CellChanged,
    CellValue,
    Cursors,
    ParticipantJoined,
    ParticipantLeft,
    Presence,
    Typing,
)

TEAM, BOARD = "core", "plan"
TEAMMATES = tuple(member.user for member in CAST[:4])


class Watcher:
    """Everything an observer's client hears about the demo teammates."""

    def __init__(self, client: CollabClient) -> None:
        self.client = client
        self.positions: dict[str, set[tuple[int, int]]] = defaultdict(set)
        self.cells: list[CellChanged] = []
        self.typing: list[Typing] = []
        self.statuses: dict[str, list[str]] = defaultdict(list)
        self.board_moves: dict[str, list[str]] = defaultdict(list)
        self.most_offline_at_once = 0
        self.everyone_arrived = False
        client.on(Cursors, self._cursors)
        client.on(CellChanged, self._cell)
        client.on(Typing, self._typing)
        client.on(Presence, self._presence)
        client.on(ParticipantJoined, lambda e: self.board_moves[e.user].append("joined"))
        client.on(ParticipantLeft, lambda e: self.board_moves[e.user].append("left"))

    def _cursors(self, event: Cursors) -> None:
        for cursor in event.cursors:
            self.positions[cursor.user].add((cursor.x, cursor.y))

    def _cell(self, event: CellChanged) -> None:
        if event.by in TEAMMATES:
            self.cells.append(event)

    def _typing(self, event: Typing) -> None:
        if event.user in TEAMMATES:
            self.typing.append(event)

    def _presence(self, event: Presence) -> None:
        self.statuses[event.user].append(event.status)
        self.everyone_arrived = self.everyone_arrived or self.all_online()
        if self.everyone_arrived:
            offline = sum(self.status(user) == "offline" for user in TEAMMATES)
            self.most_offline_at_once = max(self.most_offline_at_once, offline)

    def status(self, user: str) -> str:
        presence = self.client.presence.get(user)
        return "offline" if presence is None else presence.status

    def all_online(self) -> bool:
        return all(self.status(user) != "offline" for user in TEAMMATES)

    def all_offline(self) -> bool:
        return all(self.status(user) == "offline" for user in TEAMMATES)

    def came_back(self) -> list[str]:
        """Teammates seen online, then offline, then online again."""
        back = []
        for user, seen in self.statuses.items():
            trail = "".join("x" if status == "offline" else "o" for status in seen)
            if "oxo" in trail:
                back.append(user)
        return back


def leftovers(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() - before if t is not current and not t.done()}


async def cancel_and_check_clean(
    demo: asyncio.Task[None], watcher: Watcher, before: set[asyncio.Task[Any]]
) -> float:
    """Cancel the demo; within 2 s it must be gone, its teammates offline, no task left."""
    started = time.monotonic()
    demo.cancel()
    async with asyncio.timeout(2):
        with pytest.raises(asyncio.CancelledError):
            await demo
        await eventually(
            lambda: watcher.all_offline() and not leftovers(before), 2, "teammates gone, no task"
        )
    return time.monotonic() - started


@contextlib.asynccontextmanager
async def demo_running(url: str, seed: int, speed: float) -> AsyncIterator[asyncio.Task[None]]:
    """The demo as a task, cancelled on the way out even when an assertion failed."""
    demo = run_demo(url, TEAM, BOARD, teammates=4, seed=seed, speed=speed)
    task = asyncio.create_task(demo, name="test-demo")
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_demo_team_is_alive_and_cancels_cleanly(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server = await start_server(auth="open", secret=None)
    async with CollabClient(
        server.url, user="olga", team=TEAM, name="Observer", client_id="c-observer"
    ) as observer:
        # The board exists already: the demo must use it, not fail on applied=False.
        ack = await observer.create_board("Plan", 26, 40, board=BOARD)
        assert ack.applied
        board = await observer.join(BOARD)
        watcher = Watcher(observer)
        before = asyncio.all_tasks()
        async with demo_running(server.url, seed=7, speed=20) as demo:
            await eventually(watcher.all_online, 5, "all four teammates online")
            await eventually(
                lambda: set(TEAMMATES) <= set(board.participants), 5, "all four on the board"
            )
            assert {CAST[i].name for i in range(4)} == {
                board.participants[user].name for user in TEAMMATES
            }
            assert set(observer.presence) == {"olga", *TEAMMATES}  # four asked for, four came

            await eventually(
                lambda: all(len(watcher.positions[user]) >= 4 for user in TEAMMATES),
                5,
                "every teammate's cursor at four or more cells",
            )
            await eventually(lambda: bool(watcher.cells), 5, "a teammate writes a cell")
            await eventually(
                lambda: any(event.active for event in watcher.typing), 5, "a typing mark"
            )

            written = watcher.cells[0]
            assert written.value.strip()
            assert written.client == f"c-demo-{written.by}"
            await eventually(
                lambda: board.cells.value(written.x, written.y) is not None, 2, "cell in mirror"
            )
            for user in TEAMMATES:
                for x, y in watcher.positions[user]:
                    assert 0 <= x < 26
                    assert 0 <= y < 40
            # A typing mark is followed by the same user's release of that cell.
            first = next(event for event in watcher.typing if event.active)
            await eventually(
                lambda: any(
                    (e.user, e.x, e.y, e.active) == (first.user, first.x, first.y, False)
                    for e in watcher.typing
                ),
                3,
                "the typing mark cleared",
            )

            took = await cancel_and_check_clean(demo, watcher, before)
            assert took < 2

    complaints = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("tui_collab")
    ]
    assert complaints == []


async def test_teammates_step_out_and_come_back(start_server: StartServer) -> None:
    server = await start_server(auth="open", secret=None)
    async with CollabClient(server.url, user="olga", team=TEAM, name="Observer") as observer:
        watcher = Watcher(observer)
        before = asyncio.all_tasks()
        async with demo_running(server.url, seed=3, speed=30) as demo:
            # Nobody made the board: the first teammate creates it.
            await eventually(lambda: BOARD in observer.boards, 3, "the demo creates its board")
            meta = observer.boards[BOARD]
            assert (meta.width, meta.height, meta.title) == (26, 40, "Plan")
            assert meta.created_by in TEAMMATES
            await observer.join(BOARD)
            await eventually(watcher.all_online, 5, "all four teammates online")

            await eventually(
                lambda: bool(watcher.came_back()), 8, "a teammate leaves and comes back"
            )
            user = watcher.came_back()[0]
            assert "left" in watcher.board_moves[user]
            await eventually(
                lambda: watcher.board_moves[user][-1] == "joined", 3, "back on the board too"
            )
            assert observer.presence[user].connections == 1  # the old client is really gone
            assert watcher.most_offline_at_once == 1  # one steps out at a time

            took = await cancel_and_check_clean(demo, watcher, before)
            assert took < 2


def test_cell_values_are_plausible_and_follow_the_seed() -> None:
    cell_value: TypeAdapter[str] = TypeAdapter(CellValue)

    def draw(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [plausible_value(x, y, None, rng) for x in range(26) for y in range(40)]

    values = draw(1)
    assert values == draw(1)
    assert values != draw(2)
    for value in values:
        assert value
        assert value.strip() == value
        assert value.isprintable()
        cell_value.validate_python(value, strict=True)  # what the server accepts
    assert plausible_value(1, 5, "TODO", random.Random(0)) == "in progress"
    assert plausible_value(1, 5, "review", random.Random(0)) == "done"
    assert [column_name(x) for x in (0, 25, 26)] == ["A", "Z", "AA"]

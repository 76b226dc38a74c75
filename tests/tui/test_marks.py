"""Cell marks: `*` (not saved yet), red `!` (refused), `✎` (a teammate typing).

Marks are never cut off, however long the value; a teammate's ✎ goes 5 s after their
last `typing active:true` (by the grid's injected clock: nobody sleeps here).
"""

from __future__ import annotations

from typing import Any

from syrupy.assertion import SnapshotAssertion

from tests.tui.conftest import FIXED_CLOCK, cell_segments, wait_for
from tests.tui.scripted import NOW, scripted_server
from tui_collab import protocol as p
from tui_collab.app import Clock, CollabApp
from tui_collab.client import CollabClient
from tui_collab.widgets.grid import CELL_WIDTH, TYPING_EXPIRES_S, TYPING_MARK


class ManualClock:
    """Monotonic time that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_app(url: str, clock: Clock = FIXED_CLOCK) -> CollabApp:
    client = CollabClient(url, user="alice", team="core", name="Alice Ng", client_id="c-alice")
    app = CollabApp(client, board="plan", clock=clock)
    app.theme = "textual-dark"
    return app


def painted(app: CollabApp, x: int, y: int) -> str:
    text = "".join(s.text for s in cell_segments(app, x, y))
    assert len(text) == CELL_WIDTH
    return text


def typing(user: str, x: int, y: int, active: bool = True) -> p.Typing:
    return p.Typing(board="plan", user=user, x=x, y=y, active=active)


async def test_the_pending_mark_shows_on_a_long_value() -> None:
    async with scripted_server() as script:
        app = make_app(script.url)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: app.grid.mirror is not None)
            app.save_cell("plan", 4, 4, "reviewed by finance")  # never acked: stays pending
            app.save_cell("plan", 5, 4, "123456789")  # 9 characters: the reported case
            await wait_for(pilot, lambda: app.client.unsaved_count == 2)
            assert painted(app, 4, 4) == "reviewe…* "
            assert painted(app, 5, 4) == "1234567…* "
            app.save_cell("plan", 6, 4, "12345678")  # fits exactly
            await wait_for(pilot, lambda: app.client.unsaved_count == 3)
            assert painted(app, 6, 4) == "12345678* "


async def test_the_typing_mark_shows_on_a_long_value_beside_the_others() -> None:
    async with scripted_server() as script:
        app = make_app(script.url)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: app.grid.mirror is not None)
            await script.push(typing("ada", 0, 3))  # on "Training"
            await script.push(typing("linus", 4, 4))
            app.save_cell("plan", 4, 4, "reviewed by finance")
            await wait_for(pilot, lambda: len(app.grid.typing) == 2 and app.client.unsaved_count)
            assert painted(app, 0, 3) == f"Traini… {TYPING_MARK} "
            app.grid.refused[(4, 4)] = "refused"
            app.grid.refresh()
            assert painted(app, 4, 4) == f"revi…* !{TYPING_MARK} "


async def test_a_teammates_typing_mark_goes_5_s_after_their_last_typing_frame() -> None:
    monotonic = ManualClock()
    async with scripted_server() as script:
        app = make_app(script.url, Clock(now=lambda: NOW, monotonic=monotonic))
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.grid.remote) == 3)
            await script.push(typing("grace", 5, 6))
            await wait_for(pilot, lambda: "grace" in app.grid.typing)
            assert TYPING_MARK in painted(app, 5, 6)

            monotonic.now += TYPING_EXPIRES_S - 0.1
            app.grid.expire_typing()
            assert TYPING_MARK in painted(app, 5, 6)
            await script.push(typing("grace", 5, 6))  # still typing: repeated every 2 s
            await wait_for(pilot, lambda: app.grid.typing_at["grace"] == monotonic.now)
            monotonic.now += TYPING_EXPIRES_S - 0.1
            app.grid.expire_typing()
            assert TYPING_MARK in painted(app, 5, 6)

            monotonic.now += 0.2  # 5 s since the last frame: she stopped, or vanished
            assert TYPING_MARK not in painted(app, 5, 6)  # not painted, even before the tick
            await wait_for(pilot, lambda: "grace" not in app.grid.typing)  # the 1 s tick
            assert "grace" not in app.grid.typing_at


async def test_a_typing_false_clears_the_mark_at_once() -> None:
    async with scripted_server() as script:
        app = make_app(script.url)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.grid.remote) == 3)
            await script.push(typing("grace", 5, 6))
            await wait_for(pilot, lambda: "grace" in app.grid.typing)
            await script.push(typing("grace", 5, 6, active=False))
            await wait_for(pilot, lambda: "grace" not in app.grid.typing)
            assert TYPING_MARK not in painted(app, 5, 6)


async def test_this_user_says_typing_on_open_on_every_change_and_not_on_close() -> None:
    async with scripted_server() as script:
        app = make_app(script.url)
        calls: list[tuple[Any, ...]] = []
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: app.grid.mirror is not None)
            send = app.client.set_typing

            def record(board: str, x: int, y: int, active: bool) -> None:
                calls.append((board, x, y, active))
                send(board, x, y, active)

            app.client.set_typing = record  # type: ignore[method-assign]
            await pilot.press("right", "enter")
            await wait_for(pilot, lambda: app.focused is app.query_one("#editor-input"))
            opened = len(calls)
            assert opened >= 1
            assert set(calls) == {("plan", 1, 0, True)}
            await pilot.press("x", "y", "z")
            await wait_for(pilot, lambda: len(calls) == opened + 3)
            await pilot.press("escape")
            await wait_for(pilot, lambda: calls[-1] == ("plan", 1, 0, False))
            # The client throttles: the server saw one `active: true`, then the `false`.
            await wait_for(
                pilot,
                lambda: (
                    [m.active for m in script.received if isinstance(m, p.TypingSet)]
                    == [True, False]
                ),
            )
            assert calls.count(("plan", 1, 0, False)) == 1


async def test_cell_marks(svg_snapshot: SnapshotAssertion) -> None:
    """A long pending value, a refused edit (red !), a teammate typing in a full cell."""
    async with scripted_server() as script:
        app = make_app(script.url)
        async with app.run_test(size=(100, 20)) as pilot:
            await wait_for(pilot, lambda: len(app.grid.remote) == 3)
            app.save_cell("plan", 4, 4, "reviewed by finance")
            app.save_cell("plan", 4, 1, "blocked")
            await wait_for(pilot, lambda: app.client.unsaved_count == 2)
            refused = app.client.joined["plan"].pending_at(4, 1)
            assert refused is not None
            await script.push(
                p.ErrorMessage(
                    re=refused.op, code=p.ErrorCode.FORBIDDEN, message="column E is locked"
                )
            )
            await script.push(typing("ada", 0, 3))
            await wait_for(
                pilot,
                lambda: (4, 1) in app.grid.refused and "ada" in app.grid.typing,
            )
            assert svg_snapshot == app.export_screenshot()

"""Cell marks: `*` (not saved yet) and `✎` (a teammate typing).

Marks are never cut off, however long the value.
"""

from __future__ import annotations

from tests.tui.conftest import FIXED_CLOCK, cell_segments, wait_for
from tests.tui.scripted import scripted_server
from tui_collab import protocol as p
from tui_collab.app import Clock, CollabApp
from tui_collab.client import CollabClient
from tui_collab.widgets.grid import CELL_WIDTH, TYPING_MARK


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
            assert painted(app, 4, 4) == f"revie…* {TYPING_MARK} "

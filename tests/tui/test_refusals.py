"""An edit the server refuses shows on its cell, in the status bar and as a notice."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from server.app import CollabServer
from tests.conftest import StartServer
from tests.tui.conftest import FIXED_CLOCK, Notices, cell_segments, live_app, wait_for
from tests.tui.scripted import scripted_server
from tui_collab import protocol as p
from tui_collab.app import CollabApp
from tui_collab.client import CollabClient
from tui_collab.outbox import Outbox
from tui_collab.widgets.grid import REFUSED_MARK

QUOTA = "board 'plan' already has 1 non-empty cells; clear some first"


def red_mark(app: CollabApp, x: int, y: int) -> bool:
    marks = [s for s in cell_segments(app, x, y) if s.text == REFUSED_MARK]
    return bool(marks) and all(
        s.style is not None
        and s.style.color is not None
        and s.style.color.triplet is not None
        and s.style.color.triplet.red > 150 > s.style.color.triplet.green
        for s in marks
    )


async def edit(pilot, app: CollabApp, keys: list[str], value: str) -> None:  # type: ignore[no-untyped-def]
    """Move with `keys`, open the editor, replace its text with `value`, save."""
    await pilot.press(*keys, "enter")
    editor = app.query_one("#editor-input", Input)
    await wait_for(pilot, lambda: app.focused is editor)
    editor.value = ""
    await pilot.press(*value, "enter")


async def test_a_refused_edit_marks_the_cell_until_it_changes(start_server: StartServer) -> None:
    server: CollabServer = await start_server(auth="open", secret=None, max_cells_per_board=1)
    app = live_app(server.url)
    notices = Notices()
    async with app.run_test(size=(120, 36), message_hook=notices) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        mirror = app.client.joined["plan"]
        await edit(pilot, app, [], "one")
        await wait_for(pilot, lambda: mirror.cells.value(0, 0) == "one" and not mirror.pending)

        await edit(pilot, app, ["right"], "two")  # B1: the board is full
        await wait_for(pilot, lambda: (1, 0) in app.grid.refused)
        await wait_for(pilot, lambda: app.client.unsaved_count == 0)
        line = f"B1 not saved ('two'): {QUOTA}"
        assert notices.messages == [line]  # once: the worker does not say it again
        assert notices.seen[0].severity == "error"
        assert line in str(app.status_bar.render())
        assert red_mark(app, 1, 0)
        # The cell shows what the server holds (nothing), not the refused value.
        painted = "".join(s.text for s in cell_segments(app, 1, 0))
        assert "two" not in painted
        assert mirror.cells.value(1, 0) == ""
        assert line in app.feed.lines[-1]

        # Any change to the cell (here a teammate's) clears the mark and the bar.
        await edit(pilot, app, ["left"], "")  # A1 emptied: room for one more
        await wait_for(pilot, lambda: mirror.cells.value(0, 0) == "" and not mirror.pending)
        async with CollabClient(server.url, user="bob", team="core") as bob:
            await bob.join("plan")
            await bob.set_cell("plan", 1, 0, "bob's")
            await wait_for(pilot, lambda: (1, 0) not in app.grid.refused)
        assert not red_mark(app, 1, 0)
        assert "not saved" not in str(app.status_bar.render())


async def test_an_error_for_an_op_shows_and_a_saved_retry_clears_it() -> None:
    """Scripted: the server answers an edit with `error`; the next edit there is acked."""
    async with scripted_server() as script:
        client = CollabClient(script.url, user="alice", team="core", client_id="c-alice")
        app = CollabApp(client, board="plan", clock=FIXED_CLOCK)
        notices = Notices()
        async with app.run_test(size=(120, 36), message_hook=notices) as pilot:
            await wait_for(pilot, lambda: app.grid.mirror is not None)
            mirror = app.client.joined["plan"]
            await edit(pilot, app, ["down", "down"], "spare")  # A3 holds "Laptops"
            await wait_for(pilot, lambda: len(mirror.pending) == 1)
            (op,) = mirror.pending.values()
            await script.push(
                p.ErrorMessage(re=op.op, code=p.ErrorCode.FORBIDDEN, message="board is read-only")
            )
            await wait_for(pilot, lambda: (0, 2) in app.grid.refused)
            line = "A3 not saved ('spare'): board is read-only"
            assert notices.messages == [line]
            assert line in str(app.status_bar.render())
            assert red_mark(app, 0, 2)
            painted = "".join(s.text for s in cell_segments(app, 0, 2))
            assert painted.startswith("Laptops")
            assert "spare" not in painted

            await edit(pilot, app, [], "spares")
            await wait_for(pilot, lambda: len(mirror.pending) == 1)
            assert red_mark(app, 0, 2)  # still refused until the server has the new one
            (op,) = mirror.pending.values()
            await script.push(p.Ack(re=op.op, version=10, applied=True))
            await wait_for(pilot, lambda: (0, 2) not in app.grid.refused)
            assert not red_mark(app, 0, 2)
            assert "not saved" not in str(app.status_bar.render())


async def test_an_edit_from_the_outbox_refused_after_a_restart_shows_too(
    start_server: StartServer, tmp_path: Path
) -> None:
    """No worker awaits an edit kept from an earlier run; its refusal still shows."""
    server: CollabServer = await start_server(auth="open", secret=None, max_cells_per_board=1)
    async with CollabClient(server.url, user="bob", team="core") as bob:
        await bob.create_board("Plan", 26, 40, board="plan")
        await bob.join("plan")
        await bob.set_cell("plan", 0, 0, "full")
    outbox = Outbox(tmp_path / "outbox.sqlite3", "alice-key")
    outbox.add(
        p.CellSet(board="plan", x=1, y=0, value="kept", op="o-earlier-1", clock=2, id="o-earlier-1")
    )
    app = live_app(server.url, outbox=outbox)
    notices = Notices()
    async with app.run_test(size=(120, 36), message_hook=notices) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None and (1, 0) in app.grid.refused)
        assert notices.find(f"B1 not saved ('kept'): {QUOTA}")
        assert red_mark(app, 1, 0)
        assert app.client.unsaved_count == 0
        assert outbox.count() == 0
        assert "1 edit from last time will be sent" in " ".join(app.feed.lines)

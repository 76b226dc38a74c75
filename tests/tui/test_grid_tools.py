"""Undo/redo, ranges and the clipboard, clearing, search and column widths, against a
real server, watched by a teammate (a second app, or a plain client)."""

from __future__ import annotations

from contextlib import AsyncExitStack

from textual import events
from textual.pilot import Pilot

from server.app import CollabServer
from tests.conftest import StartServer
from tests.tui.conftest import Notices, live_app, open_server, wait_for
from tui_collab.app import CollabApp
from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient
from tui_collab.mirror import BoardMirror
from tui_collab.protocol import CellsChanged
from tui_collab.widgets.grid import CELL_WIDTH, ROW_HEADER_WIDTH


def bob_app(url: str) -> CollabApp:
    return CollabApp(
        CollabClient(
            url, user="bob", team="core", name="Bob", backoff=Backoff(base_s=0.05, cap_s=0.2)
        ),
        board="plan",
    )


async def started(pilot: Pilot[None]) -> CollabApp:
    app = pilot.app
    assert isinstance(app, CollabApp)
    await wait_for(pilot, lambda: app.grid.mirror is not None and not app.client.pending("plan"))
    return app


def saved(app: CollabApp) -> bool:
    return not app.client.pending("plan")


def note(app: CollabApp) -> str:
    return app.status_bar.note or ""


async def edit(pilot: Pilot[None], text: str) -> None:
    """Type a value into the cursor's cell with the editor, as a person does."""
    await pilot.press("enter", *text, "enter")


async def test_undo_and_redo_a_single_edit(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with (
        app.run_test(size=(120, 36)) as pilot,
        CollabClient(server.url, user="bob", team="core") as bob,
    ):
        await started(pilot)
        board = await bob.join("plan")
        await edit(pilot, "one")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "one")
        app.save_cell("plan", 0, 0, "two")  # what the editor's Enter calls
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "two")
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "one")
        assert note(app) == "A1 undone"
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "")
        await pilot.press("ctrl+z")
        assert note(app) == "nothing to undo"
        await pilot.press("ctrl+y")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "one")
        await pilot.press("ctrl+y")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "two")
        assert note(app) == "A1 redone"
        # A new edit after an undo: nothing left to redo.
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "one")
        app.save_cell("plan", 0, 0, "three")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "three")
        await pilot.press("ctrl+y")
        assert note(app) == "nothing to redo"


async def test_copy_and_paste_a_block_reaches_the_other_app_as_one_batch(
    start_server: StartServer,
) -> None:
    server = await open_server(start_server)
    alice, bob = live_app(server.url), bob_app(server.url)
    notices = Notices()
    async with AsyncExitStack() as stack:
        pilot = await stack.enter_async_context(
            alice.run_test(size=(120, 36), message_hook=notices)
        )
        bob_pilot = await stack.enter_async_context(bob.run_test(size=(120, 36)))
        await started(pilot)
        await started(bob_pilot)
        block = [(x, y, f"{x}-{y}") for y in range(4) for x in range(3)]
        await alice.client.set_cells("plan", block)
        batches: list[int] = []
        bob.client.on(CellsChanged, lambda e: batches.append(len(e.cells)))
        # A 3×4 range from A1, drawn, then copied: as TSV, to the terminal too.  # noqa: RUF003
        await pilot.press("shift+right", "shift+right", *["shift+down"] * 3)
        selection = alice.grid.selection
        assert selection is not None
        assert (selection.width, selection.height) == (3, 4)
        await pilot.press("y")
        assert notices.find("Copied 3×4 cells")  # noqa: RUF001
        assert alice.clipboard_text.splitlines()[0] == "0-0\t1-0\t2-0"
        assert alice.clipboard == alice.clipboard_text  # what went out in OSC 52
        # The cursor moves on from C4 (the range goes), and p pastes the block at F11.
        await pilot.press(*["right"] * 3, *["down"] * 7)
        assert alice.grid.selection is None
        await pilot.press("p")
        bob_board = bob.client.joined["plan"]
        await wait_for(
            bob_pilot, lambda: all(bob_board.cells.value(x + 5, y + 10) == v for x, y, v in block)
        )
        assert batches == [12]  # one cells.set, one cells.changed
        assert notices.find("Pasted 12 cells")
        # The pasted block is selected, and one undo takes all of it back.
        await wait_for(pilot, lambda: saved(alice))
        await pilot.press("ctrl+z")
        await wait_for(
            bob_pilot, lambda: all(bob_board.cells.value(x + 5, y + 10) == "" for x, y, _ in block)
        )
        assert note(alice) == "12 cells undone"
        assert batches == [12, 12]


async def test_undo_leaves_a_cell_a_teammate_changed_since(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with (
        app.run_test(size=(120, 36)) as pilot,
        CollabClient(server.url, user="bob", team="core", name="Bob") as bob,
    ):
        await started(pilot)
        board = await bob.join("plan")
        # A terminal paste on the grid: a block of two cells, one undo step.
        app.post_message(events.Paste("mine\talso mine\n"))
        await wait_for(pilot, lambda: board.cells.value(1, 0) == "also mine" and saved(app))
        await bob.set_cell("plan", 1, 0, "Bob's now")
        mirror = app.client.joined["plan"]
        await wait_for(pilot, lambda: mirror.cells.value(1, 0) == "Bob's now")
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "")
        assert board.cells.value(1, 0) == "Bob's now"
        assert note(app) == "B1 changed by Bob since — not undone"
        assert "B1 changed by Bob since — not undone" in app.feed.lines[-1]
        # Redo brings back what the undo took back, and only that.
        await wait_for(pilot, lambda: saved(app))
        await pilot.press("ctrl+y")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "mine")
        assert board.cells.value(1, 0) == "Bob's now"


async def test_several_cells_changed_since_are_counted(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with (
        app.run_test(size=(120, 36)) as pilot,
        CollabClient(server.url, user="bob", team="core", name="Bob") as bob,
    ):
        await started(pilot)
        board = await bob.join("plan")
        app.post_message(events.Paste("a\nb\nc\nd"))
        await wait_for(pilot, lambda: board.cells.value(0, 3) == "d" and saved(app))
        await bob.set_cells("plan", [(0, 1, "B"), (0, 2, "C"), (0, 3, "D")])
        mirror = app.client.joined["plan"]
        await wait_for(pilot, lambda: mirror.cells.value(0, 3) == "D")
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "")
        assert note(app) == "3 cells changed by others since — not undone"


async def test_delete_clears_a_range_as_one_undo_step(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with (
        app.run_test(size=(120, 36)) as pilot,
        CollabClient(server.url, user="bob", team="core") as bob,
    ):
        await started(pilot)
        board = await bob.join("plan")
        await bob.set_cells("plan", [(x, y, "v") for x in range(3) for y in range(3)])
        mirror = app.client.joined["plan"]
        await wait_for(pilot, lambda: mirror.cells.value(2, 2) == "v")
        await pilot.press("right", "down", "shift+right", "shift+down")
        await pilot.press("delete")
        await wait_for(pilot, lambda: board.cells.value(2, 2) == "" and saved(app))
        left = {(x, y) for x in range(3) for y in range(3) if board.cells.value(x, y)}
        assert left == {(0, 0), (1, 0), (2, 0), (0, 1), (0, 2)}
        assert note(app) == "cleared 4 cells"
        await pilot.press("ctrl+z")
        await wait_for(
            pilot, lambda: all(board.cells.value(x, y) == "v" for x, y in [(1, 1), (2, 2)])
        )
        # Escape drops a range; backspace then clears the cursor's cell alone.
        await pilot.press("shift+left", "escape")
        assert app.grid.selection is None
        await pilot.press("backspace")
        await wait_for(pilot, lambda: board.cells.value(0, 1) == "")
        assert board.cells.value(1, 1) == "v"


async def test_search_walks_the_matches_with_n_and_shift_n(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot)
        await app.client.set_cells(
            "plan", [(3, 0, "Food"), (1, 2, "seafood"), (0, 5, "FOO bar"), (2, 2, "bar")]
        )
        await pilot.press("down")  # from A2: the first match after it is B3
        await pilot.press("slash", *"foo", "enter")
        await wait_for(pilot, lambda: (app.grid.cursor_x, app.grid.cursor_y) == (1, 2))
        assert note(app) == "match 2 of 3 for 'foo'"
        assert app.focused is app.grid
        await pilot.press("n")
        assert (app.grid.cursor_x, app.grid.cursor_y) == (0, 5)
        await pilot.press("n")  # wraps to the top
        assert (app.grid.cursor_x, app.grid.cursor_y) == (3, 0)
        assert note(app) == "match 1 of 3 for 'foo'"
        await pilot.press("N")  # and back round to the bottom
        assert (app.grid.cursor_x, app.grid.cursor_y) == (0, 5)
        assert note(app) == "match 3 of 3 for 'foo'"
        await pilot.press("slash", *"zzz", "enter")
        assert note(app) == "no matches for 'zzz'"
        assert (app.grid.cursor_x, app.grid.cursor_y) == (0, 5)
        # Esc closes the search line without searching.
        await pilot.press("slash", "escape")
        assert not app.query_one("#search").display
        assert app.focused is app.grid


async def test_ctrl_c_copies_on_the_grid_instead_of_quitting(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot)
        app.save_cell("plan", 0, 0, "hello")
        await wait_for(pilot, lambda: saved(app) and app.client.joined["plan"].cells.value(0, 0))
        await pilot.press("ctrl+c")
        assert app.clipboard_text == "hello"
        assert app.is_running
        await pilot.press("down", "ctrl+v")
        await wait_for(pilot, lambda: app.client.joined["plan"].cells.value(0, 1) == "hello")


async def test_a_paste_past_the_edge_is_clipped_and_says_so(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    notices = Notices()
    async with app.run_test(size=(120, 36), message_hook=notices) as pilot:
        mirror: BoardMirror = (await started(pilot)).client.joined["plan"]
        app.grid.move_to(mirror.meta.width - 2, mirror.meta.height - 1)
        app.post_message(events.Paste("a\tb\tc\x07\nd\te\tf\n"))
        await wait_for(pilot, lambda: notices.find("Pasted"))
        assert notices.messages[-1] == "Pasted 2 cells; 4 fell outside the board"
        await wait_for(pilot, lambda: saved(app))
        assert mirror.cells.value(mirror.meta.width - 1, mirror.meta.height - 1) == "b"


async def test_a_column_resize_shows_at_once_and_on_the_other_app(
    start_server: StartServer,
) -> None:
    server: CollabServer = await open_server(start_server)
    alice, bob = live_app(server.url), bob_app(server.url)
    async with AsyncExitStack() as stack:
        pilot = await stack.enter_async_context(alice.run_test(size=(120, 36)))
        bob_pilot = await stack.enter_async_context(bob.run_test(size=(120, 36)))
        await started(pilot)
        await started(bob_pilot)
        await pilot.press("right", "greater_than_sign", "greater_than_sign")
        assert alice.grid.column_width(1) == CELL_WIDTH + 4  # here at once
        await wait_for(bob_pilot, lambda: bob.grid.column_width(1) == CELL_WIDTH + 4)
        await wait_for(
            pilot,
            lambda: (
                [(w.x, w.width) for w in alice.client.joined["plan"].meta.widths or []] == [(1, 14)]
            ),
        )
        # Bob's clicks land on the cells as drawn: column C now starts 4 further right.
        start_c = ROW_HEADER_WIDTH + 2 * CELL_WIDTH + 4
        await bob_pilot.click(bob.grid, offset=(start_c + 1, 1 + 2))
        assert (bob.grid.cursor_x, bob.grid.cursor_y) == (2, 2)
        await bob_pilot.click(bob.grid, offset=(start_c - 2, 1 + 2))
        assert (bob.grid.cursor_x, bob.grid.cursor_y) == (1, 2)
        header = "".join(s.text for s in bob.grid.render_line(0))
        assert header[ROW_HEADER_WIDTH + CELL_WIDTH :].startswith("B".center(14) + "C".center(10))
        # Narrowing stops at the smallest width a column may have.
        await pilot.press(*["less_than_sign"] * 7)
        assert alice.grid.column_width(1) == 3
        assert note(alice) == "column B is already 3 wide"
        await wait_for(bob_pilot, lambda: bob.grid.column_width(1) == 3)
        await alice.client.set_cell("plan", 1, 5, "long value")
        await wait_for(bob_pilot, lambda: bob.client.joined["plan"].cells.value(1, 5))
        row = "".join(s.text for s in bob.grid.render_line(1 + 5))
        start_b = ROW_HEADER_WIDTH + CELL_WIDTH
        assert row[start_b : start_b + 3] == "l… "  # cut to the column, never past it


async def test_a_mouse_drag_selects_a_range_and_a_click_does_not(
    start_server: StartServer,
) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot)
        grid = app.grid

        def at(x: int, y: int) -> tuple[int, int]:
            return ROW_HEADER_WIDTH + x * CELL_WIDTH + 1, 1 + y

        await pilot.mouse_down(grid, offset=at(1, 1))
        await pilot.hover(grid, offset=at(2, 2))
        await pilot.hover(grid, offset=at(2, 3))
        await pilot.mouse_up(grid, offset=at(2, 3))
        selection = grid.selection
        assert selection is not None
        assert (selection.left, selection.top, selection.width, selection.height) == (1, 1, 2, 3)
        assert (grid.cursor_x, grid.cursor_y) == (2, 3)
        await pilot.click(grid, offset=at(4, 4))
        assert grid.selection is None
        assert (grid.cursor_x, grid.cursor_y) == (4, 4)

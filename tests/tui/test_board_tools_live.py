"""The inspector, the value line, import and export, and keys typed faster than the app
paints, in the app against a real server, watched by a teammate's client."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from tests.conftest import StartServer
from tests.tui.conftest import Notices, live_app, open_server, wait_for
from tui_collab.app import CollabApp
from tui_collab.client import CollabClient
from tui_collab.inspector import CellInspector
from tui_collab.screens import PathScreen
from tui_collab.widgets.value_line import ValueLine


async def started(pilot: Pilot[None]) -> CollabApp:
    app = pilot.app
    assert isinstance(app, CollabApp)
    await wait_for(pilot, lambda: app.grid.mirror is not None and not app.client.pending("plan"))
    return app


def value_line(app: CollabApp) -> str:
    line = app.query_one(ValueLine)
    return line.line(200).plain


async def test_the_inspector_restores_an_earlier_value(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with (
        app.run_test(size=(120, 36)) as pilot,
        CollabClient(server.url, user="bob", team="core", name="Bob") as bob,
    ):
        await started(pilot)
        board = await bob.join("plan")
        await pilot.press("enter", *"first draft", "enter")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "first draft")
        await bob.set_cell("plan", 0, 0, "Bob's rewrite")
        await wait_for(pilot, lambda: "Bob's rewrite" in value_line(app))
        assert "by Bob" in value_line(app)

        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, CellInspector))
        inspector = app.screen
        assert isinstance(inspector, CellInspector)
        await wait_for(pilot, lambda: inspector.entries is not None)
        assert [e.value for e in inspector.earlier] == ["first draft"]
        await wait_for(pilot, lambda: inspector.query_one(OptionList).has_focus)
        await pilot.press("enter")  # the list's first row: the earlier value

        await wait_for(pilot, lambda: board.cells.value(0, 0) == "first draft")
        assert not isinstance(app.screen, CellInspector)
        assert app.status_bar.note == "A1 restored to an earlier value"
        # A restore is an edit like any other: one undo takes it back.
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: board.cells.value(0, 0) == "Bob's rewrite")


async def test_keys_typed_before_the_app_catches_up_land_where_meant(
    start_server: StartServer,
) -> None:
    """Keys a terminal delivers in one burst (a fast typist over SSH, a pasted macro):
    every one is read in order, none is left in an editor that already closed."""
    server = await open_server(start_server)
    app = live_app(server.url)
    async with (
        app.run_test(size=(120, 36)) as pilot,
        CollabClient(server.url, user="bob", team="core") as bob,
    ):
        await started(pilot)
        board = await bob.join("plan")
        burst = ["enter", "a", "b", "enter", "right", "enter", "c", "enter", "down", "f2", "d"]
        burst += ["escape", "left", "enter", "e", "enter"]
        for key in burst:  # all queued at once: nothing waits for a paint in between
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        await wait_for(
            pilot,
            lambda: (
                (board.cells.value(0, 0), board.cells.value(1, 0), board.cells.value(0, 1))
                == ("ab", "c", "e")
            ),
            what="every cell of the burst",
        )
        assert board.cells.value(1, 1) == ""  # Esc cancelled the "d"
        assert not app.query_one("#editor").display


async def test_import_and_export_from_the_app(start_server: StartServer, tmp_path: Path) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    notices = Notices()
    source = tmp_path / "costs.csv"
    source.write_text('Item,Cost\nServers,"1,200"\nLaptops,900\n', encoding="utf-8")
    async with (
        app.run_test(size=(120, 36), message_hook=notices) as pilot,
        CollabClient(server.url, user="bob", team="core") as bob,
    ):
        await started(pilot)
        board = await bob.join("plan")
        await pilot.press("right", "down")  # B2: an import lands at the cursor
        await choose_path(pilot, app.action_import, str(source))
        await wait_for(pilot, lambda: board.cells.value(2, 3) == "900")
        assert board.cells.value(1, 1) == "Item"
        assert board.cells.value(2, 2) == "1,200"
        assert notices.find("Imported 6 cells from costs.csv at B2")
        await pilot.press("ctrl+z")  # the whole import is one step
        await wait_for(pilot, lambda: not board.cells.values())

        await pilot.press("ctrl+y")
        await wait_for(pilot, lambda: len(board.cells.values()) == 6)
        target = tmp_path / "out.csv"
        target.write_text("keep me\n", encoding="utf-8")
        await choose_path(pilot, app.action_export_board, str(target))
        # The file exists: the first Enter only warns; the second replaces it.
        assert isinstance(app.screen, PathScreen)
        assert target.read_text(encoding="utf-8") == "keep me\n"
        await pilot.press("enter")
        await wait_for(pilot, lambda: target.read_text(encoding="utf-8") != "keep me\n")
        assert target.read_text(encoding="utf-8") == (
            ',,\n,Item,Cost\n,Servers,"1,200"\n,Laptops,900\n'
        )


async def test_an_import_the_protocol_refuses_sends_nothing(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    notices = Notices()
    source = tmp_path / "bad.tsv"
    source.write_text("fine\tok\nalso fine\tbell\x07here\n", encoding="utf-8")
    async with (
        app.run_test(size=(120, 36), message_hook=notices) as pilot,
        CollabClient(server.url, user="bob", team="core") as bob,
    ):
        await started(pilot)
        board = await bob.join("plan")
        await choose_path(pilot, app.action_import, str(source))
        await wait_for(pilot, lambda: notices.find("not imported"))
        (refusal,) = notices.find("not imported")
        assert refusal.message == (
            "bad.tsv not imported: row 2, column 2: contains the control character U+0007, "
            "which a cell cannot hold"
        )
        assert refusal.severity == "error"
        assert board.version == 0
        assert not app.client.pending("plan")


async def choose_path(pilot: Pilot[None], open_prompt: object, path: str) -> None:
    """Open a file prompt with `open_prompt`, type `path` over its default, press Enter."""
    app = pilot.app
    assert callable(open_prompt)
    open_prompt()
    await wait_for(pilot, lambda: isinstance(app.screen, PathScreen))
    field = app.screen.query_one(Input)
    field.value = path
    await pilot.press("enter")

"""The app against a real server, driven by keys, watched by a second real client."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import StartServer
from tests.tui.conftest import live_app, open_server, wait_for
from tui_collab.client import CollabClient
from tui_collab.events import Connected, Reconnecting
from tui_collab.widgets.grid import CELL_WIDTH, ROW_HEADER_WIDTH


async def test_arrow_keys_move_the_cursor_for_everyone(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        async with CollabClient(server.url, user="bob", team="core") as bob:
            board = await bob.join("plan")
            await pilot.press("right", "right", "down", "l", "j")
            await wait_for(pilot, lambda: board.cursors.get("alice") == (3, 2))
            assert (app.grid.cursor_x, app.grid.cursor_y) == (3, 2)
            await pilot.click(app.grid, offset=(ROW_HEADER_WIDTH + 5 * CELL_WIDTH + 2, 1 + 4))
            await wait_for(pilot, lambda: board.cursors.get("alice") == (5, 4))


async def test_a_teammates_cursor_shows_in_their_colour_with_a_label(
    start_server: StartServer,
) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        async with CollabClient(server.url, user="bob", team="core", name="Bob") as bob:
            await bob.join("plan")
            bob.move_cursor("plan", 4, 3)
            await wait_for(
                pilot,
                lambda: (
                    "bob" in app.grid.remote
                    and (app.grid.remote["bob"].x, app.grid.remote["bob"].y) == (4, 3)
                ),
            )
            colour = app.client.joined["plan"].participants["bob"].color
            cursor_line = app.grid.render_line(1 + 3)
            label_line = app.grid.render_line(1 + 2)
            cursor_cells = [
                s
                for s in cursor_line
                if s.style
                and s.style.bgcolor
                and s.style.bgcolor.triplet
                and s.style.bgcolor.triplet.hex == colour
            ]
            assert len(cursor_cells) == 1
            assert cursor_cells[0].cell_length == CELL_WIDTH
            label = [s for s in label_line if s.text.strip() == "Bob"]
            assert label
            assert label[0].style is not None
            assert label[0].style.color is not None
            assert label[0].style.color.triplet is not None
            assert label[0].style.color.triplet.hex == colour


async def test_enter_value_enter_reaches_the_other_client(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        async with CollabClient(server.url, user="bob", team="core") as bob:
            board = await bob.join("plan")
            await pilot.press("down", "enter")
            await wait_for(pilot, lambda: app.query_one("#editor").display)
            await wait_for(pilot, lambda: board.cursors.get("alice") == (0, 1))
            await pilot.press(*"ship it", "enter")
            await wait_for(pilot, lambda: board.cells.value(0, 1) == "ship it")
            assert board.cells.get(0, 1).by == "alice"  # type: ignore[union-attr]
            await wait_for(pilot, lambda: app.client.pending("plan") == [])
            # Esc cancels: nothing is sent.
            await pilot.press("enter", *"nope", "escape")
            # A delay is the point: nothing may arrive within it.
            await asyncio.sleep(0.2)
            assert board.cells.value(0, 1) == "ship it"
            assert not app.query_one("#editor").display


async def test_s_changes_status_on_the_server(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)

    def status() -> str | None:
        member = server.presence.member("core", "alice")
        return None if member is None else member.status

    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        await pilot.press("s")
        await wait_for(pilot, lambda: status() == "busy")
        await pilot.press("s")
        await wait_for(pilot, lambda: status() == "away")


async def test_survives_the_server_going_away_and_coming_back(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(auth="open", secret=None, data_dir=tmp_path / "d")
    port = server.port
    app = live_app(server.url)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        await pilot.press("enter", *"before", "enter")
        await wait_for(
            pilot,
            lambda: (
                app.client.pending("plan") == []
                and app.client.joined["plan"].cells.value(0, 0) == "before"
            ),
        )
        await server.stop()
        await wait_for(pilot, lambda: isinstance(app.client.state, Reconnecting))
        rendered = app.query_one("#status").render()
        assert "reconnecting in" in str(rendered)
        assert "edits will sync" in str(rendered)
        await pilot.press("down", "enter", *"offline", "enter")  # typed while the server is down
        await wait_for(pilot, lambda: len(app.client.pending("plan")) == 1)

        await start_server(auth="open", secret=None, data_dir=tmp_path / "d", port=port)
        await wait_for(
            pilot,
            lambda: isinstance(app.client.state, Connected) and app.client.pending("plan") == [],
            timeout=10,
        )
        assert "connected" in str(app.query_one("#status").render())
        async with CollabClient(app.client.urls[0], user="bob", team="core") as bob:
            board = await bob.join("plan")
            assert (board.cells.value(0, 0), board.cells.value(0, 1)) == ("before", "offline")

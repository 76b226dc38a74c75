"""Follow mode, board switching, and user text that looks like markup."""

from __future__ import annotations

from tests.conftest import StartServer
from tests.tui.conftest import live_app, open_server, wait_for
from tui_collab.client import CollabClient
from tui_collab.screens import PickScreen


async def test_follow_keeps_a_teammate_in_view_until_a_key(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(80, 20)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        async with CollabClient(server.url, user="bob", team="core", name="Bob") as bob:
            await bob.join("plan")
            await wait_for(pilot, lambda: "bob" in app.client.joined["plan"].participants)
            await pilot.press("f")
            await wait_for(
                pilot, lambda: isinstance(app.screen, PickScreen) and app.focused is not None
            )
            await pilot.press("enter")  # Bob is the only one to follow
            await wait_for(pilot, lambda: app.grid.follow == "bob")
            assert "following Bob" in str(app.status_bar.render())
            bob.move_cursor("plan", 20, 35)  # far outside the 80x20 view
            await wait_for(
                pilot, lambda: app.grid.scroll_offset.y > 20 and app.grid.scroll_offset.x >= 10 * 10
            )
            await pilot.press("escape")  # any key stops following
            await wait_for(pilot, lambda: app.grid.follow is None)
            bob.move_cursor("plan", 0, 0)
            await wait_for(
                pilot, lambda: (app.grid.remote["bob"].x, app.grid.remote["bob"].y) == (0, 0)
            )
            assert app.grid.scroll_offset.y > 20  # the view stayed where it was


async def test_b_creates_and_switches_boards(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        await pilot.press("b")
        await wait_for(
            pilot, lambda: isinstance(app.screen, PickScreen) and app.focused is not None
        )
        await pilot.press("tab", *"Q4 Roadmap!", "enter")
        await wait_for(
            pilot,
            lambda: (
                app.board_id == "q4-roadmap"
                and app.grid.mirror is not None
                and app.grid.mirror.meta.title == "Q4 Roadmap!"
            ),
        )
        boards = await server.store.list_boards("core")
        assert sorted(b.id for b in boards) == ["plan", "q4-roadmap"]
        assert "plan" not in app.client.joined  # left the old board
        await pilot.press("b")
        await wait_for(
            pilot, lambda: isinstance(app.screen, PickScreen) and app.focused is not None
        )
        await pilot.press("enter")  # boards sorted by title: Plan first, highlighted
        await wait_for(
            pilot,
            lambda: (
                app.board_id == "plan"
                and app.grid.mirror is not None
                and app.grid.mirror.id == "plan"
            ),
        )


async def test_user_text_is_never_markup(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        async with CollabClient(
            server.url, user="eve", team="core", name="[b]Eve[/b] [@click=quit]x[/]"
        ) as eve:
            await eve.create_board("[red]Pwned[/red]", 5, 5, board="trap")
            await eve.join("plan")
            await eve.set_cell("plan", 0, 0, "[i]z[/i]")
            eve.move_cursor("plan", 1, 1)
            await wait_for(
                pilot,
                lambda: (
                    app.client.joined["plan"].cells.value(0, 0) != "" and "eve" in app.grid.remote
                ),
            )
            await wait_for(
                pilot,
                lambda: "[b]Eve[/b]" in app.export_screenshot().replace("&#160;", " "),
                what="eve's name on screen",
            )
            screen = app.export_screenshot()
            # Square brackets survive as text; nothing was interpreted.
            assert "[b]Eve[/b]" in screen.replace("&#160;", " ")
            assert "[i]z[/i]" in screen.replace("&#160;", " ")
            assert "[red]Pwned[/red]" in str(app.query_one("#boards").render())
            assert app.is_running  # the [@click=quit] name did not act

"""Small terminals: a notice instead of an empty grid below the smallest usable size,
and `z` to give the grid the sidebar's and the feed's room."""

from __future__ import annotations

from syrupy.assertion import SnapshotAssertion
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tests.conftest import StartServer
from tests.tui.conftest import live_app, open_server, snapshot_app, wait_for
from tests.tui.scripted import scripted_server
from tui_collab.screen_fit import MIN_SIZE, MIN_SIZE_ZOOMED
from tui_collab.screens import HELP


async def test_too_small_terminal(svg_snapshot: SnapshotAssertion) -> None:
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(40, 12)) as pilot:
            await wait_for(pilot, lambda: len(app.grid.remote) == 3)
            notice = app.query_one("#too-small")
            assert notice.display
            assert not app.query_one("#main").display
            assert str(notice.render()) == (
                "terminal too small (need 60×15)\nz hides the sidebar and the feed"  # noqa: RUF001
            )
            assert svg_snapshot == app.export_screenshot()


async def test_the_grid_comes_back_when_the_terminal_grows(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(40, 12)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        assert app.has_class("-too-small")
        await pilot.press("z")  # zoomed, 40x12 is enough
        await wait_for(pilot, lambda: not app.has_class("-too-small"))
        assert app.grid.size.height > 3
        await pilot.resize_terminal(MIN_SIZE_ZOOMED[0] - 1, 12)
        await wait_for(pilot, lambda: app.has_class("-too-small"))
        assert "need 30×8" in str(app.query_one("#too-small").render())  # noqa: RUF001
        await pilot.press("z")
        await pilot.resize_terminal(*MIN_SIZE)
        await wait_for(pilot, lambda: not app.has_class("-too-small") and app.grid.size.height)
        assert app.focused is app.grid
        await pilot.press("down")  # keys reach the grid again
        await wait_for(pilot, lambda: app.grid.cursor_y == 1)


async def test_z_hides_the_sidebar_and_the_feed(start_server: StartServer) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        before = app.grid.size
        shown = {(k.key, k.description) for k in app.query_one(Footer).query(FooterKey)}
        assert ("z", "Zoom") in shown
        assert "z hides the sidebar and the feed" in HELP
        await pilot.press("z")
        await wait_for(pilot, lambda: app.grid.size.width > before.width)
        assert not app.query_one("#sidebar").display
        assert not app.query_one("#feed").display
        assert app.grid.size.height > before.height
        await pilot.press("enter", "z", "enter")  # in the editor, z is a letter
        await wait_for(pilot, lambda: app.client.joined["plan"].cells.value(0, 0) == "z")
        assert app.zoomed
        await pilot.press("z")
        await wait_for(pilot, lambda: app.grid.size == before)
        assert app.query_one("#sidebar").display
        assert app.query_one("#feed").display

"""Pixels: the main screen, the reconnecting bar, help, and a narrow terminal.

Run `pytest tests/tui --snapshot-update` after a deliberate change, then look at every
SVG before committing it.
"""

from __future__ import annotations

from syrupy.assertion import SnapshotAssertion

from tests.tui.conftest import snapshot_app, wait_for
from tests.tui.scripted import scripted_server
from tui_collab import protocol as p
from tui_collab.app import CollabApp
from tui_collab.events import Reconnecting


async def _busy_board(app: CollabApp, pilot, script) -> None:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: len(app.grid.remote) == 3)
    await script.push(p.Typing(board="plan", user="grace", x=5, y=6, active=True))
    await pilot.press("down", "down", "down", "down", "right", "right", "right", "enter")
    await pilot.press(*"review")
    await pilot.press("enter")
    await wait_for(
        pilot, lambda: app.client.pending("plan") and app.grid.typing.get("grace") == (5, 6)
    )


async def test_main_screen(svg_snapshot: SnapshotAssertion) -> None:
    """7 members at a height that needs '+N more', 3 cursors, a typing mark, a pending edit."""
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(120, 20)) as pilot:
            await _busy_board(app, pilot, script)
            assert svg_snapshot == app.export_screenshot()
            # The SVG puts each differently styled run in its own <text>, the spaces
            # between them leading the next one (&#160;): they are there, and painted.
            assert "Ops rota  Linus" in str(app.query_one("#boards").render())
            assert "● connected   1 unsaved" in str(app.status_bar.render())


async def test_narrow_terminal(svg_snapshot: SnapshotAssertion) -> None:
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(80, 24)) as pilot:
            await _busy_board(app, pilot, script)
            assert svg_snapshot == app.export_screenshot()


async def test_help_screen(svg_snapshot: SnapshotAssertion) -> None:
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.grid.remote) == 3)
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen")
            assert svg_snapshot == app.export_screenshot()


async def test_reconnecting_status_bar(svg_snapshot: SnapshotAssertion) -> None:
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        pilot_cm = app.run_test(size=(100, 24))
        pilot = await pilot_cm.__aenter__()
        await wait_for(pilot, lambda: len(app.grid.remote) == 3)
    # The server is gone: the client waits before its first retry.
    try:
        await wait_for(pilot, lambda: isinstance(app.client.state, Reconnecting))
        assert svg_snapshot == app.export_screenshot()
    finally:
        await pilot_cm.__aexit__(None, None, None)


async def test_selected_range(svg_snapshot: SnapshotAssertion) -> None:
    """A 3 by 3 range over values, a teammate's cursor and empty cells, with the status
    bar's note: the range must read as one block, apart from the cursor's cell."""
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(120, 20)) as pilot:
            await wait_for(pilot, lambda: len(app.grid.remote) == 3)
            await pilot.press("right", "down", "shift+right", "shift+right", "shift+down")
            await pilot.press("shift+down", "greater_than_sign")
            await wait_for(pilot, lambda: app.grid.column_width(3) == 12)
            assert svg_snapshot == app.export_screenshot()

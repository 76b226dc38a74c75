"""`q` with unsaved edits asks: wait for them, keep them for next time, or discard them.

The scripted server never acknowledges an edit unless the test pushes the `ack`, so
edits stay unsaved for exactly as long as a test wants.
"""

from __future__ import annotations

from pathlib import Path

from syrupy.assertion import SnapshotAssertion
from textual.widgets import Button, Label

from tests.support.waiting import eventually
from tests.tui.conftest import Notices, snapshot_app, wait_for
from tests.tui.scripted import ScriptedServer, scripted_server
from tui_collab import protocol as p
from tui_collab.app import CollabApp
from tui_collab.outbox import Outbox
from tui_collab.screens import QuitScreen


async def three_edits(app: CollabApp, pilot) -> None:  # type: ignore[no-untyped-def]
    """C5, D5, E5 edited (what Enter in the editor starts; keys are slow in tests)."""
    await wait_for(pilot, lambda: app.grid.mirror is not None)
    for x, value in enumerate(("470", "ordered", "Q4"), start=2):
        app.save_cell("plan", x, 4, value)
    await wait_for(pilot, lambda: app.client.unsaved_count == 3)


async def ack_one(script: ScriptedServer, app: CollabApp) -> None:
    op = next(iter(app.client.joined["plan"].pending.values()))
    await script.push(p.Ack(re=op.op, version=10, applied=True))


def headline(app: CollabApp) -> str:
    return str(app.screen.query_one("#dialog-title", Label).render())


async def test_q_with_nothing_unsaved_quits_at_once() -> None:
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.grid.mirror is not None)
            await pilot.press("q")
            await eventually(lambda: app.return_code is not None, what="the app exits")
        assert app.return_code == 0
        assert app.exit_message == ""


async def test_quit_prompt(svg_snapshot: SnapshotAssertion, tmp_path: Path) -> None:
    async with scripted_server() as script:
        app = snapshot_app(script.url, Outbox(tmp_path / "outbox.sqlite3", "k"))
        async with app.run_test(size=(100, 30)) as pilot:
            await three_edits(app, pilot)
            await pilot.press("q")
            await wait_for(
                pilot, lambda: isinstance(app.screen, QuitScreen) and app.focused is not None
            )
            assert headline(app) == "3 edits not saved yet"
            assert [str(b.label) for b in app.screen.query(Button)] == [
                "Wait for them",
                "Keep for next time",
                "Discard 3 edits",
            ]
            assert svg_snapshot == app.export_screenshot()


async def test_discard_drops_them_and_says_how_many(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3", "k")
    async with scripted_server() as script:
        app = snapshot_app(script.url, outbox)
        notices = Notices()
        async with app.run_test(size=(100, 30), message_hook=notices) as pilot:
            await three_edits(app, pilot)
            assert outbox.count() == 3
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
            await pilot.click("#discard")
            await eventually(lambda: app.return_code is not None, what="the app exits")
        assert app.exit_message == "discarded 3 unsaved edits"
        assert notices.find("discarded 3 unsaved edits")
        assert app.client.unsaved_count == 0
        assert outbox.count() == 0


async def test_keep_quits_with_them_in_the_outbox(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with scripted_server() as script:
        app = snapshot_app(script.url, Outbox(path, "k"))
        async with app.run_test(size=(100, 30)) as pilot:
            await three_edits(app, pilot)
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
            await pilot.click("#keep")
            await eventually(lambda: app.return_code is not None, what="the app exits")
        assert app.return_code == 0
        assert app.exit_message.startswith("kept 3 unsaved edits")
    # The next start finds them.
    assert sorted(op.value for op in Outbox(path, "k").load()) == ["470", "Q4", "ordered"]


async def test_without_an_outbox_keeping_is_not_offered() -> None:
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(100, 30)) as pilot:
            await three_edits(app, pilot)
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
            labels = [str(b.label) for b in app.screen.query(Button)]
            assert labels == ["Wait for them", "Quit anyway (loses 3)", "Discard 3 edits"]
            assert "Keep" not in " ".join(labels)
            await pilot.click("#keep")
            await eventually(lambda: app.return_code is not None, what="the app exits")
        assert app.exit_message == "quit with 3 unsaved edits, lost (this client keeps no outbox)"


async def test_wait_counts_down_and_quits_once_all_are_saved() -> None:
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        notices = Notices()
        async with app.run_test(size=(100, 30), message_hook=notices) as pilot:
            await three_edits(app, pilot)
            await pilot.press("q")
            await wait_for(
                pilot, lambda: isinstance(app.screen, QuitScreen) and app.focused is not None
            )
            await pilot.press("enter")  # "Wait for them" has the focus
            await wait_for(pilot, lambda: headline(app) == "Waiting for the server: 3 left")
            # Meanwhile the other two choices stay on offer, with the count.
            buttons = {b.id: b for b in app.screen.query(Button)}
            assert buttons["wait"].disabled
            assert not buttons["keep"].disabled
            assert not buttons["discard"].disabled
            await ack_one(script, app)
            await wait_for(pilot, lambda: headline(app) == "Waiting for the server: 2 left")
            assert str(buttons["discard"].label) == "Discard 2 edits"
            await ack_one(script, app)
            await wait_for(pilot, lambda: headline(app) == "Waiting for the server: 1 left")
            assert app.is_running
            await ack_one(script, app)
            await eventually(lambda: app.return_code is not None, what="the app exits")
        assert app.return_code == 0
        assert app.exit_message == "all edits saved"


async def test_escape_goes_back_to_the_board_and_stops_waiting() -> None:
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(100, 30)) as pilot:
            await three_edits(app, pilot)
            await pilot.press("q")
            await wait_for(
                pilot, lambda: isinstance(app.screen, QuitScreen) and app.focused is not None
            )
            await pilot.press("enter", "escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, QuitScreen))
            for op in list(app.client.joined["plan"].pending.values()):
                await script.push(p.Ack(re=op.op, version=10, applied=True))
            await wait_for(pilot, lambda: app.client.unsaved_count == 0)
            await pilot.pause(0.1)  # a delay is the point: the app must not quit within it
            assert app.is_running  # saved, but nobody asked to quit any more
            assert app.return_code is None


async def test_an_edit_refused_while_waiting_is_in_the_exit_message() -> None:
    async with scripted_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(100, 30)) as pilot:
            await three_edits(app, pilot)
            await pilot.press("q")
            await wait_for(
                pilot, lambda: isinstance(app.screen, QuitScreen) and app.focused is not None
            )
            await pilot.press("enter")
            pending = list(app.client.joined["plan"].pending.values())
            await script.push(
                p.ErrorMessage(re=pending[0].op, code=p.ErrorCode.FORBIDDEN, message="read-only")
            )
            for op in pending[1:]:
                await script.push(p.Ack(re=op.op, version=10, applied=True))
            await eventually(lambda: app.return_code is not None, what="the app exits")
        assert app.exit_message == "all other edits saved; refused: C5 not saved ('470'): read-only"

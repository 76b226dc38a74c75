"""The notes pane against a real server: two apps typing into the same line at once,
teammates' carets in their colours, undo of one's own changes only, and offline edits
merged on reconnect."""

from __future__ import annotations

from contextlib import AsyncExitStack

from rich.segment import Segment
from textual import events
from textual.pilot import Pilot

from tests.conftest import StartServer
from tests.support.proxy import Proxy
from tests.tui.conftest import Notices, live_app, open_server, wait_for
from tui_collab.app import CollabApp
from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient
from tui_collab.events import Connected
from tui_collab.widgets.notes import NotesArea


def teammate_app(url: str) -> CollabApp:
    return CollabApp(
        CollabClient(
            url, user="bob", team="core", name="Bob", backoff=Backoff(base_s=0.05, cap_s=0.2)
        ),
        board="plan",
    )


async def open_notes(pilot: Pilot[None]) -> NotesArea:
    """Wait for the board, press t, wait for the notes to open with the keys in them."""
    app = pilot.app
    assert isinstance(app, CollabApp)
    await wait_for(pilot, lambda: app.grid.mirror is not None)
    await pilot.press("t")
    area = app.notes_pane.area
    await wait_for(pilot, lambda: app.notes is not None and not area.read_only, what="notes open")
    assert app.focused is area
    return area


def painted_with(area: NotesArea, row: int, colour: str) -> list[Segment]:
    """The segments of a (short, unwrapped) line painted in `colour`, as text or behind it."""
    strip = area.render_line(row - int(area.scroll_offset.y))
    return [
        s
        for s in strip
        if s.style is not None
        and any(
            c is not None and c.triplet is not None and c.triplet.hex == colour
            for c in (s.style.color, s.style.bgcolor)
        )
    ]


async def test_two_apps_typing_into_one_line_at_once_both_keep_their_words(
    start_server: StartServer,
) -> None:
    server = await open_server(start_server)
    alice, bob = live_app(server.url), teammate_app(server.url)
    async with AsyncExitStack() as stack:
        pilot = await stack.enter_async_context(alice.run_test(size=(140, 30)))
        bob_pilot = await stack.enter_async_context(bob.run_test(size=(140, 30)))
        alice_area, bob_area = await open_notes(pilot), await open_notes(bob_pilot)
        await pilot.press(*"todo: ", "enter", *"later", "up", "end")
        await wait_for(bob_pilot, lambda: bob_area.text == "todo: \nlater", what="bob sees it")
        await bob_pilot.press("end")
        # Both type at the end of the same line, key for key, before either sees the other.
        for a, b in zip("ALPHA", "omega", strict=True):
            await pilot.press(a)
            await bob_pilot.press(b)
        await wait_for(
            pilot,
            lambda: alice_area.text == bob_area.text and len(alice_area.text) == 22,
            what="both panes hold both words",
        )
        assert alice_area.text in ("todo: ALPHAomega\nlater", "todo: omegaALPHA\nlater")
        assert alice.notes is not None
        assert bob.notes is not None
        assert str(alice.notes.text) == str(bob.notes.text) == alice_area.text
        # Each sees the other's caret, after their word, in their board colour, named.
        participants = alice.client.joined["plan"].participants
        for area, other, pilot_of in ((alice_area, "bob", pilot), (bob_area, "alice", bob_pilot)):
            colour = participants[other].color
            word_end = alice_area.text.index("omega" if other == "bob" else "ALPHA") + 5

            def placed(area: NotesArea = area, other: str = other, at: int = word_end) -> bool:
                caret = area.remote.get(other)
                return caret is not None and caret.head == (0, at)

            await wait_for(pilot_of, placed, what=f"{other}'s caret after their word")
            caret = area.remote[other]
            assert caret.colour == colour
            painted = painted_with(area, 0, colour)
            assert any(s.text.startswith(caret.name) for s in painted), painted


async def test_undo_takes_back_only_this_users_changes_and_the_notes_follow_the_board(
    start_server: StartServer,
) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    async with (
        app.run_test(size=(140, 30)) as pilot,
        CollabClient(server.url, user="bob", team="core", name="Bob") as bob,
    ):
        area = await open_notes(pilot)
        theirs = await bob.open_notes("plan")
        await pilot.press(*"mine")
        await wait_for(pilot, lambda: str(theirs.text) == "mine", what="bob has alice's text")
        theirs.insert(4, " theirs")
        await wait_for(pilot, lambda: area.text == "mine theirs")
        # Keys close together undo as one step (how close is the machine's business
        # here): undo until nothing of hers is left, then redo until all of it is back.
        await press_until(pilot, "ctrl+z", "nothing of yours to undo in the notes")
        assert area.text == " theirs"
        await wait_for(pilot, lambda: str(theirs.text) == " theirs", what="undo reached bob")
        await press_until(pilot, "ctrl+y", "nothing of yours to redo in the notes")
        assert area.text == "mine theirs"
        await wait_for(pilot, lambda: str(theirs.text) == "mine theirs", what="redo reached bob")
        # Another board: its notes replace these in the open pane.
        await bob.create_board("Ops", 5, 5, board="ops")
        ops = await bob.open_notes("ops")
        ops.insert(0, "on ops")
        app.open_board("ops")
        await wait_for(pilot, lambda: area.text == "on ops", what="the ops notes shown")
        assert title(app).startswith("NOTES · Ops")
        # Esc: back to the grid, and her caret goes from Bob's notes.
        await wait_for(pilot, lambda: "alice" in ops.carets(), what="bob sees her caret")
        await pilot.press("escape")
        assert not app.notes_pane.display
        assert app.focused is app.grid
        await wait_for(pilot, lambda: "alice" not in ops.carets(), what="her caret gone")
        app.open_board("plan")  # with the pane closed, the old notes close too
        await wait_for(pilot, lambda: app.board_id == "plan" and app.notes is None)
        await pilot.press("t")
        await wait_for(pilot, lambda: area.text == "mine theirs", what="the plan notes again")


async def test_edits_made_offline_are_kept_and_merged_on_reconnect(
    start_server: StartServer,
) -> None:
    """Alice's link goes down (her app alone) while Bob keeps typing; both converge."""
    server = await open_server(start_server)
    link = Proxy("127.0.0.1", server.port)
    await link.start()
    app = live_app(link.url())
    try:
        async with (
            app.run_test(size=(140, 30)) as pilot,
            CollabClient(server.url, user="bob", team="core", name="Bob") as bob,
        ):
            area = await open_notes(pilot)
            theirs = await bob.open_notes("plan")
            await pilot.press(*"shared", "enter")
            await wait_for(pilot, lambda: str(theirs.text) == "shared\n")
            await wait_for(pilot, lambda: title(app).endswith("saved"), what="saved")

            link.freeze()  # reconnecting hangs until thawed
            link.cut()
            await wait_for(pilot, lambda: not isinstance(app.client.state, Connected))
            await pilot.press(*"alice offline")  # the pane stays editable
            theirs.insert(0, "bob: ")
            await wait_for(pilot, lambda: theirs.unacked == 0)
            assert area.text == "shared\nalice offline"
            await wait_for(pilot, lambda: "offline" in title(app) and "kept" in title(app))
            assert "unsaved" in str(app.status_bar.render())

            link.thaw()
            expected = "bob: shared\nalice offline"
            await wait_for(
                pilot,
                lambda: area.text == str(theirs.text) == expected,
                timeout=10,
                what="both converge",
            )
            await wait_for(pilot, lambda: title(app).endswith("saved"), what="saved again")
            assert "unsaved" not in str(app.status_bar.render())
    finally:
        await link.close()


async def test_a_paste_loses_its_control_characters_and_a_full_document_refuses_more(
    start_server: StartServer,
) -> None:
    server = await start_server(auth="open", secret=None, notes_max_bytes=24)
    app = live_app(server.url)
    notices = Notices()
    async with (
        app.run_test(size=(140, 30), message_hook=notices) as pilot,
        CollabClient(server.url, user="bob", team="core", name="Bob") as bob,
    ):
        area = await open_notes(pilot)
        theirs = await bob.open_notes("plan")
        area.post_message(events.Paste("ring\x07 the\r\nbell\x1b"))
        await wait_for(pilot, lambda: str(theirs.text) == "ring the\nbell")
        assert notices.find("Pasted text changed: 2 control characters left out")
        area.post_message(events.Paste(" and then some more"))  # 14 + 19 > 24 bytes
        await wait_for(pilot, lambda: bool(notices.find("the notes would pass 24 bytes")))
        assert area.text == "ring the\nbell"
        await pilot.press(*" ok", "é")  # what fits still goes in (the caret after an é too)
        await wait_for(pilot, lambda: str(theirs.text) == "ring the\nbell oké")
        await wait_for(pilot, lambda: "alice" in theirs.carets(), what="her caret sent")


async def press_until(pilot: Pilot[None], key: str, note: str) -> None:
    """Press `key` until the status bar says `note` (at most 5 times)."""
    app = pilot.app
    assert isinstance(app, CollabApp)
    app.status_bar.note = None
    for _ in range(5):
        await pilot.press(key)
        if app.status_bar.note == note:
            return
    raise AssertionError(f"{key} 5 times, and still not: {note}")


def title(app: CollabApp) -> str:
    """The notes pane's title without its key hints."""
    return str(app.notes_pane.query_one("#notes-title").render()).split("   esc")[0].rstrip()

"""The cell editor says what it changes or refuses, and stores exactly what it said."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import Input, Label

from server.app import CollabServer
from tests.conftest import StartServer
from tests.tui.conftest import Notices, live_app, open_server, wait_for
from tui_collab.client import CollabClient
from tui_collab.editing import clean_paste


async def stored(server: CollabServer, x: int, y: int) -> str:
    """The value the server holds, read by a second client."""
    async with CollabClient(server.url, user="bob", team="core") as bob:
        board = await bob.join("plan")
        return board.cells.value(x, y)


@pytest.mark.parametrize(
    ("pasted", "text", "notice"),
    [
        ("plain", "plain", None),
        ("a\tb", "a b", "1 tab became a space"),
        ("a\r\nb\nc\rd", "a b c d", "3 line breaks became spaces"),
        ("a\tb\tc\nd", "a b c d", "2 tabs and 1 line break became spaces"),
        ("x\x1b[31my\x07", "x[31my", "2 control characters removed"),
        ("\x00\t", " ", "1 tab became a space; 1 control character removed"),
        ("\x85é", "é", "1 control character removed"),
        ("exe\u202etxt\u200b", "exetxt", "2 control characters removed"),
        ("a\u2028b\u2029c", "a b c", "2 line breaks became spaces"),
        ("👩\u200d💻", "👩\u200d💻", None),
    ],
)
def test_clean_paste(pasted: str, text: str, notice: str | None) -> None:
    cleaned = clean_paste(pasted)
    assert (cleaned.text, cleaned.notice) == (text, notice)


async def test_a_pasted_tab_and_line_break_become_spaces_and_say_so(
    start_server: StartServer,
) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    notices = Notices()
    async with app.run_test(size=(120, 36), message_hook=notices) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        editor = app.query_one("#editor-input", Input)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.focused is editor)
        # Textual's own Input would keep "Q3" only (the first line) and let the tab in.
        app.post_message(events.Paste("Q3\tbudget\nrevised"))
        await wait_for(pilot, lambda: editor.value == "Q3 budget revised")
        assert notices.messages == ["Pasted text changed: 1 tab and 1 line break became spaces."]
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                app.client.unsaved_count == 0
                and app.client.joined["plan"].cells.value(0, 0) == "Q3 budget revised"
            ),
        )
        assert await stored(server, 0, 0) == "Q3 budget revised"
        assert not notices.find("refused")


async def test_other_control_characters_in_a_paste_are_removed_and_said(
    start_server: StartServer,
) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    notices = Notices()
    async with app.run_test(size=(120, 36), message_hook=notices) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        editor = app.query_one("#editor-input", Input)
        await pilot.press("enter", *"ok:")
        await wait_for(pilot, lambda: editor.value == "ok:")
        app.post_message(events.Paste("\x1b[1mbold\x1b[0m\x07"))
        await wait_for(pilot, lambda: editor.value == "ok:[1mbold[0m")
        assert notices.messages == ["Pasted text changed: 3 control characters removed."]
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.client.unsaved_count == 0)
        assert await stored(server, 0, 0) == "ok:[1mbold[0m"


async def test_a_300_character_value_is_kept_in_the_editor_and_refused_with_the_reason(
    start_server: StartServer,
) -> None:
    server = await open_server(start_server)
    app = live_app(server.url)
    notices = Notices()
    async with app.run_test(size=(120, 36), message_hook=notices) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        editor = app.query_one("#editor-input", Input)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.focused is editor)
        typed = "".join(chr(ord("a") + n % 26) for n in range(300))
        # Most of it pasted (300 key presses take 40 s here), and keys typed one by one
        # across the limit: nothing is dropped past 256, and the notice comes once.
        app.post_message(events.Paste(typed[:252]))
        await wait_for(pilot, lambda: editor.value == typed[:252])
        await pilot.press(*typed[252:260])
        await wait_for(pilot, lambda: editor.value == typed[:260])
        app.post_message(events.Paste(typed[260:]))
        await wait_for(pilot, lambda: editor.value == typed)
        assert notices.messages == [
            "A1 is too long: 257 characters, a cell holds at most 256. "
            "Enter saves it once it is shorter."
        ]  # once, when it went over; not on every key after
        assert "300/256" in str(app.query_one("#editor-cell", Label).render())

        await pilot.press("enter")
        await wait_for(pilot, lambda: len(notices.seen) == 2)
        assert notices.messages[1] == (
            "A1 not saved: too long: 300 characters, a cell holds at most 256. "
            "Shorten it, or Esc to cancel."
        )
        assert notices.seen[1].severity == "error"
        assert app.query_one("#editor").display  # still open, with every character
        assert editor.value == typed
        assert app.client.unsaved_count == 0  # nothing was sent

        editor.value = typed[:256]  # the person cuts the last 44 characters
        await wait_for(pilot, lambda: "/256" not in str(app.query_one("#editor-cell").render()))
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                not app.query_one("#editor").display
                and app.client.unsaved_count == 0
                and app.client.joined["plan"].cells.value(0, 0) == typed[:256]
            ),
        )
        assert await stored(server, 0, 0) == typed[:256]
        assert len(notices.seen) == 2


async def test_a_value_the_client_refuses_is_never_dropped_in_silence(
    start_server: StartServer,
) -> None:
    """Past the editor (a script, a future code path): the client's refusal still shows."""
    server = await open_server(start_server)
    app = live_app(server.url)
    notices = Notices()
    async with app.run_test(size=(120, 36), message_hook=notices) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        app.save_cell("plan", 1, 2, "a\tb")
        await wait_for(pilot, lambda: notices.seen)
        assert notices.messages == ["B3 not saved: value contains a tab, which a cell cannot hold"]
        assert notices.seen[0].severity == "error"

"""The notes pane against a scripted server (fixed names, colours, clock and text): its
pixels, with teammates' carets and selections in their colours, named, one with a
typing mark (look at the SVG after updating it); and a refusal, said where it shows."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pycrdt import Assoc, Doc, Text
from syrupy.assertion import SnapshotAssertion
from websockets.asyncio.server import serve

from tests.tui.conftest import Notices, snapshot_app, wait_for
from tests.tui.scripted import ScriptedServer
from tui_collab import protocol as p

NOTES = "# Q3 plan\n\n- budget: review with finance\n- laptops: order by Friday\n- training: "


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class NotesScript(ScriptedServer):
    """The scripted board, plus its notes: a fixed text and two teammates' carets."""

    def __init__(self) -> None:
        super().__init__()
        self.doc: Doc[Any] = Doc(client_id=7)
        self.text = self.doc.get("notes", type=Text)
        self.text += NOTES

    def caret(self, user: str, anchor: int, head: int) -> p.NoteCaret:
        def sticky(at: int) -> str:
            assoc = Assoc.AFTER if at < len(NOTES) else Assoc.BEFORE
            return _b64(self.text.sticky_index(at, assoc).encode())

        return p.NoteCaret(user=user, anchor=sticky(anchor), head=sticky(head))

    def _answer(self, message: p.ClientMessage) -> list[Any]:
        if isinstance(message, p.NotesUpdate):
            return [
                p.ErrorMessage(
                    code=p.ErrorCode.QUOTA_EXCEEDED,
                    message="the notes of board 'plan' would pass 262144 bytes",
                    re=message.id,
                )
            ]
        if isinstance(message, p.NotesOpen):
            finance = NOTES.index("finance")
            return [
                p.NotesState(
                    re=message.id,
                    board=message.board,
                    update=_b64(self.doc.get_update()),
                    sv=_b64(self.doc.get_state()),
                    carets=[
                        self.caret("ada", finance, finance + len("finance")),
                        self.caret("grace", len(NOTES), len(NOTES)),
                    ],
                )
            ]
        return super()._answer(message)


@asynccontextmanager
async def notes_server() -> AsyncIterator[NotesScript]:
    script = NotesScript()
    async with serve(script._handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        script.url = f"ws://127.0.0.1:{port}/ws"
        yield script
    await asyncio.sleep(0)


async def test_notes_beside_the_grid_with_teammates_carets(
    svg_snapshot: SnapshotAssertion,
) -> None:
    async with notes_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(140, 22)) as pilot:
            await wait_for(pilot, lambda: len(app.grid.remote) == 3)
            await pilot.press("t")
            area = app.notes_pane.area
            await wait_for(pilot, lambda: len(area.remote) == 2, what="both carets shown")
            # Grace types at the end: her caret moves along, with a typing mark.
            sv = script.doc.get_state()
            script.text += "book the room"
            await script.push(
                p.NotesUpdated(board="plan", update=_b64(script.doc.get_update(sv)), by="grace")
            )
            await script.push(
                p.NotesCarets(
                    board="plan",
                    carets=[script.caret("grace", len(str(script.text)), len(str(script.text)))],
                )
            )
            await wait_for(
                pilot,
                lambda: (
                    area.text.endswith("book the room")
                    and area.remote["grace"].head == (4, len("- training: book the room"))
                ),
            )
            await pilot.press("down", "down", "right", "right")
            assert area.selection.end == (2, 2)
            assert svg_snapshot == app.export_screenshot()


async def test_a_refused_change_is_said_in_a_notice_the_pane_and_the_status_bar() -> None:
    notices = Notices()
    async with notes_server() as script:
        app = snapshot_app(script.url)
        async with app.run_test(size=(140, 22), message_hook=notices) as pilot:
            await wait_for(pilot, lambda: app.grid.mirror is not None)
            await pilot.press("t")
            area = app.notes_pane.area
            await wait_for(pilot, lambda: len(area.remote) == 2)
            await pilot.press("x")
            await wait_for(pilot, lambda: bool(notices.find("would pass 262144 bytes")))
            assert notices.find("A change to the notes was refused")
            assert "! the notes of board 'plan' would pass" in str(
                app.notes_pane.query_one("#notes-title").render()
            )
            assert "! notes: the notes of board" in str(app.status_bar.render())

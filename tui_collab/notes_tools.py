"""The board's shared notes in the app: open and close the pane, follow the client's notes
events, send this user's caret, and say what is not saved or was refused.

Mixed into `CollabApp` (tui_collab.app) like `BoardTools`. The binding between the
editor and the shared text is tui_collab.notes_binding (pure, tested on its own); the
pane is tui_collab.widgets.notes; the replica and its sync are tui_collab.notes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeAlias

from textual import work
from textual.app import App
from textual.css.query import NoMatches
from textual.timer import Timer

from tui_collab.client import ClientError, CollabClient, NotConnected
from tui_collab.events import Connected, NotesCaretsChanged, NotesChanged, NotesRefused
from tui_collab.notes import SharedNotes
from tui_collab.notes_binding import NotesBinding, utf8_len, utf16_len
from tui_collab.widgets.grid import BoardGrid
from tui_collab.widgets.notes import SAVED, NotesArea, NotesPane, RemoteCaret
from tui_collab.widgets.status import StatusBar
from tui_collab.words import plural

CARET_EVERY_S = 0.05
"""This user's caret goes out at most this often (the server's window is 50 ms too)."""
BESIDE_FROM_COLUMNS = 110
"""Terminals this wide show the notes beside the grid; narrower ones, instead of it."""


P = ParamSpec("P")


def _unless_quitting(method: Callable[P, None]) -> Callable[P, None]:
    """Do nothing once the screen is gone: client events still arrive while the app
    quits, after its widgets are removed."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        with contextlib.suppress(NoMatches):
            method(*args, **kwargs)

    return guarded


def sendable_caret(text: str, index: int) -> int:
    """The index to give `SharedNotes.set_caret` for a caret at character `index`.

    `SharedNotes.set_caret` (as of this version) passes the index's UTF-8 byte offset
    to pycrdt's `sticky_index`, which counts UTF-16 code units and panics (killing the
    app) at or past the end of the text. So: the character whose byte offset is the
    caret's UTF-16 offset (exact unless multi-byte characters come first), never the
    end (a caret there is sent on the last character), and 0 for an empty text (where
    `set_caret` sticks it to the start: a caret left unsent there would stay unsent when
    text arrives, as it does not move). To go once `set_caret` converts the index itself.
    """
    total = utf16_len(text)
    if total == 0:
        return 0
    target = min(utf16_len(text[: max(0, index)]), total - 1)
    low, high = 0, len(text)  # the largest i with utf8_len(text[:i]) <= target
    while low < high:
        middle = (low + high + 1) // 2
        if utf8_len(text[:middle]) <= target:
            low = middle
        else:
            high = middle - 1
    return low


if TYPE_CHECKING:
    _Base: TypeAlias = App[None]
else:
    _Base = object


class NotesTools(_Base):
    """The notes pane's part of the app (see module doc)."""

    client: CollabClient
    board_id: str
    notes: SharedNotes | None
    """The open board's notes once `t` opened them (they stay open, syncing, until the
    board changes or the app quits)."""
    notes_binding: NotesBinding | None
    _notes_kept: int
    """Changes made since the notes last synced (while offline): kept, sent on reconnect."""
    _notes_problem: str
    _caret_timer: Timer | None
    _caret_sent: tuple[int, int] | None
    _notes_timer: Timer | None
    _editing_notes: bool
    """This user's presence says "editing notes" (said once, not a frame a key)."""

    if TYPE_CHECKING:

        @property
        def grid(self) -> BoardGrid: ...

        @property
        def status_bar(self) -> StatusBar: ...

        def _name_of(self, user: str) -> str: ...

        def _set_activity(self, kind: str, detail: str | None = None) -> None: ...

        def note(self, text: str, *, feed: bool = False, lasts: float | None = ...) -> None: ...

    def _init_notes(self) -> None:
        self.notes = None
        self.notes_binding = None
        self._notes_kept = 0
        self._notes_problem = ""
        self._caret_timer = None
        self._caret_sent = None
        self._notes_timer = None
        self._editing_notes = False

    def notes_subscriptions(self) -> list[Callable[[], None]]:
        return [
            self.client.on(NotesChanged, self._on_notes_changed),
            self.client.on(NotesCaretsChanged, self._on_notes_carets),
            self.client.on(NotesRefused, self._on_notes_refused),
        ]

    @property
    def notes_pane(self) -> NotesPane:
        return self.query_one(NotesPane)

    @property
    def notes_unsaved(self) -> int:
        """This user's notes changes the server has not acknowledged (or, offline, that
        are kept to send)."""
        notes = self.notes
        if notes is None:
            return 0
        return notes.unacked if notes.synced else max(notes.unacked, self._notes_kept)

    # --- open and close ----------------------------------------------------------------

    def action_notes(self) -> None:
        """`t`: show the board's notes and give them the keys."""
        pane = self.notes_pane
        pane.display = True
        self.query_one("#center").display = self.size.width >= BESIDE_FROM_COLUMNS
        self.screen.set_focus(pane.area)
        if self.notes is None or self.notes.board != self.board_id or self.notes.closed:
            self.open_notes(self.board_id)
        else:
            self._send_caret()
        self._show_notes_state()

    def action_close_notes(self) -> None:
        """Esc in the notes: back to the grid; the others stop seeing this user's caret."""
        self.notes_pane.display = False
        self.query_one("#center").display = True
        self.screen.set_focus(self.grid)
        if self.notes is not None and not self.notes.closed:
            self.notes.set_caret(None, None)
        if self._editing_notes:
            self._editing_notes = False
            self._set_activity("viewing")

    @work(exclusive=True, group="notes", exit_on_error=False)
    async def open_notes(self, board: str) -> None:
        """Open (or reopen) `board`'s notes and show them in the pane."""
        await self.close_notes()
        pane = self.notes_pane
        pane.show_title(self._notes_title(board), "opening…")
        try:
            notes = await self.client.open_notes(board)
        except ClientError as exc:
            self._notes_problem = exc.message
            self._show_notes_state()
            self.notify(
                f"Notes not opened: {exc.message}", title="Notes", severity="error", markup=False
            )
            return
        except (NotConnected, ConnectionError) as exc:
            self._notes_problem = str(exc)
            self._show_notes_state()
            return
        if board != self.board_id:  # the board changed while they opened
            await notes.close()
            return
        self.notes = notes
        self._notes_kept = 0
        self._notes_problem = ""
        area = pane.area
        welcome = self.client.welcome
        self.notes_binding = NotesBinding(
            notes.text,
            area.apply_change,
            max_bytes=welcome.limits.notes_max_bytes if welcome is not None else None,
        )
        area.attach(self.notes_binding)
        self._caret_sent = None
        if self.status_bar.problem and self.status_bar.problem.startswith("notes: "):
            self.status_bar.problem = None
        if self._notes_timer is None:  # acknowledgements come without an event
            self._notes_timer = self.set_interval(0.25, self._show_notes_state)
        self._on_notes_carets(NotesCaretsChanged(board))
        if pane.display:
            self._send_caret()
        self._show_notes_state()

    async def close_notes(self) -> None:
        """Stop following the open notes (a board change, quitting)."""
        notes, binding = self.notes, self.notes_binding
        self.notes = self.notes_binding = None
        if binding is not None:
            binding.close()
        with contextlib.suppress(NotConnected, ConnectionError):
            if notes is not None:
                await notes.close()
        with contextlib.suppress(NoMatches):  # gone already when the app quits
            self.notes_pane.area.attach(None)

    def notes_board_shown(self, board: str) -> None:
        """The app shows another board: its notes replace the old ones if the pane is open."""
        notes = self.notes
        if notes is None or notes.board == board:
            return
        if self.notes_pane.display:
            self.open_notes(board)
        else:
            self.put_notes_away()

    @work(exclusive=True, group="notes", exit_on_error=False)
    async def put_notes_away(self) -> None:
        """Close the old board's notes, in the background (the pane is not showing)."""
        await self.close_notes()

    # --- this user's edits and caret ---------------------------------------------------

    # Handlers by name (not `@on`): Textual finds these on a mixin too.

    def on_notes_area_local_edit(self, _: NotesArea.LocalEdit) -> None:
        self._send_caret()

    def on_notes_area_caret_moved(self, _: NotesArea.CaretMoved) -> None:
        self._send_caret()

    def on_notes_area_cleaned(self, event: NotesArea.Cleaned) -> None:
        self.notify(
            f"Pasted text changed: {plural(event.removed, 'control character')} left out "
            "(the notes hold text, tabs and line breaks).",
            title="Paste",
            severity="warning",
            markup=False,
        )

    def on_notes_area_full(self, event: NotesArea.Full) -> None:
        self.notify(
            f"Not added: the notes would pass {event.max_bytes:,} bytes, the most the "
            "server keeps. Delete some text first.",
            title="Notes full",
            severity="error",
            markup=False,
        )

    def on_notes_area_nothing_to_undo(self, event: NotesArea.NothingToUndo) -> None:
        self.note(f"nothing of yours to {'redo' if event.redo else 'undo'} in the notes")

    def _send_caret(self) -> None:
        """Send the caret now, or once the current 50 ms are up (a burst sends two)."""
        if self._caret_timer is None:
            self._flush_caret()
            self._caret_timer = self.set_timer(CARET_EVERY_S, self._caret_window_over)

    def _caret_window_over(self) -> None:
        self._caret_timer = None
        self._flush_caret(only_if_moved=True)

    def _flush_caret(self, *, only_if_moved: bool = False) -> None:
        notes, binding = self.notes, self.notes_binding
        if notes is None or binding is None or notes.closed or not self.notes_pane.display:
            return
        caret = binding.caret_indexes()
        if only_if_moved and caret == self._caret_sent:
            return
        self._caret_sent = caret
        anchor, head = (sendable_caret(binding.value, index) for index in caret)
        notes.set_caret(anchor, head)

    # --- the client's notes events -----------------------------------------------------

    @_unless_quitting
    def _on_notes_changed(self, event: NotesChanged) -> None:
        notes = self.notes
        if notes is None or event.board != notes.board:
            return
        # Theirs moved with the text. Later, not now: a local change is told from inside
        # its transaction, where the text cannot be read.
        self.call_later(self._on_notes_carets, NotesCaretsChanged(event.board))
        if event.remote:
            if event.by:
                self.notes_pane.area.mark_typing(event.by)
        else:
            if not self._editing_notes:
                self._editing_notes = True
                self._set_activity("editing", "notes")
            if not isinstance(self.client.state, Connected) or not notes.synced:
                self._notes_kept += 1
        if notes.synced and notes.unacked == 0:
            self._notes_kept = 0
        self._show_notes_state()

    @_unless_quitting
    def _on_notes_carets(self, event: NotesCaretsChanged) -> None:
        notes, binding = self.notes, self.notes_binding
        if notes is None or binding is None or event.board != notes.board:
            return
        mirror = self.client.joined.get(notes.board)
        area = self.notes_pane.area
        now = area.clock()
        shown: dict[str, RemoteCaret] = {}
        for user, (anchor, head) in notes.carets().items():
            participant = mirror.participants.get(user) if mirror else None
            old = area.remote.get(user)
            anchor_at = binding.location_of_index(anchor)
            head_at = binding.location_of_index(head)
            moved = old is None or (old.anchor, old.head) != (anchor_at, head_at)
            shown[user] = RemoteCaret(
                user,
                participant.name if participant else self._name_of(user),
                participant.color if participant else "#888888",
                anchor_at,
                head_at,
                now if moved or old is None else old.moved_at,
                old.typed_at if old else None,
            )
        area.show_carets(shown)

    @_unless_quitting
    def _on_notes_refused(self, event: NotesRefused) -> None:
        if self.notes is None or event.board != self.notes.board:
            return
        self._notes_problem = event.message
        self.status_bar.problem = f"notes: {event.message}"
        self.status_bar.refresh()
        self.notify(
            f"A change to the notes was refused: {event.message}. "
            "It shows on your screen, not on your teammates'.",
            title="Notes not saved",
            severity="error",
            markup=False,
        )
        self._show_notes_state()

    def _notes_title(self, board: str) -> str:
        mirror = self.client.joined.get(board)
        return mirror.meta.title if mirror else board

    @_unless_quitting
    def _show_notes_state(self) -> None:
        notes = self.notes
        pane = self.notes_pane
        board = notes.board if notes else self.board_id
        if notes is not None and notes.synced and notes.unacked == 0:
            self._notes_kept = 0
        unsaved = self.notes_unsaved
        pending = self.client.unsaved_count + unsaved
        if self.status_bar.pending != pending:
            self.status_bar.pending = pending
            self.status_bar.refresh()
        if notes is None:
            state = "" if self._notes_problem else "opening…"
        elif not isinstance(self.client.state, Connected) or not notes.synced:
            state = f"offline · {plural(unsaved, 'change')} kept" if unsaved else "offline"
        elif unsaved:
            state = f"{plural(unsaved, 'change')} not saved yet"
        else:
            state = SAVED
        pane.show_title(self._notes_title(board), state, self._notes_problem)

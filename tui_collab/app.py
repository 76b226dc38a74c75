"""The terminal app: team presence beside a live shared grid.

The app owns no socket. It is built around a `CollabClient` (injected, so tests can
drive it against a real or a scripted server) and a clock (injected, so snapshots are
still). Client events arrive on the same event loop and update widgets directly; the
widgets repaint at most once a frame however many events arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label

from tui_collab.cells import cell_name, column_name
from tui_collab.client import ClientError, CollabClient, NotConnected
from tui_collab.events import (
    Closed,
    Connected,
    OpRefused,
    OutboxFailed,
    PendingChanged,
    Reconnecting,
    Restored,
    StateChanged,
)
from tui_collab.mirror import BoardMirror
from tui_collab.protocol import (
    MAX_CELL_CHARS,
    MAX_COLUMN_WIDTH,
    MIN_COLUMN_WIDTH,
    Activity,
    BoardCreated,
    BoardState,
    BoardUpdated,
    CellChanged,
    CellsChanged,
    Cursors,
    ParticipantJoined,
    ParticipantLeft,
    Presence,
    Status,
    Typing,
    cell_value_problem,
    printable,
)
from tui_collab.retry import FATAL_REASONS
from tui_collab.screens import HelpScreen, PickScreen, QuitScreen
from tui_collab.search import Search, find
from tui_collab.selection import Rect, parse_tsv, plan_paste, to_tsv
from tui_collab.undo import Change, Current, Step, UndoHistory, skipped_notice
from tui_collab.widgets.editor import CellEditor
from tui_collab.widgets.feed import ActivityFeed
from tui_collab.widgets.grid import BoardGrid
from tui_collab.widgets.presence import BoardList, PresenceList
from tui_collab.widgets.status import StatusBar, closed_line
from tui_collab.words import plural

NOTE_SECONDS = 10.0
"""How long a status bar note (an undo that skipped cells, say) stays."""

AWAY_AFTER_S = 300.0
STATUS_CYCLE: dict[str, Status] = {"online": "busy", "busy": "away", "away": "online"}
DEFAULT_BOARD_SIZE = (26, 40)
ACTIVITY_EVENTS = (
    events.Key,
    events.MouseDown,
    events.MouseScrollDown,
    events.MouseScrollUp,
    events.MouseScrollLeft,
    events.MouseScrollRight,
    events.Paste,
)
"""What counts as the person being here (auto-away); mouse moves do not."""


@dataclass(frozen=True)
class Clock:
    """Wall time for display, monotonic time for intervals; both fixed in tests."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = time.monotonic


class NotedStatusBar(StatusBar):
    """The status bar with one more slot, at its end: the latest note about what this
    person just did ('match 2 of 7 for 'foo'', 'B4 changed by Ada since — not undone')."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        id: str | None = None,
    ) -> None:
        super().__init__(clock, now=now, id=id)
        self.note: str | None = None

    def render(self) -> Text:
        text = super().render()
        if self.note:
            text.append(f"   {self.note}", "bold")
        return text


def board_id_from(name: str) -> str:
    """A board id from what a person typed: 'Q3 plan!' -> 'q3-plan'."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower()).strip("-._")
    return slug[:64] or "board"


class CollabApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "tui-collab"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_status", "Status"),
        Binding("f", "follow", "Follow"),
        Binding("b", "boards", "Boards"),
        Binding("r", "reconnect", "Reconnect", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        client: CollabClient,
        *,
        board: str = "main",
        clock: Clock | None = None,
        where: str = "",
    ) -> None:
        super().__init__()
        self.client = client
        self.board_id = board
        self.clock = clock or Clock()
        self.where = where
        self.status: Status = "online"
        self.auto_away = False
        self.last_input = self.clock.monotonic()
        self._unsubscribe: list[Callable[[], None]] = []
        self._editing: tuple[int, int] | None = None
        self._editor_over_limit = False
        self._ever_connected = False
        self._outage_since: float | None = None
        self._refused: dict[str, dict[tuple[int, int], str]] = {}
        """Refused edits by board and cell, with the line the status bar shows."""
        self._quit_choice: str | None = None
        self._refused_while_quitting: list[str] = []
        self.exit_message = ""
        """What the app said as it quit ('discarded 3 unsaved edits'); also printed."""
        self.histories: dict[str, UndoHistory] = {}
        """This user's undo and redo steps, by board: kept across reconnects."""
        self.clipboard_text = ""
        """What `y` copied last, for `p` (the terminal's clipboard may not be readable)."""
        self.search: Search | None = None
        self._titles: dict[str, str] = {}
        self._note_timer: Timer | None = None

    # --- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="sidebar"):
                yield Label("TEAM", id="team-title", classes="section")
                yield PresenceList(self.clock.now, id="presence")
                yield Label("BOARDS", classes="section")
                yield BoardList(id="boards")
            with Vertical(id="center"):
                yield Label("", id="board-title")
                yield BoardGrid(self.clock.monotonic, id="grid")
                with Horizontal(id="editor"):
                    yield Label("", id="editor-cell")
                    yield CellEditor(id="editor-input")
                with Horizontal(id="search"):
                    yield Label("/", id="search-label")
                    yield Input(placeholder="find in cells · Enter · Esc", id="search-input")
                yield ActivityFeed(self.clock.now, id="feed")
        yield NotedStatusBar(self.clock.monotonic, now=self.clock.now, id="status")
        yield Footer()

    @property
    def grid(self) -> BoardGrid:
        return self.query_one(BoardGrid)

    @property
    def feed(self) -> ActivityFeed:
        return self.query_one(ActivityFeed)

    @property
    def status_bar(self) -> NotedStatusBar:
        return self.query_one(NotedStatusBar)

    def on_mount(self) -> None:
        self.query_one("#editor").display = False
        self.query_one("#search").display = False
        self.status_bar.where = self.where
        client = self.client
        self.status_bar.token_expires_at = lambda: client.token_expires_at
        self._unsubscribe = [
            client.on(StateChanged, self._on_state),
            client.on(Presence, self._on_presence),
            client.on(BoardCreated, self._on_board_meta),
            client.on(BoardUpdated, self._on_board_meta),
            client.on(BoardState, self._on_board_state),
            client.on(CellChanged, self._on_cell_changed),
            client.on(CellsChanged, self._on_cells_changed),
            client.on(Cursors, self._on_cursors),
            client.on(ParticipantJoined, self._on_joined),
            client.on(ParticipantLeft, self._on_left),
            client.on(Typing, self._on_typing),
            client.on(PendingChanged, self._on_pending),
            client.on(OpRefused, self._on_op_refused),
            client.on(Restored, self._on_restored),
            client.on(OutboxFailed, self._on_outbox_failed),
        ]
        # The command line may have started the client already (to fail before the
        # screen opens): take its state as if it had just changed.
        self._on_state(StateChanged(client.state))
        self.set_interval(15, self._check_idle)
        self.grid.focus()
        client.start()
        self.open_board(self.board_id)

    async def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        await self.client.close()

    # --- board ----------------------------------------------------------------------

    @work(exclusive=True, group="board", exit_on_error=False)
    async def open_board(self, board: str, title: str | None = None) -> None:
        """Join (creating it if the team has none by that id) and show it."""
        await self.client.wait_connected()
        if board not in self.client.boards:
            width, height = DEFAULT_BOARD_SIZE
            await self.client.create_board(
                title or board.replace("-", " ").title(), width, height, board=board
            )
        previous = self.board_id
        if previous != board and previous in self.client.joined:
            with contextlib.suppress(ClientError, NotConnected):
                await self.client.leave(previous)
        self.board_id = board
        mirror = await self.client.join(board)
        self._show_board(mirror)
        await self._announce()

    def _show_board(self, mirror: BoardMirror) -> None:
        self.grid.refused = self._refused.setdefault(mirror.id, {})
        self.grid.show_board(mirror, self._own_user)
        self._update_title()
        self._refresh_sidebar()

    def _update_title(self) -> None:
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        grid = self.grid
        # Titles are user text: a Text is shown as is, never parsed as markup.
        self.query_one("#board-title", Label).update(
            Text(
                f"{mirror.meta.title}  ·  {mirror.meta.width}×{mirror.meta.height}"  # noqa: RUF001
                f"  ·  {cell_name(grid.cursor_x, grid.cursor_y)}"
            )
        )

    @property
    def _own_user(self) -> str:
        welcome = self.client.welcome
        return welcome.user.id if welcome else ""

    def _name_of(self, user: str) -> str:
        member = self.client.presence.get(user)
        return member.name if member else user

    # --- client events --------------------------------------------------------------

    def _on_state(self, event: StateChanged) -> None:
        state = event.state
        self.status_bar.show_state(state)
        if isinstance(state, Connected):
            welcome = self.client.welcome
            if self._outage_since is not None:
                lasted = round(self.clock.monotonic() - self._outage_since)
                self.feed.add(f"reconnected after {lasted} s")
                self._outage_since = None
            elif welcome is not None and not self._ever_connected:
                self.feed.add(f"signed in to team {welcome.team} as {welcome.user.name}")
            self._ever_connected = True
            if welcome is not None:
                self.query_one("#team-title", Label).update(Text(f"TEAM {welcome.team}"))
            self._refresh_sidebar()
        elif isinstance(state, Reconnecting) and self._outage_since is None:
            # One line per outage: the client retries (Connecting, Reconnecting, ...)
            # until it is back, and each retry is not news.
            self._outage_since = self.clock.monotonic()
            self.feed.add(f"connection lost ({printable(state.reason, 60)}); retrying")
        elif isinstance(state, Closed) and state.reason in FATAL_REASONS:
            self._outage_since = None
            detail = closed_line(state)
            self.feed.add(detail)
            self.notify(detail, title="Cannot connect", severity="error", timeout=30, markup=False)
            if not self._ever_connected:
                # Nothing was ever shown from the server: the command line prints the
                # detail once the app is gone (see cli.py).
                self.exit(return_code=1)

    def _on_presence(self, event: Presence) -> None:
        self._refresh_sidebar()
        if event.user == self._own_user:
            return
        if event.status == "offline":
            self.feed.add(f"{event.name} went offline")
        elif event.connections == 1 and event.status == "online" and not event.activity:
            self.feed.add(f"{event.name} is online")
        elif event.status in ("busy", "away"):
            self.feed.add(f"{event.name} is {event.status}")

    def _on_board_meta(self, event: BoardCreated | BoardUpdated) -> None:
        meta = event.board
        if isinstance(event, BoardCreated):
            self.feed.add(f"board {meta.title} created by {self._name_of(meta.created_by)}")
        elif self._titles.get(meta.id) != meta.title:
            # A board.updated also carries column widths: only a new title is news.
            self.feed.add(f"board renamed to {meta.title}")
        if isinstance(event, BoardUpdated) and meta.id == self.board_id:
            self.grid.show_widths(meta.widths)
        self._refresh_sidebar()
        self._update_title()

    def _on_board_state(self, event: BoardState) -> None:
        if event.board.id == self.board_id:
            mirror = self.client.joined.get(self.board_id)
            if mirror is not None:
                self._show_board(mirror)

    def _on_cell_changed(self, event: CellChanged) -> None:
        self._clear_refused(event.board, event.x, event.y)
        if event.board == self.board_id:
            self.grid.refresh()

    def _on_cells_changed(self, event: CellsChanged) -> None:
        for cell in event.cells:
            self._clear_refused(event.board, cell.x, cell.y)
        if event.board == self.board_id:
            self.grid.refresh()

    def _on_cursors(self, event: Cursors) -> None:
        if event.board != self.board_id:
            return
        for cursor in event.cursors:
            self.grid.move_remote(cursor.user, cursor.x, cursor.y)

    def _on_joined(self, event: ParticipantJoined) -> None:
        if event.board == self.board_id and event.user != self._own_user:
            self.feed.add(f"{event.name} joined {self.board_id}")

    def _on_left(self, event: ParticipantLeft) -> None:
        if event.board == self.board_id:
            self.grid.remove_remote(event.user)
            if event.user != self._own_user:
                self.feed.add(f"{event.name} left {self.board_id}")
            self._update_following()

    def _on_typing(self, event: Typing) -> None:
        if event.board == self.board_id:
            self.grid.set_typing(event.user, event.x, event.y, event.active)

    def _on_pending(self, event: PendingChanged) -> None:
        unsaved = self.client.unsaved_count
        self.status_bar.pending = unsaved
        self.status_bar.refresh()
        if event.board == self.board_id:
            self.grid.refresh()
        if isinstance(self.screen, QuitScreen) and self._quit_choice in (None, "wait"):
            if unsaved == 0:
                self._finish_quit("saved", 0)
            else:
                self.screen.show_count(unsaved)

    # --- refused edits --------------------------------------------------------------

    def _on_op_refused(self, event: OpRefused) -> None:
        where = cell_name(event.x, event.y)
        if event.board != self.board_id:
            where = f"{where} on {event.board}"
        value = printable(event.value, 40)
        line = f"{where} not saved ({value!r}): {event.message}"
        self._refused.setdefault(event.board, {})[(event.x, event.y)] = line
        self._show_refusals()
        self.feed.add(line)
        self.notify(line, title="Edit refused", severity="error", timeout=10, markup=False)
        if self._quit_choice is not None or isinstance(self.screen, QuitScreen):
            self._refused_while_quitting.append(line)
        if event.board == self.board_id:
            self.grid.refresh()

    def _clear_refused(self, board: str, x: int, y: int) -> None:
        """The cell changed or was saved since: its refusal is no longer the news."""
        marks = self._refused.get(board)
        if marks is not None and marks.pop((x, y), None) is not None:
            self._show_refusals()
            if board == self.board_id:
                self.grid.refresh()

    def _show_refusals(self) -> None:
        lines = [line for marks in self._refused.values() for line in marks.values()]
        self.status_bar.problem = lines[-1] if lines else None
        self.status_bar.refresh()

    def _on_restored(self, event: Restored) -> None:
        self.feed.add(f"{plural(event.count, 'edit')} from last time will be sent")

    def _on_outbox_failed(self, event: OutboxFailed) -> None:
        self.notify(
            f"Unsaved edits are not being kept on disk: {event.message}",
            title="Outbox",
            severity="warning",
            markup=False,
        )

    def _refresh_sidebar(self) -> None:
        self._titles = {b.id: b.title for b in self.client.boards.values()}
        members = self.client.presence.values()
        self.query_one(PresenceList).show(members, self._own_user)
        self.query_one(BoardList).show(self.client.boards.values(), self.board_id, members)

    # --- own actions ----------------------------------------------------------------

    @on(BoardGrid.CursorMoved)
    def _moved(self, event: BoardGrid.CursorMoved) -> None:
        self.client.move_cursor(self.board_id, event.x, event.y)
        self._update_title()

    @property
    def max_cell_chars(self) -> int:
        welcome = self.client.welcome
        return welcome.limits.max_cell_chars if welcome is not None else MAX_CELL_CHARS

    @on(BoardGrid.EditRequested)
    def _start_edit(self, event: BoardGrid.EditRequested) -> None:
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        pending = mirror.pending_at(event.x, event.y)
        value = pending.value if pending else mirror.cells.value(event.x, event.y)
        self._editing = (event.x, event.y)
        self._editor_over_limit = False
        self._show_editor_cell(len(value))
        editor = self.query_one("#editor-input", Input)
        editor.value = value
        self.query_one("#editor").display = True
        editor.focus()
        self.client.set_typing(self.board_id, event.x, event.y, True)
        self._set_activity("editing", cell_name(event.x, event.y))

    def _show_editor_cell(self, length: int) -> None:
        """The cell's name, and its length in red once it is over what a cell holds."""
        if self._editing is None:
            return
        label = Text(f" {cell_name(*self._editing)} ")
        limit = self.max_cell_chars
        if length > limit:
            label.append(f"{length}/{limit} ", "bold red")
        self.query_one("#editor-cell", Label).update(label)

    @on(Input.Changed, "#editor-input")
    def _edit_changed(self, event: Input.Changed) -> None:
        if self._editing is None or not self.query_one("#editor").display:
            return
        x, y = self._editing
        # The client sends at most one typing frame every 2 s however often this runs.
        self.client.set_typing(self.board_id, x, y, True)
        self._show_editor_cell(len(event.value))
        over = len(event.value) > self.max_cell_chars
        if over and not self._editor_over_limit:
            problem = cell_value_problem(event.value, self.max_cell_chars)
            self.notify(
                f"{cell_name(x, y)} is {problem}. Enter saves it once it is shorter.",
                title="Too long",
                severity="warning",
                markup=False,
            )
        self._editor_over_limit = over

    @on(CellEditor.PasteCleaned)
    def _paste_cleaned(self, event: CellEditor.PasteCleaned) -> None:
        self.notify(
            f"Pasted text changed: {event.notice}.",
            title="Paste",
            severity="warning",
            markup=False,
        )

    @on(Input.Submitted, "#editor-input")
    def _save_edit(self, event: Input.Submitted) -> None:
        if self._editing is None:
            return
        x, y = self._editing
        problem = cell_value_problem(event.value, self.max_cell_chars)
        if problem is not None:
            # Refused here, with the text kept in the editor to fix: nothing is sent.
            self.notify(
                f"{cell_name(x, y)} not saved: {problem}. Shorten it, or Esc to cancel.",
                title="Not saved",
                severity="error",
                markup=False,
            )
            return
        self._close_editor()
        self.save_cell(self.board_id, x, y, event.value)

    @work(group="edits", exit_on_error=False)
    async def save_cell(self, board: str, x: int, y: int, value: str) -> None:
        step = self._record(board, [(x, y, value)])
        try:
            await self.client.set_cell(board, x, y, value)
        except ClientError as exc:
            self._forget(board, step)
            # The server's refusal was shown by _on_op_refused, which ran first.
            shown = self._refused.get(board, {}).get((x, y), "")
            if not shown.endswith(f": {exc.message}"):
                self.notify(
                    f"{cell_name(x, y)} not saved: {exc.message}",
                    title="Edit refused",
                    severity="error",
                    markup=False,
                )
        except NotConnected as exc:
            self._forget(board, step)
            self.notify(str(exc), title="Not saved", severity="warning", markup=False)
        except ConnectionError:
            return  # closed: the edit stays unsaved (and in the outbox); quitting asks
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this worker is being cancelled (the app is quitting)
            return  # the edit was discarded on purpose (the quit prompt said so)
        else:
            self._clear_refused(board, x, y)

    @work(group="edits", exit_on_error=False)
    async def save_cells(
        self, board: str, edits: list[tuple[int, int, str]], step: Step | None = None
    ) -> None:
        """Write a block (a paste, a clear, an undo) as one `cells.set`; `step` is the
        undo step it was recorded as, forgotten again if the server refuses it."""
        try:
            await self.client.set_cells(board, edits)
        except ClientError as exc:
            self._forget(board, step)
            shown = self._refused.get(board, {})
            if not any(line.endswith(f": {exc.message}") for line in shown.values()):
                self.notify(
                    f"{plural(len(edits), 'cell')} not saved: {exc.message}",
                    title="Edit refused",
                    severity="error",
                    markup=False,
                )
        except NotConnected as exc:
            self._forget(board, step)
            self.notify(str(exc), title="Not saved", severity="warning", markup=False)
        except ConnectionError:
            return  # closed: the edits stay unsaved (and in the outbox); quitting asks
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return
        else:
            for x, y, _ in edits:
                self._clear_refused(board, x, y)

    # --- undo, clipboard, search, column widths ---------------------------------------

    def _shown(self, mirror: BoardMirror, x: int, y: int) -> str:
        """What the cell shows this user: their own unsaved value, else the board's."""
        pending = mirror.pending_at(x, y)
        return pending.value if pending is not None else mirror.cells.value(x, y)

    def _current(self, mirror: BoardMirror) -> Current:
        """A cell's value as shown and who wrote it (this user while it is unsaved)."""
        own = self._own_user

        def current(x: int, y: int) -> tuple[str, str]:
            pending = mirror.pending_at(x, y)
            if pending is not None:
                return pending.value, own
            op = mirror.cells.get(x, y)
            return ("", "") if op is None else (op.value, op.by)

        return current

    def _history(self, board: str) -> UndoHistory:
        return self.histories.setdefault(board, UndoHistory())

    def _record(self, board: str, edits: Iterable[tuple[int, int, str]]) -> Step | None:
        """Note a new edit as one undo step, with each cell's value before it."""
        mirror = self.client.joined.get(board)
        if mirror is None:
            return None
        step = Step.of(Change(x, y, self._shown(mirror, x, y), value) for x, y, value in edits)
        if step is not None:
            self._history(board).record(step)
        return step

    def _forget(self, board: str, step: Step | None) -> None:
        if step is not None:
            self._history(board).forget(step)

    def note(self, text: str, *, feed: bool = False, lasts: float | None = NOTE_SECONDS) -> None:
        """Say something in the status bar (and the feed): it stays `lasts` seconds,
        or until the next note when None."""
        bar = self.status_bar
        bar.note = text
        bar.refresh()
        if feed:
            self.feed.add(text)
        if self._note_timer is not None:
            self._note_timer.stop()
            self._note_timer = None
        if lasts is not None:
            self._note_timer = self.set_timer(lasts, self._clear_note)

    def _clear_note(self) -> None:
        self._note_timer = None
        self.status_bar.note = None
        self.status_bar.refresh()

    def action_undo(self) -> None:
        """Take back this user's newest edit on this board, where nobody changed it since."""
        self._undo_or_redo(redo=False)

    def action_redo(self) -> None:
        self._undo_or_redo(redo=True)

    def _undo_or_redo(self, *, redo: bool) -> None:
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        history = self._history(self.board_id)
        verb = "redone" if redo else "undone"
        current = self._current(mirror)
        plan = history.redo(current) if redo else history.undo(current)
        if plan is None:
            self.note(f"nothing to {'redo' if redo else 'undo'}")
            return
        if plan.writes:
            self.save_cells(self.board_id, plan.writes)
            x, y, _ = plan.writes[0]
            self.grid.move_to(x, y)
        if plan.skipped:
            self.note(skipped_notice(plan.skipped, self._name_of, verb), feed=True)
        elif len(plan.writes) == 1:
            x, y, _ = plan.writes[0]
            self.note(f"{cell_name(x, y)} {verb}")
        else:
            self.note(f"{plural(len(plan.writes), 'cell')} {verb}")

    def action_copy_cells(self) -> None:
        """The selection (or the cursor's cell) as TSV, to the terminal's clipboard
        (OSC 52) and to the app's own, which `p` pastes from."""
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        rect = self.grid.target
        text = to_tsv(rect, lambda x, y: self._shown(mirror, x, y))
        self.clipboard_text = text
        self.copy_to_clipboard(text)
        self.notify(f"Copied {rect.describe()}", title="Copy", markup=False)

    def action_paste_cells(self) -> None:
        if not self.clipboard_text:
            self.notify("Nothing copied yet: y copies the selection", title="Paste")
            return
        self.paste_block(self.clipboard_text)

    @on(BoardGrid.Pasted)
    def _terminal_paste(self, event: BoardGrid.Pasted) -> None:
        self.paste_block(event.text)

    def paste_block(self, text: str) -> None:
        """Write TSV (or lines of text) with its top-left at the cursor: one batch, one
        undo step; what fell off the board or had to change is said."""
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        grid = self.grid
        x, y = grid.cursor_x, grid.cursor_y
        plan = plan_paste(
            parse_tsv(text), x, y, mirror.meta.width, mirror.meta.height, self.max_cell_chars
        )
        if not plan.edits:
            self.notify(plan.notice, title="Paste", severity="warning", markup=False)
            return
        changed = [e for e in plan.edits if self._shown(mirror, e[0], e[1]) != e[2]]
        if changed:
            self.save_cells(self.board_id, changed, self._record(self.board_id, changed))
        right = max(e[0] for e in plan.edits)
        bottom = max(e[1] for e in plan.edits)
        if (right, bottom) != (x, y):
            grid.select_from = (right, bottom)
            grid.refresh()
        warn = plan.outside or plan.cleaned
        self.notify(
            plan.notice[0].upper() + plan.notice[1:],
            title="Paste",
            severity="warning" if warn else "information",
            markup=False,
        )

    def action_clear_cells(self) -> None:
        """Empty the selection (or the cursor's cell): one batch, one undo step."""
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        rect: Rect = self.grid.target
        edits = [(x, y, "") for x, y in rect.cells() if self._shown(mirror, x, y)]
        if not edits:
            self.note("nothing to clear")
            return
        self.save_cells(self.board_id, edits, self._record(self.board_id, edits))
        self.note(f"cleared {plural(len(edits), 'cell')}")

    def action_search(self) -> None:
        bar = self.query_one("#search")
        bar.display = True
        field = self.query_one("#search-input", Input)
        field.value = ""
        field.focus()

    def _close_search(self) -> None:
        if self.query_one("#search").display:
            self.query_one("#search").display = False
            self.grid.focus()

    def _matches(self, text: str) -> list[tuple[int, int]]:
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return []
        shown = {(op.x, op.y): op.value for op in mirror.cells}
        for op in mirror.pending.values():
            shown[(op.x, op.y)] = op.value
        return find(((x, y, value) for (x, y), value in shown.items()), text)

    @on(Input.Submitted, "#search-input")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close_search()
        text = event.value
        if not text:
            self.search = None
            self.note("search cleared")
            return
        grid = self.grid
        self.search = Search(text, self._matches(text))
        found = self.search.first_after((grid.cursor_x, grid.cursor_y))
        if found is not None:
            grid.move_to(*found)
        self.note(self.search.describe(), lasts=None)

    def action_search_next(self, forward: bool = True) -> None:
        """`n`/`N`: the next or previous match of the last search (found afresh: cells
        change while you look)."""
        search = self.search
        if search is None:
            self.note("no search yet: / finds")
            return
        search.matches = self._matches(search.text)
        grid = self.grid
        found = search.step((grid.cursor_x, grid.cursor_y), forward)
        if found is not None:
            grid.move_to(*found)
        self.note(search.describe(), lasts=None)

    def action_column_width(self, delta: int) -> None:
        """`<`/`>`: the cursor's column two narrower or wider, for everyone."""
        grid = self.grid
        x = grid.cursor_x
        width = max(MIN_COLUMN_WIDTH, min(MAX_COLUMN_WIDTH, grid.column_width(x) + delta))
        if width == grid.column_width(x):
            self.note(f"column {column_name(x)} is already {width} wide")
            return
        grid.set_column_width(x, width)
        grid.scroll_to_cursor()
        self.save_widths(self.board_id, {x: width})
        self.note(f"column {column_name(x)}: {width} wide")

    @work(group="widths", exit_on_error=False)
    async def save_widths(self, board: str, widths: dict[int, int]) -> None:
        try:
            await self.client.set_column_widths(board, widths)
        except ClientError as exc:
            self.notify(
                f"Column width not saved: {exc.message}",
                title="Column width",
                severity="error",
                markup=False,
            )
        except (NotConnected, ConnectionError):
            self.notify(
                "Column width not saved: not connected",
                title="Column width",
                severity="warning",
            )

    def _close_editor(self) -> None:
        if not self.query_one("#editor").display or self._editing is None:
            return
        self.query_one("#editor").display = False
        x, y = self._editing
        self._editing = None
        self.client.set_typing(self.board_id, x, y, False)
        self._set_activity("viewing")
        self.grid.focus()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, ACTIVITY_EVENTS):
            self._note_input()
        await super().on_event(event)

    def _note_input(self) -> None:
        """The person is here (a key, a click, a scroll or a paste): not away."""
        self.last_input = self.clock.monotonic()
        if self.auto_away:
            self.auto_away = False
            self._set_status("online")

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        if self.grid.follow is not None and key != "f":
            self.grid.follow = None
            self._update_following()
        if key == "escape" and self.query_one("#editor").display:
            self._close_editor()
        if key == "escape" and self.query_one("#search").display:
            self._close_search()

    def action_cycle_status(self) -> None:
        self.auto_away = False
        self._set_status(STATUS_CYCLE[self.status])

    def _set_status(self, status: Status) -> None:
        self.status = status
        self.send_presence(status, None)

    def _set_activity(self, kind: str, detail: str | None = None) -> None:
        activity = Activity.model_validate({"kind": kind, "board": self.board_id, "detail": detail})
        self.send_presence(None, activity)

    @work(group="presence", exit_on_error=False)
    async def send_presence(self, status: Status | None, activity: Activity | None) -> None:
        # When offline, the client restores status and activity after the reconnect.
        with contextlib.suppress(ClientError, NotConnected, ConnectionError):
            await self.client.set_status(status, activity)

    async def _announce(self) -> None:
        with contextlib.suppress(ClientError, NotConnected, ConnectionError):
            await self.client.set_status(self.status, Activity(kind="viewing", board=self.board_id))

    def _check_idle(self) -> None:
        idle = self.clock.monotonic() - self.last_input
        if idle >= AWAY_AFTER_S and self.status == "online" and not self.auto_away:
            self.auto_away = True
            self._set_status("away")
            self.status = "online"  # what to come back to

    def action_follow(self) -> None:
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        options = [
            (user, p.name)
            for user, p in sorted(mirror.participants.items())
            if user != self._own_user
        ]
        self.push_screen(PickScreen("Follow whom?", options), self._follow_picked)

    def _follow_picked(self, user: str | None) -> None:
        if not user:
            return
        self.grid.follow = user
        cursor = self.grid.remote.get(user)
        if cursor is not None:
            self.grid.move_remote(user, cursor.x, cursor.y)
        self._update_following()

    def _update_following(self) -> None:
        follow = self.grid.follow
        self.status_bar.following = self._name_of(follow) if follow else None
        self.status_bar.refresh()

    def action_boards(self) -> None:
        options = [
            (b.id, b.title)
            for b in sorted(self.client.boards.values(), key=lambda b: b.title.casefold())
        ]
        self.push_screen(
            PickScreen("Boards", options, new_label="new board name…"), self._board_picked
        )

    def _board_picked(self, choice: str | None) -> None:
        if not choice:
            return
        if choice.startswith("new:"):
            title = choice.removeprefix("new:")
            self.open_board(board_id_from(title), title)
        elif choice != self.board_id:
            self.open_board(choice)

    def action_reconnect(self) -> None:
        self.client.reconnect_now()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # --- quit -----------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit at once, or ask first when edits are not saved yet."""
        unsaved = self.client.unsaved_count
        if unsaved == 0:
            self.exit()
            return
        if isinstance(self.screen, QuitScreen):
            return
        self._quit_choice = None
        self._refused_while_quitting = []
        self.push_screen(QuitScreen(unsaved, can_keep=self.client.has_outbox), self._quit_chosen)

    @on(QuitScreen.WaitRequested)
    def _wait_requested(self, _: QuitScreen.WaitRequested) -> None:
        self._quit_choice = "wait"
        self.wait_then_quit()

    @work(exclusive=True, group="quit", exit_on_error=False)
    async def wait_then_quit(self) -> None:
        await self.client.flush()
        self._finish_quit("saved", 0)

    def _quit_chosen(self, choice: str | None) -> None:
        if choice is None:  # back to the board
            self._quit_choice = None
            self.workers.cancel_group(self, "quit")
            return
        self._quit_choice = choice
        unsaved = self.client.unsaved_count
        if choice == "discard":
            self._finish_quit("discarded", self.client.discard_unsaved())
        elif unsaved == 0:
            self._finish_quit("saved", 0)
        else:
            self._finish_quit("kept" if choice == "keep" else "lost", unsaved)

    def _finish_quit(self, how: str, count: int) -> None:
        if self.exit_message:
            return  # already quitting
        edits = plural(count, "unsaved edit")
        message = {
            "saved": "all edits saved",
            "kept": f"kept {edits}; they are sent the next time you start with this server",
            "lost": f"quit with {edits}, lost (this client keeps no outbox)",
            "discarded": f"discarded {edits}",
        }[how]
        if self._refused_while_quitting:
            if how == "saved":
                message = "all other edits saved"
            message += "; refused: " + "; ".join(self._refused_while_quitting)
        self.exit_message = message
        self.notify(message, title="Quit", markup=False)
        self.exit(message=Text(message))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Cycle status", "online → busy → away", self.action_cycle_status)
        yield SystemCommand("Follow a teammate", "keep their cursor in view", self.action_follow)
        yield SystemCommand("Switch or create board", "pick a board", self.action_boards)
        yield SystemCommand("Reconnect now", "skip the reconnect wait", self.action_reconnect)
        yield SystemCommand("Undo", "take back your last edit (ctrl+z)", self.action_undo)
        yield SystemCommand("Redo", "write again what undo took back (ctrl+y)", self.action_redo)
        yield SystemCommand("Copy cells", "the selection as TSV (y)", self.action_copy_cells)
        yield SystemCommand("Paste cells", "at the cursor (p)", self.action_paste_cells)
        yield SystemCommand("Find in cells", "search values (/, then n / N)", self.action_search)
        yield SystemCommand("Keys", "show every key", self.action_help)

"""The terminal app: team presence beside a live shared grid.

The app owns no socket. It is built around a `CollabClient` (injected, so tests can
drive it against a real or a scripted server) and a clock (injected, so snapshots are
still). Client events arrive on the same event loop and update widgets directly; the
widgets repaint at most once a frame however many events arrive.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.driver import Driver
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import Footer, Input, Label

from tui_collab.board_tools import BoardTools
from tui_collab.cells import cell_name
from tui_collab.client import ClientError, CollabClient, NotConnected
from tui_collab.config import ConfigError
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
from tui_collab.hangup import ending_driver
from tui_collab.mirror import BoardMirror
from tui_collab.notes_tools import NotesTools
from tui_collab.protocol import (
    MAX_CELL_CHARS,
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
from tui_collab.screen_fit import ScreenFit
from tui_collab.screens import HelpScreen, PickScreen, QuitScreen
from tui_collab.widgets.editor import CellEditor
from tui_collab.widgets.feed import ActivityFeed
from tui_collab.widgets.grid import BoardGrid
from tui_collab.widgets.notes import NotesPane
from tui_collab.widgets.presence import BoardList, PresenceList
from tui_collab.widgets.status import StatusBar, closed_line
from tui_collab.widgets.value_line import ValueLine
from tui_collab.words import plural

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


def board_id_from(name: str) -> str:
    """A board id from what a person typed: 'Q3 plan!' -> 'q3-plan'."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower()).strip("-._")
    return slug[:64] or "board"


class CollabApp(NotesTools, BoardTools, ScreenFit, App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "tui-collab"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_status", "Status"),
        Binding("f", "follow", "Follow"),
        Binding("b", "boards", "Boards"),
        Binding("t", "notes", "Notes"),
        Binding("z", "zoom", "Zoom"),
        Binding("r", "reconnect", "Reconnect", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("enter", "enter_key", show=False, priority=True),
        Binding("f2", "f2_key", show=False, priority=True),
        Binding("slash", "slash_key", show=False, priority=True),
        Binding("escape", "escape_key", show=False, priority=True),
    ]

    def __init__(
        self,
        client: CollabClient,
        *,
        board: str = "main",
        clock: Clock | None = None,
        where: str = "",
        intro: Sequence[str] = (),
        save_theme: Callable[[str], object] | None = None,
    ) -> None:
        """`intro`: lines the feed starts with; `save_theme`: keeps a theme picked in the
        palette for next time (see config_theme.py)."""
        super().__init__()
        self.client = client
        self.board_id = board
        self.clock = clock or Clock()
        self.where = where
        self.intro = tuple(intro)
        self._save_theme = save_theme
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
        self._titles: dict[str, str] = {}
        self._init_tools()
        self._init_notes()

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver, made to exit once the terminal or pipe is gone (hangup.py)."""
        return ending_driver(super().get_driver_class())

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
                yield ValueLine(name_of=self._name_of, now=self.clock.now, id="value-line")
                yield BoardGrid(self.clock.monotonic, id="grid")
                with Horizontal(id="editor"):
                    yield Label("", id="editor-cell")
                    yield CellEditor(id="editor-input")
                with Horizontal(id="search"):
                    yield Label("/", id="search-label")
                    yield Input(placeholder="find in cells · Enter · Esc", id="search-input")
                yield ActivityFeed(self.clock.now, id="feed")
            yield NotesPane(self.clock.monotonic, id="notes-pane")
        yield Label("", id="too-small")
        yield StatusBar(self.clock.monotonic, now=self.clock.now, id="status")
        yield Footer()

    @property
    def grid(self) -> BoardGrid:
        return self.query_one(BoardGrid)

    @property
    def feed(self) -> ActivityFeed:
        return self.query_one(ActivityFeed)

    @property
    def status_bar(self) -> StatusBar:
        return self.query_one(StatusBar)

    def on_mount(self) -> None:
        self.query_one("#editor").display = False
        self.query_one("#search").display = False
        self.notes_pane.display = False
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
            *self.notes_subscriptions(),
        ]
        # The command line may have started the client already (to fail before the
        # screen opens): take its state as if it had just changed.
        self._on_state(StateChanged(client.state))
        self.set_interval(15, self._check_idle)
        for line in self.intro:
            self.feed.add(line)
        if self._save_theme is not None:
            self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.fit_to(self.size.width, self.size.height)
        self.grid.focus()
        client.start()
        self.open_board(self.board_id)

    async def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        await self.close_notes()
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
        self.show_value()
        self.notes_board_shown(mirror.id)

    def _update_title(self) -> None:
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        # Titles are user text: a Text is shown as is, never parsed as markup. The
        # cursor's cell is named on the value line below.
        self.query_one("#board-title", Label).update(
            Text(f"{mirror.meta.title}  ·  {mirror.meta.width}×{mirror.meta.height}")  # noqa: RUF001
        )

    @property
    def _own_user(self) -> str:
        welcome = self.client.welcome
        return welcome.user.id if welcome else ""

    def _now(self) -> datetime:
        return self.clock.now()

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
        self.cell_changed_under_inspector(event.board, [(event.x, event.y)])

    def _on_cells_changed(self, event: CellsChanged) -> None:
        for cell in event.cells:
            self._clear_refused(event.board, cell.x, cell.y)
        if event.board == self.board_id:
            self.grid.refresh()
        self.cell_changed_under_inspector(event.board, [(c.x, c.y) for c in event.cells])

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
        self.status_bar.pending = unsaved + self.notes_unsaved
        self.status_bar.refresh()
        if event.board == self.board_id:
            self.grid.refresh()
            self.show_value()
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
        self.show_value()

    @on(BoardGrid.Pasted)
    def _terminal_paste(self, event: BoardGrid.Pasted) -> None:
        self.paste_block(event.text)

    @property
    def max_cell_chars(self) -> int:
        welcome = self.client.welcome
        return welcome.limits.max_cell_chars if welcome is not None else MAX_CELL_CHARS

    # Keys that move the keyboard between the grid, the editor and the search line are
    # the app's, so focus moves in the same turn as the key (see `_in_order`).

    def _main_focus(self) -> str | None:
        """Which of grid, editor and search line has the keys (None: a dialog or other)."""
        if self.screen is not self.screen_stack[0]:
            return None
        focused = self.focused
        if focused is None:
            return None
        return {"grid": "grid", "editor-input": "editor", "search-input": "search"}.get(
            focused.id or ""
        )

    def action_enter_key(self) -> None:
        where = self._main_focus()
        if where == "grid":
            self.start_edit(self.grid.cursor_x, self.grid.cursor_y)
        elif where == "editor":
            self._save_edit(self.query_one("#editor-input", Input).value)
        elif where == "search":
            self.search_for(self.query_one("#search-input", Input).value)
        else:
            raise SkipAction()

    def action_f2_key(self) -> None:
        if self._main_focus() != "grid":
            raise SkipAction()
        self.start_edit(self.grid.cursor_x, self.grid.cursor_y)

    def action_slash_key(self) -> None:
        if self._main_focus() != "grid":
            raise SkipAction()
        self.action_search()

    def action_escape_key(self) -> None:
        where = self._main_focus()
        if where == "editor":
            self._close_editor()
        elif where == "search":
            self._close_search()
        else:
            raise SkipAction()

    @on(BoardGrid.EditRequested)
    def _edit_requested(self, event: BoardGrid.EditRequested) -> None:
        self.start_edit(event.x, event.y)

    def start_edit(self, x: int, y: int) -> None:
        """Open the editor on a cell, with this user's unsaved value if there is one."""
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        pending = mirror.pending_at(x, y)
        value = pending.value if pending else mirror.cells.value(x, y)
        self._editing = (x, y)
        self._editor_over_limit = False
        self._show_editor_cell(len(value))
        editor = self.query_one("#editor-input", Input)
        editor.value = value
        self.query_one("#editor").display = True
        self.screen.set_focus(editor)  # now, not on a later turn: see above
        self.client.set_typing(self.board_id, x, y, True)
        self._set_activity("editing", cell_name(x, y))

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

    def _save_edit(self, value: str) -> None:
        if self._editing is None:
            return
        x, y = self._editing
        problem = cell_value_problem(value, self.max_cell_chars)
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
        self.save_cell(self.board_id, x, y, value)

    def _close_editor(self) -> None:
        if not self.query_one("#editor").display or self._editing is None:
            return
        self.query_one("#editor").display = False
        x, y = self._editing
        self._editing = None
        self.client.set_typing(self.board_id, x, y, False)
        self._set_activity("viewing")
        self.screen.set_focus(self.grid)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, ACTIVITY_EVENTS):
            self._note_input()
        if (
            isinstance(event, events.Key | events.Paste)
            and not event.is_forwarded
            and self._main_focus() is not None
        ):
            await self._in_order(event)
            return
        await super().on_event(event)

    async def _in_order(self, event: events.Key | events.Paste) -> None:
        """Handle a key or paste for the grid, the editor or the search line wholly in
        this turn: the focused widget's own handling (the editor types a character), then
        the bindings, focused widget first.

        Textual hands a key to the focused widget's queue and runs its bindings later
        still, when the key has bubbled back up; keys read in one burst (a fast typist
        over SSH, a pasted macro, a busy moment) could then overtake each other: "ab⏎"
        saved before the "b" was typed, a key typed after ⏎ left in the closed editor.
        """
        if isinstance(event, events.Key):
            if self.grid.follow is not None and event.key != "f":
                self.grid.follow = None
                self._update_following()
            if await self._check_bindings(event.key, priority=True):
                return
        focused = self.focused
        assert focused is not None
        event._set_forwarded()
        event.bubble = False  # type: ignore[misc]  # the bindings below stand in for it
        await focused.on_event(event)
        if isinstance(event, events.Key) and not event._stop_propagation:
            await self._check_bindings(event.key)

    def _note_input(self) -> None:
        """The person is here (a key, a click, a scroll or a paste): not away."""
        self.last_input = self.clock.monotonic()
        if self.auto_away:
            self.auto_away = False
            self._set_status("online")

    def on_key(self, event: events.Key) -> None:
        if self.grid.follow is not None and event.key != "f":  # keys in a dialog, say
            self.grid.follow = None
            self._update_following()

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

    def _theme_changed(self, theme: Theme) -> None:
        assert self._save_theme is not None
        try:
            saved = self._save_theme(theme.name)
        except ConfigError as exc:
            self.notify(f"Theme not saved: {exc}", title="Theme", severity="warning", markup=False)
            return
        self.notify(f"Theme {theme.name} saved in {saved}", title="Theme", markup=False)

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
        yield SystemCommand("Notes", "the board's shared notes (t)", self.action_notes)
        yield SystemCommand("Reconnect now", "skip the reconnect wait", self.action_reconnect)
        yield SystemCommand("Undo", "take back your last edit (ctrl+z)", self.action_undo)
        yield SystemCommand("Redo", "write again what undo took back (ctrl+y)", self.action_redo)
        yield SystemCommand("Copy cells", "the selection as TSV (y)", self.action_copy_cells)
        yield SystemCommand("Paste cells", "at the cursor (p)", self.action_paste_cells)
        yield SystemCommand("Find in cells", "search values (/, then n / N)", self.action_search)
        yield SystemCommand("Inspect cell", "whole value and history (i)", self.action_inspect)
        yield SystemCommand("Export board…", "to CSV, TSV or JSON", self.action_export_board)
        yield SystemCommand("Import CSV…", "CSV, TSV or JSON, at the cursor", self.action_import)
        yield SystemCommand("Keys", "show every key", self.action_help)

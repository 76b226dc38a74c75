"""The cell inspector: a cell's whole value, who set it when, and its earlier values.

A grid column cuts values short and says nothing of who wrote them; this screen shows
all of it, and brings back any of the last 50 values (what the server keeps per cell)
in two keys, as a new edit that everyone sees, even one a teammate made hours ago.

Wiring (for the app), on `i` with the cursor on (x, y) of an open board:

    current = mirror.cells.get(x, y)
    screen = CellInspector(
        board, x, y, current,
        load=lambda: self.client.cell_history(board, x, y),
        name_of=self._name_of, now=self.clock.now,
    )
    self.push_screen(screen, callback)

The screen dismisses with the value to restore ("" restores an empty cell) or None
(Esc, `i`, `q`). The callback writes a value as a new edit, `client.set_cell(board, x,
y, value)`, through the same path as a typed edit (so it is pending, acked or refused
like any other). `load` runs in a worker of the screen; its errors (ClientError,
NotConnected, ConnectionError, a timeout after `timeout_s`, anything else too) become a
line on the screen. While the screen is open the app may call `show_current(op)` when
the cell changes under it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from tui_collab.cells import CellOp, cell_name
from tui_collab.client_state import ClientError, NotConnected
from tui_collab.protocol import HistoryEntry
from tui_collab.when import credit
from tui_collab.widgets.value_line import cell_credit, shown_value

logger = logging.getLogger("tui_collab.inspector")

LOAD_TIMEOUT_S = 10.0
"""How long the history may take before the screen says the server did not answer."""

MAX_LIST_ROWS = 12
MIN_LIST_ROWS = 2

LoadHistory = Callable[[], Awaitable[list[HistoryEntry]]]
"""Fetches the cell's history, newest first (`client.cell_history(board, x, y)`)."""


def load_problem(error: Exception) -> str:
    """Why the history did not come, for a person."""
    if isinstance(error, NotConnected | ConnectionError):  # offline, or lost mid-request
        return "History needs a connection to the server; try again once connected."
    if isinstance(error, TimeoutError):
        return "The server did not send the history in time; try again."
    if isinstance(error, ClientError):
        return f"The server refused the history: {error.message}"
    return "Could not load the history (see the log)."


class CellInspector(ModalScreen[str | None]):
    """A cell's value, author and time, and its earlier values to restore one of."""

    DEFAULT_CSS = """
    CellInspector { align: center middle; }
    CellInspector > #inspector {
        width: 76; max-width: 100%;
        height: auto; max-height: 100%;
        padding: 0 1;
        border: thick $accent; border-title-style: bold; border-title-color: $text;
        background: $surface;
    }
    CellInspector #inspector-value {
        height: auto; max-height: 6; margin-top: 1;
        padding: 0 1; background: $boost; overflow-y: auto;
    }
    CellInspector #inspector-credit { color: $text-muted; padding: 0 1; }
    CellInspector .inspector-section { color: $text-muted; text-style: bold; margin-top: 1; }
    CellInspector #inspector-history {
        height: auto; max-height: 12; border: none; padding: 0; background: $surface;
    }
    CellInspector #inspector-history:focus { border: none; }
    CellInspector #inspector-status { color: $text-muted; }
    CellInspector #inspector-status.-error { color: $error; }
    CellInspector .inspector-hint { color: $text-muted; margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,i,q", "close", "Close"),
    ]

    def __init__(
        self,
        board: str,
        x: int,
        y: int,
        current: CellOp | None,
        load: LoadHistory,
        name_of: Callable[[str], str],
        now: Callable[[], datetime],
        *,
        timeout_s: float = LOAD_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self.board = board
        self.x = x
        self.y = y
        self.current = current
        self._load = load
        self._name_of = name_of
        self._now = now
        self._timeout_s = timeout_s
        self.entries: list[HistoryEntry] | None = None
        """The history as loaded, newest first; None until it came."""
        self.earlier: list[HistoryEntry] = []
        """What the list offers: `entries` less the op the cell holds now."""
        self.problem: str | None = None
        """Why the history did not come, once `load` failed."""

    def compose(self) -> ComposeResult:
        with Vertical(id="inspector") as box:
            box.border_title = f"{cell_name(self.x, self.y)} — history"
            box.border_subtitle = self.board
            yield Static(self._value_text(), id="inspector-value")
            yield Label(self._credit_text(), id="inspector-credit")
            yield Label("Earlier values", classes="inspector-section")
            yield OptionList(id="inspector-history")
            yield Label("loading history…", id="inspector-status")
            yield Label("↑↓ choose · Enter restores · Esc closes", classes="inspector-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).display = False
        self._fetch()

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_list)

    def _fit_list(self) -> None:
        """Shrink the list so the whole dialog fits a short terminal: a box of auto height
        would cut its foot off instead, hint and all, and hide the chosen row."""
        if not self.is_attached:
            return
        box = self.query_one("#inspector")
        history = self.query_one(OptionList)
        others = sum(
            child.outer_size.height + child.styles.margin.top + child.styles.margin.bottom
            for child in box.children
            if child is not history and child.display
        )
        room = self.size.height - box.styles.gutter.height - others
        history.styles.max_height = max(MIN_LIST_ROWS, min(MAX_LIST_ROWS, room))

    # --- what it shows ---------------------------------------------------------------

    def _value_text(self) -> Text:
        op = self.current
        if op is None or not op.value:
            return Text("empty", style="italic")
        return Text(shown_value(op.value))

    def _credit_text(self) -> Text:
        op = self.current
        words = cell_credit(op, self._name_of, self._now())
        if op is None:
            words = "never set"
        return Text(words or "set by an unknown teammate")

    def _is_current(self, entry: HistoryEntry) -> bool:
        op = self.current
        return op is not None and (entry.clock, entry.client) == (op.clock, op.client)

    def _prompt(self, entry: HistoryEntry, now: datetime) -> Table:
        """One entry: its value (wrapped; "empty" if it cleared the cell) and, on the right,
        who wrote it and when ("same as now" when restoring it would change nothing)."""
        row = Table.grid(expand=True, padding=(0, 0, 0, 2))
        row.add_column(ratio=1, overflow="fold")
        row.add_column(no_wrap=True, justify="right", style="dim")
        value = Text(shown_value(entry.value)) if entry.value else Text("empty", "italic dim")
        words = credit(self._name_of(entry.by), entry.at, now)
        if self.current is not None and entry.value == self.current.value:
            words = f"same as now · {words}"
        row.add_row(value, words)
        return row

    def _show_history(self, entries: list[HistoryEntry]) -> None:
        self.entries = entries
        self.earlier = [entry for entry in entries if not self._is_current(entry)]
        history = self.query_one(OptionList)
        now = self._now()
        history.clear_options()
        history.add_options(
            Option(
                self._prompt(entry, now),
                id=str(n),
                disabled=self.current is not None and entry.value == self.current.value,
            )
            for n, entry in enumerate(self.earlier)
        )
        status = self.query_one("#inspector-status", Label)
        status.remove_class("-error")
        if self.earlier:
            history.display = True
            status.display = False
            self.call_after_refresh(self._fit_list)
            history.focus()
            history.highlighted = next(
                (n for n, option in enumerate(history.options) if not option.disabled), None
            )
        else:
            history.display = False
            status.display = True
            status.update("no earlier values")

    def _show_problem(self, problem: str) -> None:
        self.problem = problem
        status = self.query_one("#inspector-status", Label)
        status.add_class("-error")
        status.update(Text(problem))

    def show_current(self, op: CellOp | None) -> None:
        """The cell changed while the screen is open: show `op` and re-sort the list."""
        self.current = op
        if not self.is_mounted:
            return
        self.query_one("#inspector-value", Static).update(self._value_text())
        self.query_one("#inspector-credit", Label).update(self._credit_text())
        if self.entries is not None:
            self._show_history(self.entries)

    # --- loading ---------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False)
    async def _fetch(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                entries = await self._load()
        except (ClientError, NotConnected, ConnectionError, TimeoutError) as error:
            self._show_problem(load_problem(error))
        except Exception as error:  # a bug in loading must not take the app down
            logger.exception("loading the history of %s failed", cell_name(self.x, self.y))
            self._show_problem(load_problem(error))
        else:
            self._show_history(entries)

    # --- choosing ----------------------------------------------------------------------

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.dismiss(self.earlier[int(event.option.id)].value)

    def action_close(self) -> None:
        self.dismiss(None)

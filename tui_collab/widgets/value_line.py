"""The value line: the cursor cell's name, its whole value, and who set it when.

A grid column is a few cells wide, so most values are cut there; this line, above the
grid, shows the one under the cursor as far as the terminal allows.

Wiring (for the app): compose `ValueLine(name_of=self._name_of, now=self.clock.now,
id="value-line")` above the grid, and on every cursor move, board switch and change of
the cell under the cursor call `value_line.show(cell_name(x, y), mirror.cells.get(x, y))`
(`show(None)` hides what it showed when no board is open). While this client's own edit
of that cell waits for the server, pass its value too, `show(name, op,
pending=mirror.pending_at(x, y).value)`: the line shows it as the grid does, "not saved
yet" instead of the credit. It reads the time at each
paint and repaints itself every few seconds, so "2 min ago" ages without being told.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from tui_collab.cells import CellOp
from tui_collab.protocol import CELL_REFUSED
from tui_collab.when import credit, from_ms

SEPARATOR = " · "
GAP = 3
"""Spaces at least between the value and the credit on the right."""
MIN_VALUE_CELLS = 12
"""A value is shown at least this wide before the credit gives way to it."""
REPAINT_S = 5.0


def shown_value(value: str) -> str:
    """`value` as it is, except characters a cell may no longer hold, written as escapes.

    New values cannot hold them (the protocol refuses bidi controls, invisible characters
    and separators), but values stored under the older rule still can; escaped, a
    right-to-left override cannot reorder the rest of the line. Joiners are left alone:
    emoji and scripts need them.
    """
    return CELL_REFUSED.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def cell_credit(op: CellOp | None, name_of: Callable[[str], str], now: datetime) -> str:
    """ "by Ada · 2 min ago" for the op that set a cell ("cleared by …" if it emptied it)."""
    if op is None:
        return ""
    words = credit(name_of(op.by) if op.by else None, from_ms(op.at), now)
    if words and not op.value:
        return f"cleared {words}"
    return words


class ValueLine(Static):
    """One line: "B4 · <value>" on the left, "by Ada · 2 min ago" on the right."""

    DEFAULT_CSS = """
    ValueLine {
        height: 1; width: 1fr; padding: 0 1;
        background: $boost; color: $text;
    }
    ValueLine > .value-line--name { color: $accent; text-style: bold; }
    ValueLine > .value-line--empty { color: $text-muted; text-style: italic; }
    ValueLine > .value-line--credit { color: $text-muted; }
    ValueLine > .value-line--pending { color: $warning; text-style: italic; }
    """

    COMPONENT_CLASSES = {
        "value-line--name",
        "value-line--empty",
        "value-line--credit",
        "value-line--pending",
    }

    def __init__(
        self,
        *,
        name_of: Callable[[str], str],
        now: Callable[[], datetime],
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._name_of = name_of
        self._now = now
        self.cell: str | None = None
        """The cell's name ("B4"); None shows nothing."""
        self.op: CellOp | None = None
        self.pending: str | None = None
        """This client's value for the cell that the server has not acknowledged yet."""

    def on_mount(self) -> None:
        self.set_interval(REPAINT_S, self.refresh)

    def show(
        self, cell: str | None, op: CellOp | None = None, *, pending: str | None = None
    ) -> None:
        """Show cell `cell` ("B4") holding `op` (None: never set, shown as empty), or
        `pending`, this client's edit of it that the server has not acknowledged yet."""
        if (cell, op, pending) != (self.cell, self.op, self.pending):
            self.cell, self.op, self.pending = cell, op, pending
            self.refresh()

    def render(self) -> Text:
        return self.line(self.content_size.width)

    def line(self, width: int) -> Text:
        """The line fitted to `width` cells: the value is cut (with …) before the name,
        and the credit gives way before the value shrinks below `MIN_VALUE_CELLS`."""
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        if self.cell is None:
            return text
        text.append(self.cell, self.get_component_rich_style("value-line--name"))
        text.append(SEPARATOR)
        op = self.op
        if self.pending is not None:
            style = self.get_component_rich_style("value-line--pending")
            text.append(shown_value(self.pending) or "empty", style)
            right = "not saved yet"
        elif op is None or not op.value:
            text.append("empty", self.get_component_rich_style("value-line--empty"))
            right = cell_credit(op, self._name_of, self._now())
        else:
            text.append(shown_value(op.value))
            right = cell_credit(op, self._name_of, self._now())
        if right:
            room = width - cell_len(right) - GAP
            if room >= min(text.cell_len, cell_len(self.cell) + len(SEPARATOR) + MIN_VALUE_CELLS):
                text.truncate(room, overflow="ellipsis")
                text.append(" " * (width - text.cell_len - cell_len(right)))
                text.append(right, self.get_component_rich_style("value-line--credit"))
        text.truncate(width, overflow="ellipsis")
        return text

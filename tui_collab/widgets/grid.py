"""The board grid: one Line-API widget that paints cells, cursors, labels and marks.

Only visible lines are rendered, each from the board mirror at paint time, so a burst of
remote events costs one repaint per frame however many arrive. User text is painted as
plain segments: a value can never be read as markup or reach the terminal as an escape.

Columns have the widths the board sets (`BoardMeta.widths`), so every mapping between
cells and screen columns (painting, clicks, scrolling) goes through `column_x`.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui_collab.cells import column_name
from tui_collab.mirror import BoardMirror
from tui_collab.protocol import DEFAULT_COLUMN_WIDTH, ColumnWidth
from tui_collab.selection import Rect

CELL_WIDTH = DEFAULT_COLUMN_WIDTH
"""A column's width unless the board sets another."""
ROW_HEADER_WIDTH = 5
IDLE_AFTER_S = 5.0
"""A teammate's cursor label dims after this long without movement."""
TYPING_EXPIRES_S = 5.0
"""A teammate's ✎ mark goes this long after their last `typing active:true`: a typer
repeats it every 2 s, so a mark outlives only a typer who stopped or vanished."""
PENDING_MARK = "*"
REFUSED_MARK = "!"
TYPING_MARK = "✎"


@dataclass
class RemoteCursor:
    user: str
    name: str
    colour: str
    x: int
    y: int
    moved_at: float


class BoardGrid(ScrollView, can_focus=True, inherit_bindings=False):
    """A board's cells with this user's cursor and every teammate's, in their colours."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(0, -1)", "Up", show=False),
        Binding("down,j", "move(0, 1)", "Down", show=False),
        Binding("left,h", "move(-1, 0)", "Left", show=False),
        Binding("right,l", "move(1, 0)", "Right", show=False),
        Binding("pageup", "move(0, -10)", show=False),
        Binding("pagedown", "move(0, 10)", show=False),
        Binding("home", "home", show=False),
        Binding("shift+up", "extend(0, -1)", show=False),
        Binding("shift+down", "extend(0, 1)", show=False),
        Binding("shift+left", "extend(-1, 0)", show=False),
        Binding("shift+right", "extend(1, 0)", show=False),
        Binding("escape", "clear_selection", show=False),
        Binding("enter,f2", "edit", "Edit"),
        # What the app does with the cells: bound here so they act on the grid only,
        # never while the cell editor or the search line has the keys. The footer shows
        # the one a person would not guess (more would not fit 80 columns); ? lists all.
        Binding("y,ctrl+c", "app.copy_cells", "Copy", show=False),
        Binding("p,ctrl+v", "app.paste_cells", "Paste", show=False),
        Binding("delete,backspace", "app.clear_cells", "Clear", show=False),
        Binding("ctrl+z", "app.undo", "Undo", show=False),
        Binding("i", "app.inspect", "Inspect", show=False),
        Binding("ctrl+y", "app.redo", "Redo", show=False),
        Binding("slash", "app.search", "Find", key_display="/"),
        Binding("n", "app.search_next(True)", show=False),
        Binding("N", "app.search_next(False)", show=False),
        Binding("less_than_sign", "app.column_width(-2)", show=False),
        Binding("greater_than_sign", "app.column_width(2)", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "grid--header",
        "grid--cell",
        "grid--cursor",
        "grid--pending",
        "grid--refused",
        "grid--selected",
    }

    DEFAULT_CSS = """
    BoardGrid { background: $surface; }
    BoardGrid > .grid--header { color: $text-muted; background: $panel; }
    BoardGrid > .grid--cell { color: $text; }
    BoardGrid > .grid--cursor { background: $accent; color: $text; text-style: bold; }
    BoardGrid > .grid--pending { color: $warning; text-style: italic; }
    BoardGrid > .grid--refused { color: $error; text-style: bold; }
    BoardGrid > .grid--selected { background: $primary 45%; color: $text; text-style: underline; }
    """

    cursor_x: var[int] = var(0)
    cursor_y: var[int] = var(0)

    class CursorMoved(Message):
        """This user moved their cursor (to be sent to the server)."""

        def __init__(self, x: int, y: int) -> None:
            super().__init__()
            self.x = x
            self.y = y

    class EditRequested(Message):
        def __init__(self, x: int, y: int) -> None:
            super().__init__()
            self.x = x
            self.y = y

    class Pasted(Message):
        """Text the terminal pasted while the grid had focus: a block to write."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self._clock = clock
        self.mirror: BoardMirror | None = None
        self.own_user = ""
        self.remote: dict[str, RemoteCursor] = {}
        self.typing: dict[str, tuple[int, int]] = {}
        """Teammates typing, by user: the cell of their last `typing active:true`."""
        self.typing_at: dict[str, float] = {}
        """When each teammate's last `typing active:true` arrived (the injected clock)."""
        self.refused: dict[tuple[int, int], str] = {}
        """Cells of this board where the server refused this user's edit, with its reason."""
        self.follow: str | None = None
        self.select_from: tuple[int, int] | None = None
        """The corner a range selection started from (the cursor is the other one);
        None when there is no range."""
        self._dragging = False
        self.widths: list[int] = []
        """Each column's width in terminal cells."""
        self._col_x: list[int] = [0]
        """Where each column starts, from the first column's left edge; one more entry
        than there are columns (the last is the total width)."""

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    # --- state in -------------------------------------------------------------------

    def show_board(self, mirror: BoardMirror, own_user: str) -> None:
        self.mirror = mirror
        self.own_user = own_user
        self.remote.clear()
        self.typing.clear()
        self.typing_at.clear()
        now = self._clock()
        for user, (x, y) in mirror.cursors.items():
            self._place(user, x, y, now)
        self.cursor_x = min(self.cursor_x, mirror.meta.width - 1)
        self.cursor_y = min(self.cursor_y, mirror.meta.height - 1)
        self.select_from = None
        self.show_widths(mirror.meta.widths)

    def show_widths(self, widths: Iterable[ColumnWidth] | None) -> None:
        """Lay the columns out at these widths (the board's; any column not listed is
        `CELL_WIDTH`)."""
        mirror = self.mirror
        if mirror is None:
            return
        self.widths = [CELL_WIDTH] * mirror.meta.width
        for column in widths or ():
            if 0 <= column.x < len(self.widths):
                self.widths[column.x] = column.width
        self._lay_out()

    def set_column_width(self, x: int, width: int) -> None:
        """Show one column at a new width now, before the board's update confirms it."""
        if 0 <= x < len(self.widths):
            self.widths[x] = width
            self._lay_out()

    def _lay_out(self) -> None:
        col_x = [0]
        for width in self.widths:
            col_x.append(col_x[-1] + width)
        self._col_x = col_x
        height = self.mirror.meta.height if self.mirror is not None else 0
        self.virtual_size = Size(ROW_HEADER_WIDTH + col_x[-1], height + 1)
        self.refresh()

    def column_x(self, x: int) -> int:
        """Where column `x` starts, counted from the first column's left edge."""
        return self._col_x[min(max(0, x), len(self._col_x) - 1)]

    def column_width(self, x: int) -> int:
        return self.widths[x] if 0 <= x < len(self.widths) else CELL_WIDTH

    def column_at(self, offset: int) -> int:
        """The column at `offset` cells from the first column's left edge (clamped)."""
        return max(0, min(len(self.widths) - 1, bisect_right(self._col_x, offset) - 1))

    def move_remote(self, user: str, x: int, y: int) -> None:
        self._place(user, x, y, self._clock())
        if user == self.follow:
            self._scroll_to_cell(x, y)
        self.refresh()

    def remove_remote(self, user: str) -> None:
        self.remote.pop(user, None)
        self.typing.pop(user, None)
        self.typing_at.pop(user, None)
        if self.follow == user:
            self.follow = None
        self.refresh()

    def set_typing(self, user: str, x: int, y: int, active: bool) -> None:
        if active:
            self.typing[user] = (x, y)
            self.typing_at[user] = self._clock()
        else:
            self.typing.pop(user, None)
            self.typing_at.pop(user, None)
        self.refresh()

    def expire_typing(self) -> None:
        """Drop ✎ marks not repeated for `TYPING_EXPIRES_S` (the typer stopped or left)."""
        now = self._clock()
        stale = [u for u, at in self.typing_at.items() if now - at >= TYPING_EXPIRES_S]
        for user in stale:
            self.typing.pop(user, None)
            self.typing_at.pop(user, None)
        if stale:
            self.refresh()

    def _typing_cells(self) -> set[tuple[int, int]]:
        """The cells that show a ✎ mark: a teammate typed there within `TYPING_EXPIRES_S`."""
        now = self._clock()
        return {
            pos
            for user, pos in self.typing.items()
            if now - self.typing_at.get(user, now) < TYPING_EXPIRES_S
        }

    def _place(self, user: str, x: int, y: int, now: float) -> None:
        if user == self.own_user or self.mirror is None:
            return
        participant = self.mirror.participants.get(user)
        name = participant.name if participant else user
        colour = participant.color if participant else "#888888"
        self.remote[user] = RemoteCursor(user, name, colour, x, y, now)

    def _tick(self) -> None:
        self.expire_typing()
        now = self._clock()
        if any(IDLE_AFTER_S <= now - c.moved_at < IDLE_AFTER_S + 1.5 for c in self.remote.values()):
            self.refresh()

    # --- own cursor -----------------------------------------------------------------

    @property
    def selection(self) -> Rect | None:
        """The selected range; None when there is none (the cursor's cell alone)."""
        if self.select_from is None:
            return None
        return Rect.between(self.select_from, (self.cursor_x, self.cursor_y))

    @property
    def target(self) -> Rect:
        """What copy and clear act on: the selection, or else the cursor's cell."""
        return self.selection or Rect(self.cursor_x, self.cursor_y, self.cursor_x, self.cursor_y)

    def action_move(self, dx: int, dy: int) -> None:
        self.move_to(self.cursor_x + dx, self.cursor_y + dy)

    def action_extend(self, dx: int, dy: int) -> None:
        """Grow or shrink the selection: the anchor stays, the cursor moves."""
        if self.select_from is None:
            self.select_from = (self.cursor_x, self.cursor_y)
        self.move_to(self.cursor_x + dx, self.cursor_y + dy, extend=True)

    def action_clear_selection(self) -> None:
        if self.select_from is not None:
            self.select_from = None
            self.refresh()

    def action_home(self) -> None:
        self.move_to(0, self.cursor_y)

    def action_edit(self) -> None:
        self.post_message(self.EditRequested(self.cursor_x, self.cursor_y))

    def move_to(self, x: int, y: int, *, extend: bool = False) -> None:
        """Move this user's cursor; unless `extend`, a selection goes away."""
        if self.mirror is None:
            return
        if not extend and self.select_from is not None:
            self.select_from = None
            self.refresh()
        x = max(0, min(self.mirror.meta.width - 1, x))
        y = max(0, min(self.mirror.meta.height - 1, y))
        if (x, y) == (self.cursor_x, self.cursor_y):
            return
        self.cursor_x, self.cursor_y = x, y
        self._scroll_to_cell(x, y)
        self.refresh()
        self.post_message(self.CursorMoved(x, y))

    def scroll_to_cursor(self) -> None:
        self._scroll_to_cell(self.cursor_x, self.cursor_y)

    def cell_at(self, offset_x: int, offset_y: int) -> tuple[int, int]:
        """The cell under a point of the widget (clamped to the board)."""
        x = self.column_at(offset_x - ROW_HEADER_WIDTH + int(self.scroll_offset.x))
        y = max(0, offset_y - 1 + int(self.scroll_offset.y))
        return x, y

    def on_mouse_down(self, event: events.MouseDown) -> None:
        """A press moves the cursor there and starts a drag that selects a range."""
        if event.button != 1 or event.y < 1 or event.x < ROW_HEADER_WIDTH:
            return
        self.focus()
        x, y = self.cell_at(event.x, event.y)
        self.move_to(x, y)
        self.select_from = (self.cursor_x, self.cursor_y)
        self._dragging = True
        self.capture_mouse()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging:
            x, y = self.cell_at(event.x, max(1, event.y))
            self.move_to(x, y, extend=True)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if not self._dragging:
            return
        self._dragging = False
        self.release_mouse()
        if self.select_from == (self.cursor_x, self.cursor_y):
            self.select_from = None  # a click, not a drag
            self.refresh()

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        if event.text:
            self.post_message(self.Pasted(event.text))

    def _scroll_to_cell(self, x: int, y: int) -> None:
        visible_rows = max(1, self.size.height - 1)
        visible_width = max(1, self.size.width - ROW_HEADER_WIDTH)
        top = int(self.scroll_offset.y)
        left = int(self.scroll_offset.x)
        if y < top:
            top = y
        elif y >= top + visible_rows:
            top = y - visible_rows + 1
        start, end = self.column_x(x), self.column_x(x + 1)
        if start < left:
            left = start
        elif end > left + visible_width:
            # Scroll by whole columns: the first one that leaves room for column x.
            first = x
            while first > 0 and end - self.column_x(first - 1) <= visible_width:
                first -= 1
            left = self.column_x(first)
        self.scroll_to(x=left, y=top, animate=False, immediate=True)

    # --- painting -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        mirror = self.mirror
        if mirror is None:
            return Strip.blank(width, base)
        header = self.get_component_rich_style("grid--header")
        scroll_x = int(self.scroll_offset.x)
        first_col = self.column_at(scroll_x)
        shift = scroll_x - self.column_x(first_col)
        cols = min(len(self.widths), bisect_right(self._col_x, scroll_x + width) + 1)
        if y == 0:
            cells = [
                Segment(column_name(c).center(self.widths[c])[: self.widths[c]], header)
                for c in range(first_col, cols)
            ]
            gutter = Segment(" " * ROW_HEADER_WIDTH, header)
        else:
            row = y - 1 + int(self.scroll_offset.y)
            if row >= mirror.meta.height:
                return Strip.blank(width, base)
            labels = self._labels_for_row(row)
            typing = self._typing_cells()
            selection = self.selection
            cells = [
                segment
                for c in range(first_col, cols)
                for segment in self._cell(
                    mirror,
                    c,
                    row,
                    labels.get(c),
                    typing,
                    selection is not None and selection.contains(c, row),
                )
            ]
            gutter = Segment(f"{row + 1:>4} ", header)
        body = Strip(cells).crop(shift, shift + max(0, width - ROW_HEADER_WIDTH))
        return Strip.join([Strip([gutter]), body]).extend_cell_length(width, base)

    def _labels_for_row(self, row: int) -> dict[int, RemoteCursor]:
        """Name labels go on an empty cell above a teammate's cursor, else below, else above."""
        labels: dict[int, RemoteCursor] = {}
        mirror = self.mirror
        if mirror is None:
            return labels
        for cursor in self.remote.values():
            if abs(cursor.y - row) != 1:
                continue
            above, below = cursor.y - 1, cursor.y + 1
            spots = [y for y in (above, below) if 0 <= y < mirror.meta.height]
            empty = [y for y in spots if not mirror.cells.value(cursor.x, y)]
            chosen = (empty or spots or [above])[0]
            if chosen == row:
                labels[cursor.x] = cursor
        return labels

    def _cell(
        self,
        mirror: BoardMirror,
        x: int,
        y: int,
        label: RemoteCursor | None,
        typing: set[tuple[int, int]],
        selected: bool = False,
    ) -> list[Segment]:
        """One cell at its column's width: value, `*` if not saved yet, then `!` (refused)
        and `✎` (a teammate typing) at the right. Marks are cut only in a column too
        narrow for them; the value is cut first."""
        width = self.column_width(x)
        pending = mirror.pending_at(x, y)
        value = pending.value if pending is not None else mirror.cells.value(x, y)
        style = self.get_component_rich_style("grid--cell")
        if pending is not None:
            style += self.get_component_rich_style("grid--pending")
        here = [c for c in self.remote.values() if (c.x, c.y) == (x, y)]
        if selected:
            style += self.get_component_rich_style("grid--selected")
        text_style = style
        if (x, y) == (self.cursor_x, self.cursor_y):
            style += self.get_component_rich_style("grid--cursor")
            text_style = style
        elif here:
            style += Style(bgcolor=self._colour(here[0]), color="#000000")
            text_style = style
        elif label is not None:
            value = label.name
            text_style = style + Style(color=self._colour(label), bold=True)
        inline = PENDING_MARK if pending is not None else ""
        badges: list[Segment] = []
        if (x, y) in self.refused:
            refused = self.get_component_rich_style("grid--refused")
            badges.append(Segment(REFUSED_MARK, style + Style(color=refused.color, bold=True)))
        if (x, y) in typing:
            badges.append(Segment(TYPING_MARK, style))
        badge_cells = sum(s.cell_length for s in badges)
        text = _fit(value, width, len(inline) + badge_cells + (1 if badges else 0))
        pad = width - 1 - cell_len(text) - len(inline) - badge_cells
        segments = [Segment(text, text_style)]
        if inline:
            segments.append(Segment(inline, style))
        segments.append(Segment(" " * pad, style))
        segments.extend(badges)
        segments.append(Segment(" ", style))
        simple = list(Segment.simplify(s for s in segments if s.text))
        if pad < 0:  # a column too narrow for its marks: cut them at its edge
            return list(Strip(simple).crop(0, width))
        return simple

    def _colour(self, cursor: RemoteCursor) -> str:
        if self._clock() - cursor.moved_at < IDLE_AFTER_S:
            return cursor.colour
        dimmed = Color.parse(cursor.colour).blend(Color.parse("#303030"), 0.6)
        return dimmed.hex


def _fit(text: str, width: int, marks: int = 0) -> str:
    """`text` cut to leave room for `marks` cells and one space between columns.

    Returns at most `width - 1 - marks` cells, unpadded; a cut ends in '…'.
    """
    room = max(1, width - 1 - marks)
    if cell_len(text) <= room:
        return text
    return set_cell_size(text, room - 1) + "…"

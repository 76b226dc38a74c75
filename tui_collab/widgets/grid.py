"""The board grid: one Line-API widget that paints cells, cursors, labels and marks.

Only visible lines are rendered, each from the board mirror at paint time, so a burst of
remote events costs one repaint per frame however many arrive. User text is painted as
plain segments: a value can never be read as markup or reach the terminal as an escape.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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

CELL_WIDTH = 10
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
        Binding("enter,f2", "edit", "Edit"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "grid--header",
        "grid--cell",
        "grid--cursor",
        "grid--pending",
        "grid--refused",
    }

    DEFAULT_CSS = """
    BoardGrid { background: $surface; }
    BoardGrid > .grid--header { color: $text-muted; background: $panel; }
    BoardGrid > .grid--cell { color: $text; }
    BoardGrid > .grid--cursor { background: $accent; color: $text; text-style: bold; }
    BoardGrid > .grid--pending { color: $warning; text-style: italic; }
    BoardGrid > .grid--refused { color: $error; text-style: bold; }
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
        self.virtual_size = Size(
            ROW_HEADER_WIDTH + mirror.meta.width * CELL_WIDTH, mirror.meta.height + 1
        )
        self.refresh()

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

    def action_move(self, dx: int, dy: int) -> None:
        self.move_to(self.cursor_x + dx, self.cursor_y + dy)

    def action_home(self) -> None:
        self.move_to(0, self.cursor_y)

    def action_edit(self) -> None:
        self.post_message(self.EditRequested(self.cursor_x, self.cursor_y))

    def move_to(self, x: int, y: int) -> None:
        if self.mirror is None:
            return
        x = max(0, min(self.mirror.meta.width - 1, x))
        y = max(0, min(self.mirror.meta.height - 1, y))
        if (x, y) == (self.cursor_x, self.cursor_y):
            return
        self.cursor_x, self.cursor_y = x, y
        self._scroll_to_cell(x, y)
        self.refresh()
        self.post_message(self.CursorMoved(x, y))

    def on_click(self, event: events.Click) -> None:
        if event.y < 1 or event.x < ROW_HEADER_WIDTH:
            return
        x = (event.x - ROW_HEADER_WIDTH + int(self.scroll_offset.x)) // CELL_WIDTH
        y = event.y - 1 + int(self.scroll_offset.y)
        self.focus()
        self.move_to(x, y)

    def _scroll_to_cell(self, x: int, y: int) -> None:
        visible_rows = max(1, self.size.height - 1)
        visible_cols = max(1, (self.size.width - ROW_HEADER_WIDTH) // CELL_WIDTH)
        top = int(self.scroll_offset.y)
        left_col = int(self.scroll_offset.x) // CELL_WIDTH
        if y < top:
            top = y
        elif y >= top + visible_rows:
            top = y - visible_rows + 1
        if x < left_col:
            left_col = x
        elif x >= left_col + visible_cols:
            left_col = x - visible_cols + 1
        self.scroll_to(x=left_col * CELL_WIDTH, y=top, animate=False, immediate=True)

    # --- painting -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        mirror = self.mirror
        if mirror is None:
            return Strip.blank(width, base)
        header = self.get_component_rich_style("grid--header")
        scroll_x = int(self.scroll_offset.x)
        first_col = scroll_x // CELL_WIDTH
        shift = scroll_x - first_col * CELL_WIDTH
        cols = min(mirror.meta.width, first_col + (width - ROW_HEADER_WIDTH) // CELL_WIDTH + 2)
        if y == 0:
            cells = [
                Segment(column_name(c).center(CELL_WIDTH), header) for c in range(first_col, cols)
            ]
            gutter = Segment(" " * ROW_HEADER_WIDTH, header)
        else:
            row = y - 1 + int(self.scroll_offset.y)
            if row >= mirror.meta.height:
                return Strip.blank(width, base)
            labels = self._labels_for_row(row)
            typing = self._typing_cells()
            cells = [
                segment
                for c in range(first_col, cols)
                for segment in self._cell(mirror, c, row, labels.get(c), typing)
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
    ) -> list[Segment]:
        """One cell, `CELL_WIDTH` wide: value, `*` if not saved yet, then `!` (refused)
        and `✎` (a teammate typing) at the right. Marks are never cut; the value is."""
        pending = mirror.pending_at(x, y)
        value = pending.value if pending is not None else mirror.cells.value(x, y)
        style = self.get_component_rich_style("grid--cell")
        if pending is not None:
            style += self.get_component_rich_style("grid--pending")
        here = [c for c in self.remote.values() if (c.x, c.y) == (x, y)]
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
        text = _fit(value, CELL_WIDTH, len(inline) + badge_cells + (1 if badges else 0))
        pad = CELL_WIDTH - 1 - cell_len(text) - len(inline) - badge_cells
        segments = [Segment(text, text_style)]
        if inline:
            segments.append(Segment(inline, style))
        segments.append(Segment(" " * pad, style))
        segments.extend(badges)
        segments.append(Segment(" ", style))
        return list(Segment.simplify(s for s in segments if s.text))

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

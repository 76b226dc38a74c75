"""Rectangles of cells, and the TSV that copy and paste move them as.

Pure code: the grid keeps an anchor and a cursor, the app turns a selection into TSV for
the clipboard and a pasted block into edits. TSV because every spreadsheet reads and
writes it, and because a cell can hold neither a tab nor a line break, so no quoting is
ever needed on the way out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from tui_collab.editing import clean_paste
from tui_collab.words import plural

_LINE_BREAK: Final = re.compile("\r\n|\r|\n")


@dataclass(frozen=True)
class Rect:
    """An inclusive rectangle of cells, whichever corner the selection started from."""

    left: int
    top: int
    right: int
    bottom: int

    @classmethod
    def between(cls, a: tuple[int, int], b: tuple[int, int]) -> Rect:
        """The rectangle with `a` and `b` (an anchor and a cursor) at opposite corners."""
        return cls(min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1

    @property
    def size(self) -> int:
        return self.width * self.height

    def contains(self, x: int, y: int) -> bool:
        return self.left <= x <= self.right and self.top <= y <= self.bottom

    def cells(self) -> Iterator[tuple[int, int]]:
        """Every cell, row by row."""
        for y in range(self.top, self.bottom + 1):
            for x in range(self.left, self.right + 1):
                yield x, y

    def describe(self) -> str:
        """How big it is, columns first: "3 by 4" as "3x4 cells", or "1 cell"."""
        if self.size == 1:
            return "1 cell"
        return f"{self.width}×{self.height} cells"  # noqa: RUF001


def to_tsv(rect: Rect, value: Callable[[int, int], str]) -> str:
    """The rectangle's values as TSV: tabs between columns, a line break after each row
    but the last (so one cell copies as its bare value)."""
    return "\n".join(
        "\t".join(value(x, y) for x in range(rect.left, rect.right + 1))
        for y in range(rect.top, rect.bottom + 1)
    )


def parse_tsv(text: str) -> list[list[str]]:
    """Rows of values from TSV or plain multi-line text; one trailing line break (as
    spreadsheets add) is not an extra empty row."""
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith(("\n", "\r")):
        text = text[:-1]
    return [line.split("\t") for line in _LINE_BREAK.split(text)]


@dataclass(frozen=True)
class PastePlan:
    """What a paste writes: edits inside the board, and what the person should be told."""

    edits: list[tuple[int, int, str]]
    outside: int
    """Values that fell past the board's right or bottom edge (not written)."""
    cleaned: int
    """Values changed to fit a cell (characters removed, or cut to the limit)."""

    @property
    def notice(self) -> str:
        """'pasted 12 cells; 4 fell outside the board; 1 value cleaned'."""
        parts = [f"pasted {plural(len(self.edits), 'cell')}"]
        if self.outside:
            parts.append(f"{self.outside} fell outside the board")
        if self.cleaned:
            parts.append(f"{plural(self.cleaned, 'value')} changed to fit a cell")
        return "; ".join(parts)


def plan_paste(
    rows: list[list[str]], x: int, y: int, width: int, height: int, max_chars: int
) -> PastePlan:
    """A block pasted with its top-left at (x, y) on a board `width` wide and `height` high: clipped
    at the edges, each value cleaned as the cell editor cleans a paste and cut to
    `max_chars`, so the server refuses none of them."""
    edits: list[tuple[int, int, str]] = []
    outside = cleaned = 0
    for dy, row in enumerate(rows):
        for dx, raw in enumerate(row):
            cx, cy = x + dx, y + dy
            if cx >= width or cy >= height:
                outside += 1
                continue
            value = clean_paste(raw).text
            if len(value) > max_chars:
                value = value[:max_chars]
            cleaned += value != raw
            edits.append((cx, cy, value))
    return PastePlan(edits, outside, cleaned)

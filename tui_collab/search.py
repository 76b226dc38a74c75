"""Finding cells by what they hold: case-insensitive substring, in reading order.

Pure code. Matches are ordered row by row, left to right, the way a person reads the
board, so `n` walks down the board and wraps to the top.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

Cell = tuple[int, int]


def find(cells: Iterable[tuple[int, int, str]], text: str) -> list[Cell]:
    """The cells whose value contains `text` (ignoring case), in reading order."""
    needle = text.casefold()
    if not needle:
        return []
    return sorted(((x, y) for x, y, value in cells if needle in value.casefold()), key=_reading)


def _reading(cell: Cell) -> tuple[int, int]:
    return cell[1], cell[0]


@dataclass
class Search:
    """The current search: its text, its matches, and which one the cursor is on."""

    text: str
    matches: list[Cell]
    index: int = -1

    def first_after(self, cursor: Cell) -> Cell | None:
        """The first match after `cursor` in reading order (wrapping), for Enter."""
        if not self.matches:
            return None
        after = [i for i, cell in enumerate(self.matches) if _reading(cell) > _reading(cursor)]
        self.index = after[0] if after else 0
        return self.matches[self.index]

    def step(self, cursor: Cell, forward: bool) -> Cell | None:
        """The next (or previous) match from the cursor, wrapping at either end."""
        if not self.matches:
            return None
        if cursor in self.matches:
            self.index = self.matches.index(cursor) + (1 if forward else -1)
        elif forward:
            return self.first_after(cursor)
        else:
            before = [i for i, cell in enumerate(self.matches) if _reading(cell) < _reading(cursor)]
            self.index = before[-1] if before else len(self.matches) - 1
        self.index %= len(self.matches)
        return self.matches[self.index]

    def describe(self) -> str:
        """'match 2 of 7 for 'foo'', or 'no matches for 'foo''."""
        if not self.matches:
            return f"no matches for {self.text!r}"
        return f"match {self.index + 1} of {len(self.matches)} for {self.text!r}"

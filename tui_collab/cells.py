"""The last-writer-wins cell map shared by the server and every client.

Each cell holds the op that won it: (value, clock, client). An op replaces a cell iff
its (clock, client, value) tuple is greater, so applying the same set of ops in any
order, any number of times, yields the same grid. The server and the client both use
this module, which is why they can never disagree about a winner. Pure code, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

Coord = tuple[int, int]


@dataclass(frozen=True, slots=True)
class CellOp:
    """One write to one cell; `version` is the board version the store gave it (0 if none yet).

    `at` is the server's time when it took the op, in Unix milliseconds (0: not recorded).
    It is for people ("by Ada, 2 min ago"), never for ordering: that is `stamp`.
    """

    x: int
    y: int
    value: str
    clock: int
    client: str
    by: str
    version: int = 0
    at: int = 0

    @property
    def stamp(self) -> tuple[int, str, str]:
        """The total order of ops on a cell; the value only breaks ties of a reused client id."""
        return (self.clock, self.client, self.value)


def beats(op: CellOp, current: CellOp | None) -> bool:
    """Whether `op` replaces `current` under last-writer-wins."""
    return current is None or op.stamp > current.stamp


def next_clock(highest_seen: int) -> int:
    """The Lamport clock for a new local op: one past everything seen on the board."""
    return highest_seen + 1


class CellMap:
    """A board's cells under LWW, with the highest clock and version seen."""

    __slots__ = ("_cells", "filled", "max_clock", "version")

    def __init__(self, ops: Iterable[CellOp] = ()) -> None:
        self._cells: dict[Coord, CellOp] = {}
        self.filled = 0
        """How many cells hold a non-empty value; kept as ops land, for the server's cap."""
        self.max_clock = 0
        self.version = 0
        for op in ops:
            self.apply(op)

    def apply(self, op: CellOp) -> bool:
        """Merge one op; return True if it won its cell. Idempotent and order-free."""
        self.max_clock = max(self.max_clock, op.clock)
        self.version = max(self.version, op.version)
        key = (op.x, op.y)
        current = self._cells.get(key)
        if beats(op, current):
            self._cells[key] = op
            self.filled += bool(op.value) - bool(current is not None and current.value)
            return True
        return False

    def get(self, x: int, y: int) -> CellOp | None:
        return self._cells.get((x, y))

    def value(self, x: int, y: int) -> str:
        op = self._cells.get((x, y))
        return "" if op is None else op.value

    def __iter__(self) -> Iterator[CellOp]:
        return iter(self._cells.values())

    def __len__(self) -> int:
        return len(self._cells)

    def since(self, version: int) -> list[CellOp]:
        """The cells changed after `version`: what a client that has seen `version` lacks."""
        return sorted(
            (op for op in self._cells.values() if op.version > version), key=lambda op: op.version
        )

    def values(self) -> dict[Coord, str]:
        """The visible grid: non-empty values by coordinate."""
        return {key: op.value for key, op in self._cells.items() if op.value}

    def digest(self) -> str:
        """A stable hash of the grid's winning ops, independent of insertion order and versions."""
        return grid_digest(self._cells.values())


def column_name(index: int) -> str:
    """Spreadsheet-style column letters: A…Z, AA…"""
    name = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        name = chr(65 + remainder) + name
    return name


def cell_name(x: int, y: int) -> str:
    """'B4' for (1, 3): how people name a cell."""
    return f"{column_name(x)}{y + 1}"


def grid_digest(ops: Iterable[CellOp]) -> str:
    """Hash each winning op's coordinate and stamp; versions differ per replica, so not them."""
    hasher = hashlib.sha256()
    for op in sorted(ops, key=lambda o: (o.y, o.x)):
        hasher.update(f"{op.x},{op.y},{op.clock},{op.client}\x00{op.value}\x00".encode())
    return hasher.hexdigest()

"""A client's local copy of a board, built only from what the server sent.

A large board's snapshot comes in parts (`board.state` with `parts` > 1), all cut at one
version; the mirror assembles them before it changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from tui_collab.cells import CellMap, CellOp
from tui_collab.protocol import (
    DEFAULT_COLUMN_WIDTH,
    BoardMeta,
    BoardState,
    Cell,
    CellChanged,
    CellsChanged,
    CellSet,
    Cursors,
    Participant,
)

logger = logging.getLogger(__name__)


@dataclass
class BoardMirror:
    """Cells under LWW, participants, cursors, and this client's unacknowledged ops."""

    meta: BoardMeta
    epoch: str = ""
    cells: CellMap = field(default_factory=CellMap)
    participants: dict[str, Participant] = field(default_factory=dict)
    cursors: dict[str, tuple[int, int]] = field(default_factory=dict)
    pending: dict[str, CellSet] = field(default_factory=dict)
    """Ops sent (or queued) but not yet acknowledged, by op id, in send order."""
    _parts: list[BoardState] | None = field(default=None, repr=False)
    _held: list[CellChanged | CellsChanged] = field(default_factory=list, repr=False)

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def version(self) -> int:
        return self.cells.version

    def column_width(self, x: int) -> int:
        """Column `x`'s width in terminal cells: the board's own, else the default."""
        for entry in self.meta.widths or ():
            if entry.x == x:
                return entry.width
        return DEFAULT_COLUMN_WIDTH

    @property
    def assembling(self) -> bool:
        """Whether parts of a `board.state` arrived and the last has not."""
        return self._parts is not None

    def apply_state(self, state: BoardState) -> bool:
        """Take one part of a join's snapshot; True once the last part is in and applied.

        Parts are held until the last arrives, with the `cell.changed` events that come
        between them: the grid and its version never show half a snapshot (a version
        taken half-way would make a resume skip the cells of the parts not yet seen).
        """
        if state.part == 0:
            self._parts, self._held = [state], []
        elif (
            self._parts is None
            or state.part != len(self._parts)
            or state.version != self._parts[0].version
        ):
            logger.warning(
                "board %s: part %d of %d arrived out of order; ignored",
                state.board.id,
                state.part,
                state.parts,
            )
            return False
        else:
            self._parts.append(state)
        if not state.last:
            return False
        parts, held = self._parts, self._held
        self.abandon_parts()
        self._apply_whole(parts)
        for change in held:
            if isinstance(change, CellsChanged):
                self.apply_changes(change)
            else:
                self.apply_change(change)
        return True

    def abandon_parts(self) -> None:
        """Forget a snapshot cut short (the connection dropped): the rejoin resends it."""
        self._parts, self._held = None, []

    def _apply_whole(self, parts: list[BoardState]) -> None:
        first = parts[0]
        if first.complete or first.epoch != self.epoch:
            self.cells = CellMap()
        self.meta = first.board
        self.epoch = first.epoch
        for part in parts:
            for cell in part.cells:
                self.cells.apply(cell_op(cell, first.version))
        self.cells.version = max(self.cells.version, first.version)
        self.participants = {p.user: p for p in first.participants}
        self.cursors = {c.user: (c.x, c.y) for c in first.cursors}

    def apply_change(self, change: CellChanged) -> None:
        if self._parts is not None:
            self._held.append(change)  # applied after the snapshot it follows
            return
        self.cells.apply(cell_op(change, change.version))

    def apply_changes(self, changes: CellsChanged) -> None:
        """Every cell of a `cells.changed` (a window's ops), held like a `cell.changed`
        during a snapshot."""
        if self._parts is not None:
            self._held.append(changes)
            return
        for cell in changes.cells:
            self.cells.apply(cell_op(cell, cell.version))
        self.cells.version = max(self.cells.version, changes.version)

    def apply_cursors(self, frame: Cursors) -> None:
        for cursor in frame.cursors:
            self.cursors[cursor.user] = (cursor.x, cursor.y)

    def next_clock(self) -> int:
        """Lamport: one past every clock seen, including this client's own pending ops."""
        highest = max((op.clock for op in self.pending.values()), default=0)
        return max(self.cells.max_clock, highest) + 1

    def pending_at(self, x: int, y: int) -> CellSet | None:
        """The newest unacknowledged op on a cell, if any."""
        for op in reversed(self.pending.values()):
            if op.x == x and op.y == y:
                return op
        return None


def cell_op(cell: Cell | CellChanged, version: int) -> CellOp:
    """A cell as the server sent it (in `board.state`, `cell.changed`, `cells.changed`),
    as the op the mirror's cell map holds."""
    return CellOp(
        cell.x, cell.y, cell.value, cell.clock, cell.client, cell.by, version, unix_ms(cell.at)
    )


def unix_ms(at: datetime | None) -> int:
    """The server's time as `CellOp.at` keeps it: Unix milliseconds, 0 when unknown."""
    return 0 if at is None else round(at.timestamp() * 1000)

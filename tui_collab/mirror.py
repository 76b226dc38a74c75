"""A client's local copy of a board, built only from what the server sent."""

from __future__ import annotations

from dataclasses import dataclass, field

from tui_collab.cells import CellMap, CellOp
from tui_collab.protocol import BoardMeta, BoardState, CellChanged, CellSet, Cursors, Participant


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

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def version(self) -> int:
        return self.cells.version

    def apply_state(self, state: BoardState) -> None:
        if state.complete or state.epoch != self.epoch:
            self.cells = CellMap()
        self.meta = state.board
        self.epoch = state.epoch
        for cell in state.cells:
            self.cells.apply(
                CellOp(cell.x, cell.y, cell.value, cell.clock, cell.client, cell.by, state.version)
            )
        self.cells.version = max(self.cells.version, state.version)
        self.participants = {p.user: p for p in state.participants}
        self.cursors = {c.user: (c.x, c.y) for c in state.cursors}

    def apply_change(self, change: CellChanged) -> None:
        self.cells.apply(
            CellOp(
                change.x,
                change.y,
                change.value,
                change.clock,
                change.client,
                change.by,
                change.version,
            )
        )

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

"""A board's cell events, sent in leading-edge windows, and the acks that follow them.

One `cell.changed` per op to every connection makes a crowded board costly for
everyone: 500 people each editing every 10 s is 50 ops a second, 25,000 frames a second
from the server and 50 a second for each client to read and draw. So ops go out as
cursors do: after a quiet window a lone op at once, as `cell.changed`; the ops taken during
the window at its end, as one `cells.changed` (each cell with its own version, in the
order the room took them). A `cells.set` is never split: its ops go out in one
`cells.changed`, as before.

Only a crowded board has the window: from `WINDOWED_FROM` (50) connections on
(`ServerConfig.cell_window_from`). A frame costs a write per connection, and a smaller
board's per-op frames cost less than the window's timer and the wait: on 10
connections at 1,000 ops a second, a 5 ms window doubled the acks' p99 (about 8 to
17 ms) and took more server CPU, not less.

A writer's ack waits for the frame that carries its op (`after`), so every client
still sees its edit's event before its ack, and nobody learns of version N+1 before N
from one room.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from server.hub import Window
from tui_collab.cells import CellOp
from tui_collab.protocol import MAX_BATCH_OPS, CellChanged, CellsChanged, ChangedCell, encode

NEWS_BYTES: Final = 256 * 1024
"""A window's frame at most, about (`op_bytes`): one `cells.set` of 64 KiB makes a
`cells.changed` of up to about 280 KiB, and a window of long values from many writers
should not make a larger one. A batch is never split to keep under it."""
WINDOWED_FROM: Final = 50
"""Connections on a board from which its cell events wait for a window."""
OP_JSON_BYTES: Final = 300
"""A `ChangedCell` without its value, at most: two 64-character ids, a clock, a
version, coordinates and a timestamp."""


def op_bytes(op: CellOp) -> int:
    """About what an op adds to a `cells.changed`, at most."""
    return OP_JSON_BYTES + len(op.value.encode())


def changed_frame(board: str, op: CellOp) -> str:
    """The `cell.changed` event for an op the store applied (`op.version` set)."""
    return encode(CellChanged(board=board, **op_fields(op)))


def cells_changed_frame(board: str, ops: Sequence[CellOp]) -> str:
    """The `cells.changed` event for applied ops (`version` set), in order."""
    return encode(
        CellsChanged(
            board=board,
            version=max(op.version for op in ops),
            cells=[ChangedCell(**op_fields(op)) for op in ops],
        )
    )


def op_fields(op: CellOp) -> dict[str, Any]:
    """An applied op as the protocol's cell messages name its fields (`CellChanged`,
    `ChangedCell`, `HistoryEntry`, which ignores `x` and `y`)."""
    return {
        "x": op.x,
        "y": op.y,
        "value": op.value,
        "clock": op.clock,
        "client": op.client,
        "by": op.by,
        "version": op.version,
        "at": op_time(op),
    }


def op_time(op: CellOp) -> datetime | None:
    """`op.at` (Unix ms) as the protocol's `at`; None when not recorded."""
    return datetime.fromtimestamp(op.at / 1000, UTC) if op.at else None


class CellNews:
    """The ops one room took that its connections have not been sent yet."""

    def __init__(
        self,
        board: str,
        interval_s: float,
        send: Callable[[str], None],
        audience: Callable[[], int],
        windowed_from: int = WINDOWED_FROM,
    ) -> None:
        self._board = board
        self._send = send
        self._ops: list[CellOp] = []
        self._bytes = 0
        self._batched = False
        """Whether a `cells.set` is among the ops: its reply promised a `cells.changed`."""
        self._replies: list[Callable[[], None]] = []
        self._window = Window(
            lambda: interval_s if audience() >= windowed_from else 0.0, self._flush
        )

    @property
    def window_s(self) -> float:
        """The window as long as it is now, for the board's connections now."""
        return self._window.interval_s

    @property
    def waiting(self) -> int:
        """Ops taken and not sent yet."""
        return len(self._ops)

    def publish(self, ops: Sequence[CellOp], *, batch: bool = False) -> None:
        """Send ops the room's cells just took, at once or at the end of the window.

        A frame holds at most `MAX_BATCH_OPS` cells, as a `cells.set` does, and about
        `NEWS_BYTES`: what would not fit goes out first. More ops than that at once
        (another node's gap refilled) go out in several frames."""
        for start in range(0, len(ops), MAX_BATCH_OPS):
            chunk = ops[start : start + MAX_BATCH_OPS]
            size = sum(map(op_bytes, chunk))
            if self._ops and (
                len(self._ops) + len(chunk) > MAX_BATCH_OPS or self._bytes + size > NEWS_BYTES
            ):
                self._window.fire()
            self._ops.extend(chunk)
            self._bytes += size
            self._batched = self._batched or batch
        if self._ops:
            self._window.poke()

    def after(self, reply: Callable[[], None]) -> None:
        """Run `reply` once every op published so far is sent: at once if none waits."""
        if self._ops:
            self._replies.append(reply)
        else:
            reply()

    def flush(self) -> None:
        """Send what waits now: before a joiner's snapshot, which holds these ops
        already, and before the room or the server closes."""
        self._window.fire()

    def close(self) -> None:
        self.flush()
        self._window.close()

    def _flush(self) -> bool:
        if not self._ops:
            return False
        ops, self._ops, self._bytes = self._ops, [], 0
        batched, self._batched = self._batched, False
        replies, self._replies = self._replies, []
        lone = len(ops) == 1 and not batched
        self._send(
            changed_frame(self._board, ops[0]) if lone else cells_changed_frame(self._board, ops)
        )
        for reply in replies:
            reply()
        return True

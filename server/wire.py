"""What nodes sharing one Redis say to each other: channel names and the cell event.

The Redis store publishes a `CellEvent` from its apply script; the cluster reads it.
Both import this module, so neither depends on the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from server.redis_util import compact_json
from tui_collab.cells import CellOp


def nodes_channel(prefix: str) -> str:
    """The channel on which nodes say they are going down."""
    return f"{prefix}nodes"


def team_channel(prefix: str, team: str) -> str:
    """A team's frames (`board.created`, `board.updated`) and presence parts."""
    return f"{prefix}t:{team}:frames"


def board_frames_channel(prefix: str, team: str, board: str) -> str:
    """A board's cursor, typing and participant frames."""
    return f"{prefix}t:{team}:b:{board}:frames"


def board_channel(prefix: str, team: str, board: str) -> str:
    """The pub/sub channel that carries a board's `CellEvent`s."""
    return f"{prefix}t:{team}:b:{board}:events"


def op_json(op: CellOp) -> str:
    return compact_json(
        {
            "x": op.x,
            "y": op.y,
            "value": op.value,
            "clock": op.clock,
            "client": op.client,
            "by": op.by,
        }
    )


def _event_json(node_json: str, version: int, op_json: str) -> str:
    # The Lua script builds the very same string; keep the two in step.
    return f'{{"node":{node_json},"version":{version},"op":{op_json}}}'


@dataclass(frozen=True, slots=True)
class CellEvent:
    """A cell op that won, as published on its board's channel by the node that applied it.

    `version` is the board version the op got; `op.version` equals it after `decode`.
    """

    node: str
    version: int
    op: CellOp

    def encode(self) -> str:
        """Compact JSON, byte for byte what the apply script publishes."""
        return _event_json(compact_json(self.node), self.version, op_json(self.op))

    @classmethod
    def decode(cls, payload: str | bytes) -> CellEvent:
        """Parse a published payload; ValueError if it is not a cell event."""
        try:
            data = json.loads(payload)
            node, version, op = data["node"], data["version"], data["op"]
            fields = (op["x"], op["y"], op["value"], op["clock"], op["client"], op["by"])
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a cell event: {exc}") from exc
        x, y, value, clock, client, by = fields
        if not (
            isinstance(node, str)
            and all(_is_int(n) for n in (version, x, y, clock))
            and all(isinstance(s, str) for s in (value, client, by))
        ):
            raise ValueError("not a cell event: wrong field types")
        return cls(node, version, CellOp(x, y, value, clock, client, by, version))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

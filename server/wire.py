"""What nodes sharing one Redis say to each other: channel names and the cell events.

The Redis store publishes a `CellEvent` (one `cell.set`) or a `CellsEvent` (the ops of
one `cells.set` that won) from its apply scripts; the cluster reads them with
`decode_cell_event`. Both import this module, so neither depends on the other. The
scripts only join strings made here (`op_json`), so the two stay in step byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    """The op without its version; `at` only when known (older nodes never sent it)."""
    fields: dict[str, object] = {
        "x": op.x,
        "y": op.y,
        "value": op.value,
        "clock": op.clock,
        "client": op.client,
        "by": op.by,
    }
    if op.at:
        fields["at"] = op.at
    return compact_json(fields)


def _event_json(node_json: str, version: int, op_json: str) -> str:
    # apply_cell_ops.lua builds the very same string; keep the two in step.
    return f'{{"node":{node_json},"version":{version},"op":{op_json}}}'


def _batch_entry_json(version: int, op_json: str) -> str:
    # apply_cell_ops.lua builds the very same string; keep the two in step.
    return f'{{"version":{version},"op":{op_json}}}'


def _batch_json(node_json: str, entries: list[str]) -> str:
    return f'{{"node":{node_json},"cells":[{",".join(entries)}]}}'


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
        event = decode_cell_event(payload)
        if not isinstance(event, CellEvent):
            raise ValueError("not a cell event: a batch")
        return event


@dataclass(frozen=True, slots=True)
class CellsEvent:
    """The ops of one batch that won, in the order applied, each with its `version`.

    One message for the batch, so other nodes send their clients one `cells.changed`
    too; a batch where no op won publishes nothing.
    """

    node: str
    ops: tuple[CellOp, ...]

    def encode(self) -> str:
        """Compact JSON, byte for byte what the batch apply script publishes."""
        entries = [_batch_entry_json(op.version, op_json(op)) for op in self.ops]
        return _batch_json(compact_json(self.node), entries)

    @classmethod
    def decode(cls, payload: str | bytes) -> CellsEvent:
        """Parse a published payload; ValueError if it is not a batch event."""
        event = decode_cell_event(payload)
        if not isinstance(event, CellsEvent):
            raise ValueError("not a cells event: a single op")
        return event


def decode_cell_event(payload: str | bytes) -> CellEvent | CellsEvent:
    """Either kind of event from a board's channel; ValueError for anything else."""
    try:
        data = json.loads(payload)
        node = data["node"]
        if not isinstance(node, str):
            raise TypeError("node is not a string")
        if "cells" in data:
            cells = data["cells"]
            if not (isinstance(cells, list) and cells):
                raise TypeError("cells is not a list of ops")
            return CellsEvent(node, tuple(_decode_op(e["version"], e["op"]) for e in cells))
        version = data["version"]
        return CellEvent(node, version, _decode_op(version, data["op"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a cell event: {exc}") from exc


def _decode_op(version: Any, op: Any) -> CellOp:
    """One op of an event, with `version`; TypeError or KeyError unless it is whole."""
    if not isinstance(op, Mapping):
        raise TypeError("op is not an object")
    fields = (op["x"], op["y"], op["value"], op["clock"], op["client"], op["by"])
    at = op.get("at", 0)
    x, y, value, clock, client, by = fields
    if not (
        all(_is_int(n) for n in (version, x, y, clock, at))
        and all(isinstance(s, str) for s in (value, client, by))
    ):
        raise TypeError("wrong field types")
    return CellOp(x, y, value, clock, client, by, version, at)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

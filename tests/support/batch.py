"""`cells.set` frames for tests: ops as plain dicts, and the batch that carries them."""

from __future__ import annotations

from typing import Any

from tests.support.peer import Message, Peer


def edit(x: int, y: int, value: str, clock: int, op: str | None = None) -> Message:
    """One op of a `cells.set` (a `CellEdit`)."""
    return {"x": x, "y": y, "value": value, "op": op or f"{x}.{y}.{clock}", "clock": clock}


def batch(id_: str, ops: list[Message], board: str = "plan", **extra: Any) -> Message:
    return {"type": "cells.set", "id": id_, "board": board, "ops": ops, **extra}


async def send_batch(peer: Peer, id_: str, ops: list[Message], board: str = "plan") -> Message:
    """Send a batch and return its ack or error (whichever cites it first)."""
    await peer.send(batch(id_, ops, board))
    while True:
        reply = await peer.next(re=id_, timeout=10)
        if reply["type"] in ("ack", "error"):
            return reply

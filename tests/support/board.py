"""Small steps shared by board tests: create a board, join it, collect cursors."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.peer import Message, Peer


async def create_board(peer: Peer, board: str, width: int = 10, height: int = 10) -> Message:
    await peer.send(
        {
            "type": "board.create",
            "id": f"create-{board}",
            "board": board,
            "title": board.title(),
            "width": width,
            "height": height,
        }
    )
    return await peer.next("ack", re=f"create-{board}")


async def join_board(peer: Peer, board: str, **extra: Any) -> Message:
    await peer.send({"type": "board.join", "id": f"join-{board}", "board": board, **extra})
    return await peer.next("board.state", re=f"join-{board}")


async def whole_board(peer: Peer, board: str) -> dict[tuple[int, int], Message]:
    """Join `board` and collect every part of the snapshot, by cell."""
    first = await join_board(peer, board)
    parts = [first]
    while len(parts) < first.get("parts", 1):
        parts.append(await peer.next("board.state", timeout=5))
    return {(c["x"], c["y"]): c for part in parts for c in part["cells"]}


def cell_events(messages: list[Message]) -> list[Message]:
    """Every cell change in `messages`, in order: a `cell.changed` as it is, and each
    cell of a `cells.changed` with its board (a window's ops come in one frame)."""
    cells: list[Message] = []
    for message in messages:
        if message.get("type") == "cell.changed":
            cells.append(message)
        elif message.get("type") == "cells.changed":
            cells.extend({"board": message["board"], **cell} for cell in message["cells"])
    return cells


async def next_cell(peer: Peer, timeout: float = 3.0, **where: Any) -> Message:
    """The next cell change whose fields equal `where`, whichever frame carries it."""
    async with asyncio.timeout(timeout):
        while True:
            for cell in cell_events([await peer.next(timeout=timeout)]):
                if all(cell.get(k) == v for k, v in where.items()):
                    return cell

"""A `board.state` in parts: cut at one version, and written no faster than the joiner reads.

A full board is about 10.5 MiB of JSON, more than the slow-consumer hard cap: written at
once it would close every teammate reading slower than the loop writes. Instead the
parts (each at most `PART_BYTES` of cells) go out one at a time, each only once the
joiner's unread backlog leaves room for it under the high-water mark, and the loop gets
its turn after every part. The parts are bytes built before the first is sent, so
every part holds the board as of the one version that the join registered at, whatever
changes meanwhile (those reach the joiner as `cell.changed`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Final

from server.connection import CollabConnection
from server.outbound import Outbound, unread_bytes
from server.snapshot import PART_BYTES
from tui_collab.protocol import BoardState

logger = logging.getLogger(__name__)

POLL_S: Final = 0.005
"""How often a paused stream looks at the joiner's backlog again."""


def part_frame(state: BoardState, body: bytes) -> bytes:
    """`state` (whose `cells` is ignored) with `body`, comma-joined cell JSON, as its
    cells: the cells are spliced in as bytes, never decoded and encoded again."""
    head = state.model_dump_json(exclude_none=True, exclude={"cells"})
    return head[:-1].encode() + b',"cells":[' + body + b"]}"


def cost_tokens(sent_bytes: int) -> int:
    """Rate-limit tokens a reply of `sent_bytes` costs beyond the message's own one."""
    return sent_bytes // PART_BYTES


async def stream_parts(
    outbound: Outbound,
    ws: CollabConnection,
    first: BoardState,
    bodies: Sequence[bytes],
    stall_s: float,
    alive: Callable[[], bool],
) -> int:
    """Send parts 1.. of a snapshot whose part 0 (`first`) was sent; return how many.

    Stops when `alive()` turns false or the peer closes. A peer that leaves no room for
    the next part for `stall_s` is closed as a slow consumer (1013), as one over the
    high-water mark that long would be.
    """
    loop = asyncio.get_running_loop()
    high_water = outbound.policy.high_water
    sent = 0
    for index in range(1, len(bodies)):
        part = first.model_copy(
            update={"part": index, "complete": False, "participants": [], "cursors": []}
        )
        frame = part_frame(part, bodies[index])
        waiting_since: float | None = None
        while True:
            if not alive() or not outbound.is_open(ws):
                return sent
            backlog = unread_bytes(ws)
            if backlog == 0 or backlog + len(frame) <= high_water:
                break
            now = loop.time()
            if waiting_since is None:
                waiting_since = now
            elif now - waiting_since >= stall_s:
                outbound.close_slow(
                    ws, f"board.state stalled at part {index} with {backlog} bytes unread"
                )
                return sent
            await asyncio.sleep(POLL_S)
        outbound.send((ws,), frame)
        sent += 1
        await asyncio.sleep(0)  # one part per turn: other connections go in between
    return sent

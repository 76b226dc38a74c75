"""Batches, history, op times and column widths across server processes on one Redis.

Real `tui-collab-server serve --redis` subprocesses on a real redis-server; clients are
bare WebSocket peers, so every frame a node sends is seen as it was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.auth import SECRET_ENV
from server.redis_util import awaited
from server.store import BoardRecord, RedisStore
from tests.conftest import SECRET, token
from tests.integration.test_scaleout import Nodes
from tests.support.board import create_board, join_board, whole_board
from tests.support.peer import Closed, Peer
from tests.support.process import ServerProcess
from tests.support.redis_server import RedisServer
from tests.support.waiting import eventually
from tui_collab.cells import CellOp
from tui_collab.protocol import HISTORY_PER_CELL, MAX_BATCH_OPS

WIDTH, HEIGHT = 50, 20
"""A board of exactly `MAX_BATCH_OPS` cells: one full batch covers it."""


@pytest.fixture
def two_nodes(redis_server: RedisServer, tmp_path: Path) -> Iterator[Nodes]:
    cluster = Nodes(tmp_path, redis_server.url, 2).start()
    yield cluster
    cluster.stop()


def batch(request: str, clock: int, tag: str, cells: list[tuple[int, int]]) -> dict[str, Any]:
    return {
        "type": "cells.set",
        "id": request,
        "board": "plan",
        "ops": [
            {"x": x, "y": y, "value": f"{tag}{n}", "op": f"{request}.{n}", "clock": clock}
            for n, (x, y) in enumerate(cells)
        ],
    }


def every_cell() -> list[tuple[int, int]]:
    return [(x, y) for y in range(HEIGHT) for x in range(WIDTH)]


async def test_a_full_batch_on_one_node_is_one_frame_on_another(two_nodes: Nodes) -> None:
    ada = await Peer.join(two_nodes.urls[0], token("ada", "core"), header=True)
    bob = await Peer.join(two_nodes.urls[1], token("bob", "core"), header=True)
    await create_board(ada, "plan", WIDTH, HEIGHT)
    await bob.next("board.created", timeout=5)  # node 1 knows the board
    await join_board(ada, "plan")
    await join_board(bob, "plan")
    assert len(every_cell()) == MAX_BATCH_OPS

    await ada.send(batch("b1", 1, "v", every_cell()))
    ack = await ada.next("ack", re="b1", timeout=10)
    assert [(r["applied"], r["version"]) for r in ack["ops"]] == [
        (True, v) for v in range(1, MAX_BATCH_OPS + 1)
    ]
    changed = await bob.next("cells.changed", timeout=10)
    assert changed["version"] == MAX_BATCH_OPS
    assert [(c["x"], c["y"], c["value"], c["version"]) for c in changed["cells"]] == [
        (x, y, f"v{n}", n + 1) for n, (x, y) in enumerate(every_cell())
    ]
    assert all(c["by"] == "ada" and c["at"] for c in changed["cells"])

    # Resent whole (a client retrying after a lost ack): every op loses to itself.
    await ada.send(batch("b1", 1, "v", every_cell()))
    again = await ada.next("ack", re="b1", timeout=10)
    assert {(r["applied"], r["version"]) for r in again["ops"]} == {(False, MAX_BATCH_OPS)}
    await ada.send({"type": "cell.set", "board": "plan", "x": 0, "y": 0, "value": "w"} | _op(2))
    await bob.next("cell.changed", timeout=5)
    # Exactly one frame from the batch reached node 1, and nothing from the resend.
    kinds = [m["type"] for m in bob.log if m["type"] in ("cells.changed", "cell.changed")]
    assert kinds == ["cells.changed", "cell.changed"]
    assert [m.get("re") for m in ada.log if m["type"] == "ack"].count("b1") == 2

    late = await Peer.join(two_nodes.urls[1], token("cy", "core"), header=True)
    state = await whole_board(late, "plan")
    assert len(state) == MAX_BATCH_OPS
    assert state[(0, 0)]["value"] == "w"
    assert state[(WIDTH - 1, HEIGHT - 1)]["value"] == f"v{MAX_BATCH_OPS - 1}"
    assert all(c["at"] for c in state.values())
    for peer in (ada, bob, late):
        await peer.close()


def _op(clock: int) -> dict[str, Any]:
    return {"op": f"single-{clock}", "clock": clock}


async def test_history_and_op_times_are_shared_by_the_nodes(two_nodes: Nodes) -> None:
    ada = await Peer.join(two_nodes.urls[0], token("ada", "core"), header=True)
    bob = await Peer.join(two_nodes.urls[1], token("bob", "core"), header=True)
    await create_board(ada, "plan", WIDTH, HEIGHT)
    await bob.next("board.created", timeout=5)  # node 1 knows the board
    await join_board(ada, "plan")
    await join_board(bob, "plan")
    await ada.send({"type": "cell.set", "board": "plan", "x": 1, "y": 1, "value": "one"} | _op(1))
    await ada.next("ack", re="single-1")
    await ada.send(batch("b2", 2, "two", [(1, 1), (2, 1)]))
    await ada.next("ack", re="b2")
    await bob.send({"type": "cell.set", "board": "plan", "x": 1, "y": 1, "value": "lost"} | _op(1))
    assert not (await bob.next("ack", re="single-1"))["applied"]
    await bob.send({"type": "cell.history", "id": "h", "board": "plan", "x": 1, "y": 1})
    history = await bob.next("cell.history", re="h")
    entries = [(e["value"], e["by"], e["version"]) for e in history["entries"]]
    assert entries == [("two0", "ada", 2), ("one", "ada", 1)]  # newest first; no loser
    moments = [datetime.fromisoformat(e["at"]) for e in history["entries"]]
    assert moments[0] >= moments[1]

    # More edits than history keeps: the newest `HISTORY_PER_CELL` remain.
    for start in range(3, 3 + HISTORY_PER_CELL + 5, 25):
        ops = [_edit(1, 1, f"h{start + n}", start + n) for n in range(25)]
        await ada.send({"type": "cells.set", "id": f"r{start}", "board": "plan", "ops": ops})
        await ada.next("ack", re=f"r{start}")
    await bob.send({"type": "cell.history", "id": "h2", "board": "plan", "x": 1, "y": 1})
    entries2 = (await bob.next("cell.history", re="h2"))["entries"]
    assert len(entries2) == HISTORY_PER_CELL
    values = [e["value"] for e in entries2]
    assert values == [f"h{c}" for c in range(3 + 74, 3 + 74 - HISTORY_PER_CELL, -1)]
    versions = [e["version"] for e in entries2]
    assert versions == sorted(versions, reverse=True)
    await ada.close()
    await bob.close()


def _edit(x: int, y: int, value: str, clock: int) -> dict[str, Any]:
    return {"x": x, "y": y, "value": value, "op": f"e{clock}", "clock": clock}


async def test_widths_set_on_one_node_are_in_a_join_on_another(two_nodes: Nodes) -> None:
    ada = await Peer.join(two_nodes.urls[0], token("ada", "core"), header=True)
    bob = await Peer.join(two_nodes.urls[1], token("bob", "core"), header=True)
    await create_board(ada, "plan", WIDTH, HEIGHT)
    await bob.next("board.created", timeout=5)  # node 1 knows the board
    await join_board(bob, "plan")  # node 1 opens the room, caching the record
    update = {"type": "board.update", "id": "u1", "board": "plan"}
    await ada.send(update | {"widths": [{"x": 2, "width": 20}, {"x": 4, "width": 5}]})
    await ada.next("ack", re="u1")
    updated = await bob.next("board.updated", timeout=5)
    assert updated["board"]["widths"] == [{"x": 2, "width": 20}, {"x": 4, "width": 5}]

    # Merged, from the other node: column 4 back to the default, column 7 new, new title.
    await bob.send(
        update
        | {
            "id": "u2",
            "title": "Wide",
            "widths": [{"x": 4, "width": 10}, {"x": 7, "width": 30}],
        }
    )
    await bob.next("ack", re="u2")
    # Node 0 has taken u2 once ada has its board.updated (not u1's, read or not).
    await eventually(
        lambda: any(
            m["type"] == "board.updated" and m["board"]["title"] == "Wide" for m in ada.log
        ),
        5,
        "u2's board.updated on node 0",
    )
    want = [{"x": 2, "width": 20}, {"x": 7, "width": 30}]
    for url in two_nodes.urls:
        late = await Peer.join(url, token("cy", "core"), header=True)
        state = await join_board(late, "plan")
        assert (state["board"]["title"], state["board"]["widths"]) == ("Wide", want)
        listed = {b["id"]: b for b in late.welcome["boards"]}
        assert listed["plan"]["widths"] == want
        await late.close()
    await ada.close()
    await bob.close()


async def test_a_retried_store_call_applies_its_batch_once(redis_server: RedisServer) -> None:
    """A reply lost after the script ran: the retry (same call token) gets the same reply."""
    store = RedisStore(redis_server.url, node="n-a")
    await store.open()
    try:
        await store.create_board(BoardRecord("core", "plan", "Plan", 8, 8, "ada"))
        ops = [CellOp(n % 8, 0, f"v{n}", n // 8 + 1, "c", "ada", at=1) for n in range(20)]
        ops.append(CellOp(0, 0, "loses", 0, "c", "ada"))
        call = store._nonce()
        store._nonce = lambda: call  # type: ignore[method-assign]
        first = await store.apply_cell_ops("core", "plan", ops)
        second = await store.apply_cell_ops("core", "plan", ops)
        assert first == second
        assert [r.applied for r in first] == [True] * 20 + [False]
        assert await store.board_version("core", "plan") == 20
        assert len(await store.cell_history("core", "plan", 0, 0)) == 3
    finally:
        await store.close()


# --- a node killed in the middle of a stream of batches -------------------------------------


CRASH_SIDE = 100
"""The crash test's board is 100 x 100: its batches seldom meet on a cell, so every
cell's history (50 entries) still holds every op that cell ever took."""
CRASH_BATCHES = 400
"""Batches per writer at most: a bound on edits per cell, should the kill come late."""


async def _stream_batches(
    peer: Peer, writer: int, sent: dict[str, list[str]], acked: dict[str, list[bool]]
) -> None:
    """Send batches of 40 ops on distinct cells, 8 in flight, until the connection dies.

    Every value is unique (`{request}.{k}`); each writer has half the board's rows and
    its clocks only rise, so every op wins its cell.
    """
    window = asyncio.Semaphore(8)
    rng = random.Random(writer)

    async def collect() -> None:
        with contextlib.suppress(Closed, TimeoutError):
            while True:
                ack = await peer.next("ack", timeout=10)
                acked[ack["re"]] = [r["applied"] for r in ack["ops"]]
                window.release()

    async def send() -> None:
        for n in range(CRASH_BATCHES):
            await window.acquire()
            request = f"w{writer}-{n}"
            half = CRASH_SIDE * CRASH_SIDE // 2
            cells = rng.sample(range(writer * half, (writer + 1) * half), 40)
            sent[request] = [f"{request}.{k}" for k in range(40)]
            ops = [
                _edit(c % CRASH_SIDE, c // CRASH_SIDE, f"{request}.{k}", n + 1)
                for k, c in enumerate(cells)
            ]
            await peer.send({"type": "cells.set", "id": request, "board": "plan", "ops": ops})

    sender = asyncio.create_task(send())
    await collect()
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await sender


STREAM_VALUE = re.compile(r"(w\d+-\d+\.\d+)$")
"""A value `_stream_batches` wrote, at the end of a stored history entry."""


async def _values_in_history(redis_url: str) -> dict[str, int]:
    """Every value the cells' histories hold, counted (each value was sent once)."""
    seen: dict[str, int] = {}
    async with Redis.from_url(redis_url, decode_responses=True) as raw:
        keys = await raw.keys("tc:t:core:b:plan:h:*")
        async with raw.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.lrange(key, 0, -1)
            lists: list[list[str]] = await pipe.execute()
    for entries in lists:
        assert len(entries) < HISTORY_PER_CELL, "a cell's history was trimmed: widen the board"
        for entry in entries:
            match = STREAM_VALUE.search(entry)
            assert match is not None, entry
            seen[match.group(1)] = seen.get(match.group(1), 0) + 1
    return seen


async def test_a_node_killed_mid_stream_leaves_whole_batches(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    def node() -> ServerProcess:
        return ServerProcess(
            tmp_path / "node", "--redis", redis_server.url, env={SECRET_ENV: SECRET}
        )

    server = node()
    try:
        url = server.start()
        writers = [await Peer.join(url, token(f"u{n}", "core"), header=True) for n in range(2)]
        await create_board(writers[0], "plan", CRASH_SIDE, CRASH_SIDE)
        for peer in writers:
            await join_board(peer, "plan")
        sent: dict[str, list[str]] = {}
        acked: dict[str, list[bool]] = {}
        streams = [
            asyncio.create_task(_stream_batches(peer, n, sent, acked))
            for n, peer in enumerate(writers)
        ]
        await asyncio.sleep(random.uniform(0.3, 0.6))  # kept: a kill at a random moment
        server.kill()
        await asyncio.gather(*streams)
    finally:
        server.stop()
    assert len(acked) > 10, "too few batches acknowledged before the kill"
    assert all(all(flags) for flags in acked.values())

    server = node()
    try:
        url = server.start()
        reader = await Peer.join(url, token("checker", "core"), header=True)
        cells = await whole_board(reader, "plan")
        await reader.close()
    finally:
        server.stop()
    seen = await _values_in_history(redis_server.url)
    assert all(count == 1 for count in seen.values())
    for request, values in sent.items():
        present = sum(value in seen for value in values)
        if request in acked:
            assert present == len(values), f"acked batch {request}: {present} of {len(values)}"
        else:
            assert present in (0, len(values)), f"unacked batch {request} in part: {present}"
    landed = sum(1 for r in sent if r not in acked and sent[r][0] in seen)
    print(f"\n{len(acked)} batches acked, {len(sent) - len(acked)} not, {landed} of those landed")
    # The board's version counts exactly the ops of the batches that landed whole.
    async with Redis.from_url(redis_server.url, decode_responses=True) as raw:
        version = int(await awaited(raw.hget("tc:t:core:b:plan", "version")) or 0)
    assert version == len(seen)
    # And a fresh join on the restarted node shows the winner of every cell.
    shown = {c["value"] for c in cells.values()}
    assert shown <= set(seen)

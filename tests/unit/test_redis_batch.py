"""Batches, history, op times and widths in the Redis store, and batch events between
nodes: on a real redis-server (the cluster's side on the server core alone)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from server.cluster_sync import ClusterSync
from server.redis_util import awaited
from server.store import BoardRecord, RedisStore, board_channel
from server.wire import CellEvent, CellsEvent, decode_cell_event
from tests.support.waiting import eventually
from tests.unit.server_core import Core
from tests.unit.test_redis_store import Subscriber
from tui_collab.cells import CellMap, CellOp, grid_digest
from tui_collab.protocol import (
    DEFAULT_COLUMN_WIDTH,
    HISTORY_PER_CELL,
    BoardMeta,
    BoardUpdated,
    ColumnWidth,
    encode,
)

PLAN = BoardRecord("core", "plan", "Plan", 10, 10, "alice")
AT = 1_764_330_000_123
"""An op time (Unix ms)."""


@pytest.fixture
async def nodes(redis_url: str) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    first, second = RedisStore(redis_url, node="node-a"), RedisStore(redis_url, node="node-b")
    await first.open()
    await second.open()
    await first.create_board(PLAN)
    yield first, second
    await first.close()
    await second.close()


def op(x: int, y: int, value: str, clock: int, at: int = AT) -> CellOp:
    return CellOp(x, y, value, clock, "c-1", "alice", at=at)


# --- events ---------------------------------------------------------------------------------


def test_cells_event_round_trip_and_compact_json() -> None:
    event = CellsEvent(
        "node-a",
        (
            CellOp(1, 2, 'ü "q"', 2**62, "c-1", "bob", 7, AT),
            CellOp(0, 0, "", 1, "c-1", "bob", 8),
        ),
    )
    payload = event.encode()
    assert payload == (
        '{"node":"node-a","cells":[{"version":7,"op":{"x":1,"y":2,"value":"ü \\"q\\"",'
        '"clock":4611686018427387904,"client":"c-1","by":"bob","at":1764330000123}},'
        '{"version":8,"op":{"x":0,"y":0,"value":"","clock":1,"client":"c-1","by":"bob"}}]}'
    )
    assert CellsEvent.decode(payload) == decode_cell_event(payload.encode()) == event
    single = CellEvent("node-a", 3, CellOp(0, 0, "v", 1, "c", "u", 3, AT))
    assert decode_cell_event(single.encode()) == single
    with pytest.raises(ValueError, match="a batch"):
        CellEvent.decode(payload)
    with pytest.raises(ValueError, match="a single op"):
        CellsEvent.decode(single.encode())


@pytest.mark.parametrize(
    "junk",
    [
        '{"node":"n","cells":[]}',
        '{"node":"n","cells":{}}',
        '{"node":"n","cells":[{"version":1}]}',
        '{"node":"n","cells":[{"version":1,"op":[]}]}',
        '{"node":"n","cells":[{"version":1,"op":{"x":0,"y":0,"value":"","clock":1,'
        '"client":"c","by":"u","at":"soon"}}]}',
    ],
)
def test_a_malformed_batch_event_is_refused(junk: str) -> None:
    with pytest.raises(ValueError, match="not a cell event"):
        decode_cell_event(junk)


async def test_the_published_batch_is_exactly_the_event_encoding(
    nodes: tuple[RedisStore, RedisStore], redis_url: str
) -> None:
    first, _ = nodes
    ops = [op(0, 0, 'ß "x" 日本 \U0001f600', 2**62), op(1, 0, "lost", 0), op(1, 0, "b", 2)]
    await first.apply_cell_op("core", "plan", op(1, 0, "held", 1))
    async with Subscriber(redis_url, board_channel("tc:", "core", "plan")) as sub:
        results = await first.apply_cell_ops("core", "plan", ops)
        assert [(r.applied, r.version) for r in results] == [(True, 2), (False, 2), (True, 3)]
        [lost] = await first.apply_cell_ops("core", "plan", ops[1:2])
        assert (lost.applied, lost.version) == (False, 3)
        (payload,) = await sub.take(1)
        assert await sub.take(1, timeout=0.2) == []  # a batch with no winner is silent
    won = (
        CellOp(0, 0, ops[0].value, 2**62, "c-1", "alice", 2, AT),
        CellOp(1, 0, "b", 2, "c-1", "alice", 3, AT),
    )
    assert payload == CellsEvent("node-a", won).encode()


# --- batches, history and op times ------------------------------------------------------------


async def test_a_batch_merges_in_order_like_the_client(
    nodes: tuple[RedisStore, RedisStore],
) -> None:
    first, second = nodes
    ops = [op(n % 3, n % 2, f"v{n % 4}", n % 5, at=AT + n) for n in range(40)]
    results = await first.apply_cell_ops("core", "plan", ops[:25])
    results += await second.apply_cell_ops("core", "plan", ops[25:])
    client = CellMap()
    version = 0
    for cell_op, result in zip(ops, results, strict=True):
        assert result.applied == client.apply(cell_op)
        version += result.applied
        assert result.version == version
    stored = await second.load_cells("core", "plan")
    assert grid_digest(stored) == client.digest()
    assert {(c.x, c.y): c.at for c in stored} == {(c.x, c.y): c.at for c in client}
    assert await first.board_version("core", "plan") == version
    with pytest.raises(LookupError):
        await first.apply_cell_ops("core", "nowhere", ops[:1])
    assert await first.apply_cell_ops("core", "plan", []) == []


async def test_history_is_newest_first_and_capped(nodes: tuple[RedisStore, RedisStore]) -> None:
    first, second = nodes
    total = HISTORY_PER_CELL + 7
    await first.apply_cell_op("core", "plan", op(2, 2, "v0", 1, at=AT))
    await first.apply_cell_ops(
        "core", "plan", [op(2, 2, f"v{n}", n + 1, at=AT + n) for n in range(1, total)]
    )
    await first.apply_cell_op("core", "plan", op(2, 2, "loser", 0))
    history = await second.cell_history("core", "plan", 2, 2)
    assert len(history) == HISTORY_PER_CELL
    assert [h.value for h in history] == [f"v{n}" for n in range(total - 1, 6, -1)]
    assert [h.version for h in history] == list(range(total, 7, -1))
    assert [h.at for h in history] == [AT + n for n in range(total - 1, 6, -1)]
    assert await second.cell_history("core", "plan", 5, 5) == []


async def test_cells_stored_before_op_times_read_as_unknown(
    nodes: tuple[RedisStore, RedisStore], redis_url: str
) -> None:
    """A cell of an older release: no `@at`, no history list; it is its own history."""
    first, _ = nodes
    async with Redis.from_url(redis_url, decode_responses=True) as raw:
        await awaited(raw.hset("tc:t:core:b:plan:cells", "3,4", "9,5,ab.1,3,5,c-9alicehi, there"))
        await awaited(raw.hset("tc:t:core:b:plan", "version", "9"))
    old = CellOp(3, 4, "hi, there", 5, "c-9", "alice", 9)
    assert await first.load_cells("core", "plan") == [old]
    assert await first.cell_history("core", "plan", 3, 4) == [old]
    assert (await first.apply_cell_ops("core", "plan", [op(3, 4, "new", 6)]))[0].applied
    assert [h.value for h in await first.cell_history("core", "plan", 3, 4)] == ["new"]
    assert (await first.apply_cell_op("core", "plan", op(3, 4, "newer", 7, at=0))).applied
    assert [(h.value, h.at) for h in await first.cell_history("core", "plan", 3, 4)] == [
        ("newer", 0),
        ("new", AT),
    ]


async def test_a_batch_leaves_only_keys_under_the_prefix(redis_url: str) -> None:
    store = RedisStore(redis_url, prefix="app2:")
    await store.open()
    try:
        await store.create_board(PLAN)
        await store.apply_cell_ops("core", "plan", [op(0, 0, "a", 1), op(1, 1, "b", 1)])
        await store.update_board("core", "plan", widths={1: 20})
    finally:
        await store.close()
    async with Redis.from_url(redis_url, decode_responses=True) as raw:
        keys = await raw.keys("*")
    assert sorted(k for k in keys if ":h:" in k) == [
        "app2:t:core:b:plan:h:0,0",
        "app2:t:core:b:plan:h:1,1",
    ]
    assert all(k.startswith("app2:") for k in keys)


# --- widths -------------------------------------------------------------------------------------


async def test_widths_merge_per_column_from_every_node(
    nodes: tuple[RedisStore, RedisStore],
) -> None:
    first, second = nodes
    await asyncio.gather(
        first.update_board("core", "plan", widths={1: 20, 3: 4}),
        second.update_board("core", "plan", widths={2: 30, 3: 12}),
    )
    board = await first.get_board("core", "plan")
    assert board is not None
    assert dict(board.widths).keys() == {1, 2, 3}
    renamed = await second.update_board("core", "plan", title="Wide")
    assert renamed is not None
    assert (renamed.title, renamed.widths) == ("Wide", board.widths)
    reset = await first.update_board(
        "core", "plan", widths={1: DEFAULT_COLUMN_WIDTH, 2: DEFAULT_COLUMN_WIDTH, 9: 64}
    )
    assert reset is not None
    assert reset.widths == ((3, board.widths[-1][1]), (9, 64))
    assert reset.title == "Wide"
    [listed] = await second.list_boards("core")
    assert listed == reset
    await first.update_board("core", "plan", widths={3: DEFAULT_COLUMN_WIDTH, 9: 10})
    assert (await second.get_board("core", "plan")) == BoardRecord(
        "core", "plan", "Wide", 10, 10, "alice", reset.version
    )
    assert await first.update_board("core", "nowhere", widths={1: 5}) is None


# --- a batch from another node, on this node's core ---------------------------------------------


async def test_a_batch_event_past_a_gap_is_one_frame_and_the_gap_is_refilled(
    tmp_path: Path,
) -> None:
    """Versions 1-4 were missed (one single op and a batch whose event was lost); the
    batch 5-7 arrives: one `cells.changed` for it, then the gap is read from the store
    and sent in one more."""
    async with Core(tmp_path) as core:
        sync = ClusterSync(core.ctx)
        await core.store.create_board(BoardRecord("core", "plan", "Plan", 8, 8, "bob"))
        ada, peer = await core.connect("ada")
        await core.send(ada, {"type": "board.join", "id": "j", "board": "plan"})
        peer.take()
        ops = [CellOp(n, 0, f"far{n}", 1, "c-bob", "bob", at=AT) for n in range(7)]
        stored = [
            CellOp(o.x, o.y, o.value, o.clock, o.client, o.by, n + 1, o.at)
            for n, o in enumerate(ops)
        ]
        for cell_op in ops:  # the other node's writes, as the store has them
            assert (await core.store.apply_cell_op("core", "plan", cell_op)).applied
        sync.on_cells_event("core", "plan", CellsEvent("n-other", tuple(stored[4:])))
        [changed] = peer.take()
        assert changed["type"] == "cells.changed"
        assert changed["version"] == 7
        assert [c["value"] for c in changed["cells"]] == ["far4", "far5", "far6"]
        assert all(c["at"] for c in changed["cells"])
        room = core.rooms.get("core", "plan")
        assert room is not None
        assert room.seen_above == {5, 6, 7}
        await eventually(lambda: not room.seen_above, 2, "the gap is refilled")
        assert room.watermark == 7
        await eventually(lambda: peer.frames, 2, "the refilled ops are sent")
        [refilled] = peer.take()  # one frame, not one per op
        assert refilled["type"] == "cells.changed"
        assert sorted(c["value"] for c in refilled["cells"]) == ["far0", "far1", "far2", "far3"]
        sync.on_cells_event("core", "plan", CellsEvent("n-other", tuple(stored[4:])))
        assert peer.frames == []  # seen already: nothing new to send


async def test_a_stale_board_updated_frame_is_corrected_from_the_store(tmp_path: Path) -> None:
    """Two nodes changed widths at once and their frames crossed: the last frame here is
    the older state, so the node takes title and widths from the store after it."""
    async with Core(tmp_path) as core:
        sync = ClusterSync(core.ctx)
        await core.store.create_board(BoardRecord("core", "plan", "Plan", 8, 8, "bob"))
        ada, peer = await core.connect("ada")
        await core.send(ada, {"type": "board.join", "id": "j", "board": "plan"})
        room = core.rooms.get("core", "plan")
        assert room is not None
        newest = await core.store.update_board("core", "plan", "Both", {1: 20, 2: 30})
        assert newest is not None
        stale = BoardMeta(
            id="plan",
            title="One",
            width=8,
            height=8,
            created_by="bob",
            version=5,
            widths=[ColumnWidth(x=1, width=20)],
        )
        sync.on_team_frame("core", encode(BoardUpdated(board=stale)))
        assert (room.record.title, room.record.widths) == ("One", ((1, 20),))
        await eventually(lambda: room.record.widths == newest.widths, 2, "the store's widths")
        assert room.record.title == "Both"
        assert room.record.version == 5  # the frame's: the store's may run ahead of the room
        assert core.boards.meta(newest).widths == [
            ColumnWidth(x=1, width=20),
            ColumnWidth(x=2, width=30),
        ]
        assert [f["type"] for f in peer.take()].count("board.updated") == 1


async def test_a_store_read_older_than_an_update_here_does_not_undo_it(tmp_path: Path) -> None:
    """Another node's frame starts a store read; an update made here lands while that
    read's answer is on its way back. The update's record stays: the read is older."""
    async with Core(tmp_path) as core:
        sync = ClusterSync(core.ctx)
        await core.store.create_board(BoardRecord("core", "plan", "Plan", 8, 8, "bob"))
        ada, _ = await core.connect("ada")
        await core.send(ada, {"type": "board.join", "id": "j", "board": "plan"})
        room = core.rooms.get("core", "plan")
        assert room is not None
        read, answer = asyncio.Event(), asyncio.Event()
        get_board = core.store.get_board

        async def slow_answer(team: str, board: str) -> BoardRecord | None:
            record = await get_board(team, board)  # read now, answered late: a slow link
            read.set()
            await answer.wait()
            return record

        core.store.get_board = slow_answer  # type: ignore[method-assign]
        first = await core.store.update_board("core", "plan", "One", {1: 20})
        assert first is not None
        sync.on_team_frame("core", encode(BoardUpdated(board=core.boards.meta(first))))
        await asyncio.wait_for(read.wait(), 2)
        update = {
            "type": "board.update",
            "id": "u",
            "board": "plan",
            "widths": [{"x": 3, "width": 9}],
        }
        await core.send(ada, update)
        assert room.record.widths == ((1, 20), (3, 9))
        answer.set()
        await asyncio.sleep(0.05)  # the read's answer arrives and is weighed
        assert room.record.widths == ((1, 20), (3, 9))
        assert core.boards.meta(room.record).title == "One"

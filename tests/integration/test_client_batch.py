"""Batched edits through `CollabClient.set_cells`, cell history and column widths.

A real server on a loopback port and real clients; a raw `Peer` on the same board counts
the frames the server broadcasts, which shows how many `cells.set` requests arrived.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartServer
from tests.support.peer import Peer
from tests.support.waiting import eventually
from tests.unit.test_client_state import BOARD, Harness
from tui_collab.backoff import Backoff
from tui_collab.client import ClientError, CollabClient
from tui_collab.events import Connected, OpRefused, PendingChanged
from tui_collab.outbox import Outbox
from tui_collab.protocol import (
    DEFAULT_COLUMN_WIDTH,
    MAX_BATCH_OPS,
    Ack,
    CellsChanged,
    ChangedCell,
    ErrorCode,
    ErrorMessage,
    Limits,
    OpResult,
    Welcome,
)

FAST = Backoff(base_s=0.05, cap_s=0.2)
OPEN: dict[str, Any] = {"auth": "open", "secret": None}


def _block(width: int, count: int, value: str = "v") -> list[tuple[int, int, str]]:
    return [(n % width, n // width, f"{value}{n}") for n in range(count)]


async def _watcher(url: str, board: str) -> Peer:
    """A raw connection on `board`, to count what the server broadcasts."""
    peer = await Peer.join(url, user="eve", team="core")
    await peer.send({"type": "board.join", "board": board, "id": "j"})
    await peer.next("board.state")
    return peer


def _frames(peer: Peer, kind: str) -> list[dict[str, Any]]:
    return [message for message in peer.log if message.get("type") == kind]


# --- without a socket: how ops are packed into frames -------------------------------


def _welcomed(harness: Harness, max_message_bytes: int) -> None:
    # Only the limits matter here: the rest of a welcome is left out.
    fields: dict[str, Any] = {"limits": Limits(max_message_bytes=max_message_bytes)}
    welcome = Welcome.model_construct(**fields)
    harness.state.welcome = welcome


def _add(harness: Harness, edits: list[tuple[int, int, str]]) -> list[asyncio.Future[Ack]]:
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in edits]
    harness.state.add_edits("plan", edits, futures)
    return futures


async def test_a_block_is_cut_at_the_op_cap_and_at_the_frame_size() -> None:
    big = BOARD.model_copy(update={"width": 256, "height": 4096})
    h = Harness()
    _welcomed(h, 1 << 20)
    h.connect()
    h.join(big)
    _add(h, _block(256, 2500, "x"))
    batches = [f for f in h.sent if f["type"] == "cells.set"]
    assert [len(b["ops"]) for b in batches] == [MAX_BATCH_OPS, MAX_BATCH_OPS, 500]

    small = Harness()
    _welcomed(small, 8_000)
    small.connect()
    small.join(big)
    frames: list[str] = []
    small.state.send = frames.append
    _add(small, _block(256, 100, "y" * 200))
    sizes = [len(frame.encode()) for frame in frames]
    assert len(frames) > 1
    assert all(size <= 8_000 for size in sizes), sizes
    assert sum(len(json.loads(frame)["ops"]) for frame in frames) == 100


async def test_a_batch_is_settled_op_by_op() -> None:
    h = Harness()
    h.connect()
    h.join()
    futures = _add(h, [(0, 0, "a"), (1, 0, "b"), (2, 0, "c")])
    (batch,) = [f for f in h.sent if f["type"] == "cells.set"]
    op_ids = [op["op"] for op in batch["ops"]]
    assert [op["clock"] for op in batch["ops"]] == [1, 2, 3]  # later edits win ties
    results = [OpResult(version=1, applied=True), OpResult(version=1, applied=False)]
    h.state.handle(
        Ack(re=batch["id"], version=2, ops=[*results, OpResult(version=2, applied=True)])
    )
    acks = [future.result() for future in futures]
    assert [(a.re, a.version, a.applied) for a in acks] == [
        (op_ids[0], 1, True),
        (op_ids[1], 1, False),
        (op_ids[2], 2, True),
    ]
    assert h.state.unsaved_count == 0


async def test_a_retryable_failure_resends_the_batch_and_a_final_one_refuses_each_op() -> None:
    h = Harness()
    h.connect()
    h.join()
    futures = _add(h, [(0, 0, "a"), (1, 0, "b")])
    (first,) = [f for f in h.sent if f["type"] == "cells.set"]
    h.sent.clear()
    h.state.handle(ErrorMessage(code=ErrorCode.INTERNAL, message="oops", re=first["id"]))
    assert not any(future.done() for future in futures)
    h.run_later()
    (again,) = h.sent
    assert again["type"] == "cells.set"
    assert again["ops"] == first["ops"]  # the same ops, unchanged
    h.state.handle(ErrorMessage(code=ErrorCode.QUOTA_EXCEEDED, message="full", re=again["id"]))
    refused = [e for e in h.events if isinstance(e, OpRefused)]
    assert [(r.x, r.code) for r in refused] == [(0, "quota_exceeded"), (1, "quota_exceeded")]
    assert all(isinstance(f.exception(), ClientError) for f in futures)
    assert sum(isinstance(e, PendingChanged) for e in h.events) == 2  # queued, settled


async def test_a_bad_value_refuses_the_whole_block_before_anything_is_queued() -> None:
    h = Harness()
    h.connect()
    h.join()
    with pytest.raises(ClientError) as refused:
        _add(h, [(0, 0, "fine"), (1, 2, "tab\there")])
    assert refused.value.code == ErrorCode.BAD_REQUEST
    assert refused.value.message == "B3: value contains a tab, which a cell cannot hold"
    with pytest.raises(ClientError, match="E1: outside the board"):
        _add(h, [(4, 0, "wide")])
    assert h.state.unsaved_count == 0
    assert not any(f["type"] in ("cells.set", "cell.set") for f in h.sent)


async def test_cells_changed_waits_for_a_snapshot_in_parts_and_keeps_its_time() -> None:
    h = Harness()
    h.join(part=0, parts=2, version=3, cells=[])
    at = datetime(2026, 11, 28, 12, 0, 0, 250_000, tzinfo=UTC)
    cell = ChangedCell(x=1, y=1, value="late", clock=9, client="c-2", by="bo", version=4, at=at)
    h.state.handle(CellsChanged(board="plan", version=4, cells=[cell]))
    mirror = h.state.joined["plan"]
    assert mirror.cells.value(1, 1) == ""  # held: the snapshot is not whole yet
    h.join(part=1, parts=2, version=3, cells=[])
    op = mirror.cells.get(1, 1)
    assert op is not None
    assert (op.value, op.version, op.at) == ("late", 4, int(at.timestamp() * 1000))
    assert mirror.version == 4


# --- with a server --------------------------------------------------------------------


async def test_a_thousand_edits_travel_in_one_request(start_server: StartServer) -> None:
    # A frame big enough for a thousand small ops: the op cap, not the size, decides.
    server = await start_server(**OPEN, max_message_bytes=256 * 1024)
    async with CollabClient(server.url, user="alice", team="core") as alice:
        await alice.create_board("Plan", 40, 30, board="plan")
        await alice.join("plan")
        eve = await _watcher(server.url, "plan")
        acks = await alice.set_cells("plan", _block(40, 1000))
        assert len(acks) == 1000
        assert all(ack.applied for ack in acks)
        assert [ack.version for ack in acks] == list(range(1, 1001))
        await eventually(lambda: len(_frames(eve, "cells.changed")) >= 1)
        changed = _frames(eve, "cells.changed")
        assert len(changed) == 1
        assert len(changed[0]["cells"]) == 1000
        assert not _frames(eve, "cell.changed")
        mirror = alice.joined["plan"]
        assert mirror.cells.value(39, 24) == "v999"
        assert mirror.version == 1000
        assert mirror.cells.get(0, 0) is not None
        assert mirror.cells.get(0, 0).at > 0  # type: ignore[union-attr]
        await eve.close()


async def test_a_block_past_the_cell_budget_waits_and_lands_whole(
    start_server: StartServer,
) -> None:
    """The server refuses a batch over its ops budget (`rate_limited`); the client sends
    it again a moment later, and every edit lands, none twice."""
    server = await start_server(**OPEN, cell_ops_per_s=1000, cell_ops_burst=1000)
    async with CollabClient(server.url, user="alice", team="core") as alice:
        await alice.create_board("Plan", 40, 40, board="plan")
        await alice.join("plan")
        acks = await asyncio.wait_for(alice.set_cells("plan", _block(40, 1600)), 10)
        assert all(ack.applied for ack in acks)
        assert sorted(ack.version or 0 for ack in acks) == list(range(1, 1601))
        assert len(await server.store.load_cells("core", "plan")) == 1600


async def test_long_values_are_split_by_frame_size(start_server: StartServer) -> None:
    server = await start_server(**OPEN)  # the default 64 KiB frames
    async with CollabClient(server.url, user="alice", team="core") as alice:
        await alice.create_board("Plan", 20, 20, board="plan")
        await alice.join("plan")
        eve = await _watcher(server.url, "plan")
        values = _block(20, 400, "z" * 240)  # about 120 KB of ops
        acks = await alice.set_cells("plan", values)
        assert len(acks) == 400
        await eventually(lambda: sum(len(f["cells"]) for f in _frames(eve, "cells.changed")) == 400)
        assert 2 <= len(_frames(eve, "cells.changed")) <= 3
        assert isinstance(alice.state, Connected)  # never closed for size (1009)
        await eve.close()


async def test_a_pending_block_outlives_the_process_and_goes_out_as_batches(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(**OPEN)
    url, port = server.url, server.port
    async with CollabClient(url, user="bob", team="core") as bob:
        await bob.create_board("Plan", 10, 10, board="plan")
    box = tmp_path / "client"
    first = CollabClient(
        url, user="alice", team="core", outbox=Outbox.in_dir(box, url, "core", "alice")
    )
    first.start()
    await first.wait_connected()
    await first.join("plan")
    await server.stop()
    paste = asyncio.create_task(first.set_cells("plan", _block(10, 60, "offline")))
    await eventually(lambda: first.unsaved_count == 60, what="the block is kept offline")
    await first.close()
    await asyncio.gather(paste, return_exceptions=True)

    outbox = Outbox.in_dir(box, url, "core", "alice")
    assert outbox.count() == 60
    second = CollabClient(url, user="alice", team="core", outbox=outbox, backoff=FAST)
    assert second.restored == 60
    await start_server(**OPEN, port=port)
    eve = await _watcher(url, "plan")
    second.start()
    async with asyncio.timeout(5):
        await second.flush()
    await eventually(lambda: sum(len(f["cells"]) for f in _frames(eve, "cells.changed")) == 60)
    assert len(_frames(eve, "cells.changed")) == 1  # one batch, not sixty cell.set
    assert not _frames(eve, "cell.changed")
    assert outbox.count() == 0
    await second.close()
    await eve.close()


async def test_a_block_made_while_the_server_is_down_goes_out_as_one_batch(
    start_server: StartServer,
) -> None:
    server = await start_server(**OPEN)
    url, port = server.url, server.port
    async with CollabClient(url, user="alice", team="core", backoff=FAST) as alice:
        await alice.create_board("Plan", 10, 10, board="plan")
        await alice.join("plan")
        await server.stop()
        paste = asyncio.create_task(alice.set_cells("plan", _block(10, 80, "later")))
        await eventually(lambda: alice.unsaved_count == 80, what="the block waits offline")
        await start_server(**OPEN, port=port)
        eve = await _watcher(url, "plan")
        async with asyncio.timeout(5):
            acks = await paste
        assert len(acks) == 80
        await eventually(lambda: bool(_frames(eve, "cells.changed")))
        assert [len(f["cells"]) for f in _frames(eve, "cells.changed")] == [80]
        assert alice.joined["plan"].cells.value(9, 7) == "later79"
        await eve.close()


async def test_a_bad_value_sends_nothing(start_server: StartServer) -> None:
    server = await start_server(**OPEN)
    async with CollabClient(server.url, user="alice", team="core") as alice:
        await alice.create_board("Plan", 4, 4, board="plan")
        await alice.join("plan")
        with pytest.raises(ClientError, match=r"^bad_request: C2: value contains"):
            await alice.set_cells("plan", [(0, 0, "ok"), (2, 1, "bell\x07")])
        assert alice.unsaved_count == 0
        eve = await _watcher(server.url, "plan")
        state = next(m for m in eve.log if m["type"] == "board.state")
        assert state["version"] == 0
        await eve.close()


async def test_history_lists_a_cells_writes_newest_first(start_server: StartServer) -> None:
    server = await start_server(**OPEN)
    async with CollabClient(server.url, user="alice", team="core") as alice:
        await alice.create_board("Plan", 4, 4, board="plan")
        await alice.join("plan")
        await alice.set_cell("plan", 1, 1, "first")
        await alice.set_cells("plan", [(1, 1, "second"), (2, 2, "other")])
        entries = await alice.cell_history("plan", 1, 1)
        assert [e.value for e in entries] == ["second", "first"]
        assert entries[0].by == "alice"
        assert entries[0].version > entries[1].version
        assert await alice.cell_history("plan", 3, 3) == []
        with pytest.raises(ClientError) as missing:
            await alice.cell_history("nowhere", 0, 0)
        assert missing.value.code == ErrorCode.NOT_FOUND


async def test_column_widths_reach_every_mirror(start_server: StartServer) -> None:
    server = await start_server(**OPEN)
    async with (
        CollabClient(server.url, user="alice", team="core") as alice,
        CollabClient(server.url, user="bob", team="core") as bob,
    ):
        await alice.create_board("Plan", 6, 4, board="plan")
        await alice.join("plan")
        seen = await bob.join("plan")
        await alice.set_column_widths("plan", {1: 24, 3: 5})
        await eventually(lambda: seen.column_width(1) == 24, what="bob sees the width")
        assert seen.column_width(3) == 5
        assert seen.column_width(0) == DEFAULT_COLUMN_WIDTH
        await alice.set_column_widths("plan", {1: DEFAULT_COLUMN_WIDTH})
        await eventually(lambda: seen.column_width(1) == DEFAULT_COLUMN_WIDTH)
        assert seen.column_width(3) == 5  # merged, not replaced
        with pytest.raises(ClientError) as narrow:
            await alice.set_column_widths("plan", {0: 2})
        assert narrow.value.code == ErrorCode.BAD_REQUEST
        with pytest.raises(ClientError) as missing:
            await alice.set_column_widths("nowhere", {0: 12})
        assert missing.value.code == ErrorCode.NOT_FOUND

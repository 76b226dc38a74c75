"""`cells.set` over real sockets: one ack, one event, one token; refused whole; quota; LWW."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from server.app import CollabServer
from server.config import ServerConfig
from tests.conftest import StartServer, token
from tests.support.batch import batch, edit, send_batch
from tests.support.board import create_board, join_board, whole_board
from tests.support.peer import Closed, Message, Peer
from tests.support.process import ServerProcess
from tests.support.waiting import eventually
from tui_collab.protocol import MAX_BATCH_OPS


async def _pair(server: CollabServer, width: int = 10, height: int = 10) -> tuple[Peer, Peer]:
    """Alice and Bob, both joined to `plan`."""
    alice = await Peer.join(server.url, token("alice", "core"), client_id="c-alice")
    bob = await Peer.join(server.url, token("bob", "core"), client_id="c-bob")
    await create_board(alice, "plan", width, height)
    await join_board(alice, "plan")
    await join_board(bob, "plan")
    return alice, bob


def _board_frames(peer: Peer) -> list[Message]:
    return [m for m in peer.log if m["type"] in ("cell.changed", "cells.changed")]


async def _seen(peer: Peer, type_: str, **where: object) -> None:
    """Wait until `peer.log` holds such a frame (`Peer.next` may have read past it)."""
    await eventually(
        lambda: any(
            m["type"] == type_ and all(m.get(k) == v for k, v in where.items()) for m in peer.log
        ),
        what=f"{type_} {where}",
    )


async def test_a_batch_of_1000_is_one_ack_one_event_and_one_token(
    start_server: StartServer,
) -> None:
    # A slow bucket: a batch charged per op would be refused, and the refill between two
    # reads of the bucket is known exactly from its own timestamps.
    server = await start_server(rate_per_s=1, burst=50)
    alice, bob = await _pair(server, width=40, height=25)
    ops = [edit(n % 40, n // 40, f"v{n}", 1, op=f"o{n}") for n in range(MAX_BATCH_OPS)]
    (session,) = server.hub.user_sessions("core", "alice")
    bucket = session.bucket
    assert bucket is not None
    tokens, updated = bucket.tokens, bucket.updated

    ack = await send_batch(alice, "b1", ops)

    refill = (bucket.updated - updated) * bucket.rate
    assert bucket.tokens == pytest.approx(min(bucket.burst, tokens + refill) - 1)
    assert ack["type"] == "ack"
    assert [r["version"] for r in ack["ops"]] == list(range(1, MAX_BATCH_OPS + 1))
    assert all(r["applied"] for r in ack["ops"])
    assert ack["version"] == MAX_BATCH_OPS
    # The sender's event comes before its ack; the other peer gets the same one frame.
    mine = _board_frames(alice)
    assert len(mine) == 1
    assert alice.log.index(mine[0]) < alice.log.index(ack)
    event = await bob.next("cells.changed")
    assert event == mine[0]
    assert event["version"] == MAX_BATCH_OPS
    assert [(c["x"], c["y"], c["value"], c["version"]) for c in event["cells"]] == [
        (n % 40, n // 40, f"v{n}", n + 1) for n in range(MAX_BATCH_OPS)
    ]
    assert {c["client"] for c in event["cells"]} == {"c-alice"}
    assert len({c["at"] for c in event["cells"]}) == 1  # one server time per request
    assert len(await server.store.load_cells("core", "plan")) == MAX_BATCH_OPS
    assert not [m for m in alice.log if m["type"] == "error"]


BAD_OPS: list[tuple[str, Message, str]] = [
    ("outside", {"y": 300}, "ops[17]: cell (7, 300) is outside the 10x10 board"),
    ("column", {"x": 300}, "ops.17.x: Input should be less than 256"),
    ("clock", {"clock": 100_001}, "ops[17]: clock 100001 is too far ahead"),
    ("control", {"value": "a\u0007"}, "ops.17.value: contains the control character U+0007"),
]


@pytest.mark.parametrize(("field", "bad", "says"), BAD_OPS, ids=[b[0] for b in BAD_OPS])
async def test_one_bad_op_refuses_the_whole_batch(
    server: CollabServer, field: str, bad: Message, says: str
) -> None:
    alice, bob = await _pair(server)
    ops = [edit(n % 10, n // 10, f"v{n}", 1) for n in range(30)]
    ops[17] = {**ops[17], **bad}
    reply = await send_batch(alice, "b1", ops)
    assert reply["type"] == "error"
    assert reply["code"] == "bad_request"
    assert reply["message"].startswith(says)
    await _nothing_applied(server, alice, bob)


@pytest.mark.parametrize(
    ("frame", "says", "re"),
    [
        (batch("b1", []), "ops: List should have at least 1 item", "b1"),
        (
            batch("b1", [edit(0, 0, "", 1)] * (MAX_BATCH_OPS + 1)),
            "ops: List should have at most 1000 items",
            "b1",
        ),
        ({"type": "cells.set", "board": "plan", "ops": [edit(0, 0, "a", 1)]}, "id: Field", None),
    ],
    ids=["empty", "too-many", "no-id"],
)
async def test_a_malformed_batch_is_refused(
    server: CollabServer, frame: Message, says: str, re: str | None
) -> None:
    alice, bob = await _pair(server)
    await alice.send(frame)
    error = await alice.next("error")
    assert error["code"] == "bad_request"
    assert error["message"].startswith(says)
    assert error.get("re") == re
    await _nothing_applied(server, alice, bob)


async def test_a_batch_needs_the_board_joined_and_of_the_team(server: CollabServer) -> None:
    await _pair(server)
    carol = await Peer.join(server.url, token("carol", "core"))
    rival = await Peer.join(server.url, token("eve", "rivals"))
    ops = [edit(0, 0, "a", 1)]
    assert (await send_batch(carol, "b1", ops))["code"] == "forbidden"
    assert (await send_batch(rival, "b1", ops))["code"] == "not_found"
    assert (await send_batch(carol, "b2", ops, board="nope"))["code"] == "not_found"
    assert await server.store.load_cells("core", "plan") == []


async def _nothing_applied(server: CollabServer, alice: Peer, bob: Peer) -> None:
    """No cell stored, no event: a later single op is the first thing either peer sees."""
    assert await server.store.load_cells("core", "plan") == []
    await alice.send(
        {"type": "cell.set", "board": "plan", "x": 9, "y": 9, "value": "z", "op": "z", "clock": 1}
    )
    assert (await alice.next("ack", re="z"))["version"] == 1
    for peer in (alice, bob):
        await _seen(peer, "cell.changed", version=1)
        assert [m["type"] for m in _board_frames(peer)] == ["cell.changed"]


async def test_each_op_merges_under_last_writer_wins(server: CollabServer) -> None:
    alice, bob = await _pair(server)
    first = await send_batch(alice, "b1", [edit(0, 0, "new", 10)])
    assert first["ops"] == [{"version": 1, "applied": True}]
    ack = await send_batch(
        bob,
        "b2",
        [edit(0, 0, "old", 5), edit(1, 1, "a", 5), edit(1, 1, "b", 6), edit(0, 0, "old", 5)],
    )
    assert ack["ops"] == [
        {"version": 1, "applied": False},
        {"version": 2, "applied": True},
        {"version": 3, "applied": True},
        {"version": 3, "applied": False},
    ]
    assert ack["version"] == 3
    await _seen(alice, "cells.changed", version=3)
    (event,) = [m for m in alice.log if m.get("version") == 3]
    assert [(c["x"], c["y"], c["value"]) for c in event["cells"]] == [(1, 1, "a"), (1, 1, "b")]
    # A batch where no op wins is acked and sends no event: the next event anyone sees
    # is the one after it.
    lost = await send_batch(bob, "b3", [edit(0, 0, "old", 5), edit(1, 1, "a", 5)])
    assert lost["ops"] == [{"version": 3, "applied": False}] * 2
    await send_batch(bob, "b4", [edit(2, 2, "c", 7)])
    for peer in (alice, bob):
        await _seen(peer, "cells.changed", version=4)
        assert [m["version"] for m in _board_frames(peer)] == [1, 3, 4]
    grid = {(o.x, o.y): o.value for o in await server.store.load_cells("core", "plan")}
    assert grid == {(0, 0): "new", (1, 1): "b", (2, 2): "c"}


async def test_batches_count_against_the_cell_quota(start_server: StartServer) -> None:
    server = await start_server(max_cells_per_board=20)
    alice, _ = await _pair(server)
    assert (await send_batch(alice, "b1", [edit(x, 0, "v", 1) for x in range(10)]))["ops"]
    # 10 + 6 + 5 > 20: refused whole, naming what it would fill.
    over = [edit(x, 1, "v", 1) for x in range(6)] + [edit(x, 2, "v", 1) for x in range(5)]
    refused = await send_batch(alice, "b2", over)
    assert refused["code"] == "quota_exceeded"
    assert refused["re"] == "b2"
    assert "would fill 11 more" in refused["message"]
    assert len(await server.store.load_cells("core", "plan")) == 10
    # Overwrites, clears and the same empty cell twice fill at most what is new.
    fits = (
        [edit(x, 0, "w", 2) for x in range(10)]
        + [edit(x, 1, "v", 1) for x in range(10)]
        + [edit(0, 1, "again", 3), edit(9, 9, "", 1)]
    )
    assert all(r["applied"] for r in (await send_batch(alice, "b3", fits))["ops"])
    full = await send_batch(alice, "b4", [edit(5, 5, "one more", 1)])
    assert full["code"] == "quota_exceeded"
    # A clear in the same batch frees no room: it might lose its cell to a newer op.
    swap = await send_batch(alice, "b5", [edit(0, 0, "", 5), edit(5, 5, "swap", 1)])
    assert swap["code"] == "quota_exceeded"
    assert (await send_batch(alice, "b6", [edit(0, 0, "", 5)]))["ops"][0]["applied"]
    assert (await send_batch(alice, "b7", [edit(5, 5, "swap", 1)]))["ops"][0]["applied"]


async def test_batch_ops_draw_on_a_budget_of_their_own(start_server: StartServer) -> None:
    """One token a batch, but not free: 100 frames of 1,000 ops a second would be 100,000
    writes a second from one connection. Ops past `--cell-rate` are refused whole."""
    server = await start_server(cell_ops_per_s=1, cell_ops_burst=MAX_BATCH_OPS)
    alice, bob = await _pair(server, width=40, height=25)
    assert server.limits.cell_ops_per_s == 1
    full = [edit(n % 40, n // 40, "v", 1) for n in range(MAX_BATCH_OPS - 10)]
    assert all(r["applied"] for r in (await send_batch(alice, "b1", full))["ops"])
    over = [edit(n, 24, "w", 2) for n in range(20)]
    refused = await send_batch(alice, "b2", over)
    assert refused["type"] == "error"
    assert refused["code"] == "rate_limited"
    assert refused["re"] == "b2"
    assert refused["message"].startswith("over 1 cell writes a second; this batch of 20")
    assert len(await server.store.load_cells("core", "plan")) == MAX_BATCH_OPS - 10
    # Single cell.sets are paced by the message rate, not this budget.
    await alice.send(
        {"type": "cell.set", "board": "plan", "x": 0, "y": 24, "value": "s", "op": "s1", "clock": 5}
    )
    assert (await alice.next("ack", re="s1"))["applied"] is True
    assert not [m for m in bob.log if m["type"] == "error"]


def test_a_cell_burst_smaller_than_a_batch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--cell-burst at least 1000"):
        ServerConfig(data_dir=tmp_path, auth="open", cell_ops_burst=999)


async def test_concurrent_batches_stop_at_the_quota_exactly(start_server: StartServer) -> None:
    server = await start_server(max_cells_per_board=20)
    alice, _ = await _pair(server)
    writers = [alice] + [
        await Peer.join(server.url, token(f"w{n}", "core"), client_id=f"c-w{n}") for n in range(3)
    ]
    for peer in writers[1:]:
        await join_board(peer, "plan")
    # Four batches of 8 new cells each, in flight at once: 2 fit under 20, and 2 never
    # can, whichever order the store commits them in.
    replies = await asyncio.gather(
        *(
            send_batch(peer, f"b{n}", [edit(x, n, "v", 1) for x in range(8)])
            for n, peer in enumerate(writers)
        )
    )
    assert sorted(r["type"] for r in replies) == ["ack", "ack", "error", "error"]
    assert {r.get("code") for r in replies if r["type"] == "error"} == {"quota_exceeded"}
    assert len(await server.store.load_cells("core", "plan")) == 16


async def test_a_single_cell_set_is_a_batch_of_one_on_the_wire_as_before(
    server: CollabServer,
) -> None:
    alice, bob = await _pair(server)
    await alice.send(
        {"type": "cell.set", "board": "plan", "x": 1, "y": 2, "value": "a", "op": "o1", "clock": 1}
    )
    ack = await alice.next("ack", re="o1")
    assert ack == {"type": "ack", "re": "o1", "version": 1, "applied": True}
    changed = await bob.next("cell.changed")
    assert changed["version"] == 1
    assert "at" in changed
    await alice.send(
        {"type": "cell.set", "board": "plan", "x": 1, "y": 20, "value": "a", "op": "o2", "clock": 2}
    )
    error = await alice.next("error", re="o2")
    assert error["message"] == "cell (1, 20) is outside the 10x10 board"


async def test_sigkill_mid_batches_keeps_acked_batches_whole(tmp_path: Path) -> None:
    """Batch n writes 25 cells of its own and the 25-cell stripe of row 0, all `b<n>`.

    After a kill and a restart, each batch's own cells are all there or none (all there
    if it was acked), and the stripe is uniform: no commit holds part of a batch.
    """
    data = tmp_path / "data"
    server = ServerProcess(data, "--auth", "open")
    acked: list[int] = []
    try:
        url = server.start()
        peer = await Peer.join(url, user="writer", team="core", client_id="c-writer")
        await create_board(peer, "plan", width=100, height=100)
        await join_board(peer, "plan")
        window = asyncio.Semaphore(8)

        def ops_of(n: int) -> list[Message]:
            own = [edit((n % 4) * 25 + i, 1 + n // 4, f"b{n}", n + 1) for i in range(25)]
            return own + [edit(i, 0, f"b{n}", n + 1) for i in range(25)]

        async def send() -> None:
            for n in range(396):
                await window.acquire()
                await peer.send(batch(f"b{n}", ops_of(n)))

        async def collect() -> None:
            while True:
                reply = await peer.next(timeout=10)
                if reply["type"] == "ack":
                    assert all(r["applied"] for r in reply["ops"])
                    acked.append(int(reply["re"][1:]))
                    window.release()
                else:
                    assert reply["type"] in ("cells.changed", "participant.joined"), reply

        sender = asyncio.create_task(send())
        collector = asyncio.create_task(collect())
        await eventually(lambda: len(acked) >= 20, 20, "20 batches acked")  # more in flight
        server.kill()
        with pytest.raises(Closed):
            await collector  # ends when the connection dies with the server
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Closed, ConnectionClosed):
            await sender
    finally:
        server.stop()
    assert acked
    assert acked == sorted(acked)

    server = ServerProcess(data, "--auth", "open")
    try:
        url = server.start()
        reader = await Peer.join(url, user="checker", team="core")
        board = await whole_board(reader, "plan")
        await reader.close()
    finally:
        server.stop()
    cells = {at: c["value"] for at, c in board.items()}
    stripe = {cells.get((i, 0)) for i in range(25)}
    assert len(stripe) == 1, f"row 0 holds parts of several batches: {stripe}"
    (last,) = stripe
    assert last is not None
    assert int(last[1:]) >= max(acked)
    for n in range(int(last[1:]) + 1):
        own = [cells.get(((n % 4) * 25 + i, 1 + n // 4)) for i in range(25)]
        assert own == [f"b{n}"] * 25, f"batch {n} is not whole: {own}"
    assert not [v for (x, y), v in cells.items() if y > 0 and int(v[1:]) > int(last[1:])]

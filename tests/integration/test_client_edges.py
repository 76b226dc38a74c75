"""CollabClient at the edges: store failures, closing mid-handshake, lost boards, bad URLs."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from server.app import CollabServer
from server.store import SQLiteStore
from server.store.sqlite import DB_FILE
from tests.conftest import StartServer, fast_config
from tests.support.frames import welcome
from tests.support.metrics import sample
from tests.support.peer import Peer
from tests.support.waiting import eventually
from tui_collab.backoff import Backoff
from tui_collab.client import ClientError, CollabClient, NotConnected
from tui_collab.events import Closed, Reconnecting


def quick() -> Backoff:
    return Backoff(base_s=0.05, cap_s=0.1, rng=random.Random(0))


async def test_an_edit_that_hit_a_store_failure_is_retried(tmp_path: Path) -> None:
    config = fast_config(tmp_path, auth="open", secret=None)
    server = CollabServer(config, store=SQLiteStore(tmp_path, busy_timeout_s=0.2))
    await server.start()
    try:
        async with CollabClient(server.url, user="alice", team="core") as alice:
            await alice.create_board("Plan", 4, 4, board="plan")
            await alice.join("plan")
            blocker = sqlite3.connect(tmp_path / DB_FILE, isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            edit = asyncio.create_task(alice.set_cell("plan", 1, 1, "kept"))
            await eventually(
                lambda: sample(server.metrics, "tui_collab_errors_total", code="internal") >= 1,
                what="the first try fails with `internal`",
            )
            assert not edit.done()
            assert len(alice.pending("plan")) == 1
            blocker.execute("ROLLBACK")
            blocker.close()
            ack = await asyncio.wait_for(edit, 5)
            assert ack.applied
        cells = await server.store.load_cells("core", "plan")
        assert [(c.x, c.y, c.value) for c in cells] == [(1, 1, "kept")]
    finally:
        await server.stop()


async def test_close_during_the_handshake_returns(unused_tcp_port: int) -> None:
    hello_seen = asyncio.Event()

    async def slow_welcome(ws: ServerConnection) -> None:
        await ws.recv()
        hello_seen.set()
        await asyncio.sleep(0.5)  # the point: a server slow to welcome
        await ws.send(welcome())
        await ws.wait_closed()

    async with serve(slow_welcome, "127.0.0.1", unused_tcp_port):
        client = CollabClient(f"ws://127.0.0.1:{unused_tcp_port}/ws", user="a", team="t")
        client.start()
        await asyncio.wait_for(hello_seen.wait(), 3)  # mid-handshake
        await asyncio.wait_for(client.close(), 3)
        assert client.state == Closed("closed")


async def test_a_bad_url_ends_in_a_closed_state() -> None:
    client = CollabClient("http://127.0.0.1:1/ws", user="a", team="t", backoff=quick())
    with pytest.raises(ConnectionError, match="invalid_url"):
        await client.__aenter__()


async def test_board_gone_after_reconnect_fails_its_queued_edits(
    start_server: StartServer, tmp_path: Path
) -> None:
    first = await start_server(auth="open", secret=None, data_dir=tmp_path / "one")
    port = first.port
    async with CollabClient(first.url, user="alice", team="core", backoff=quick()) as alice:
        await alice.create_board("Plan", 4, 4, board="plan")
        await alice.join("plan")
        await first.stop()
        await eventually(lambda: isinstance(alice.state, Reconnecting), 3, "reconnecting")
        queued = asyncio.create_task(alice.set_cell("plan", 0, 0, "lost board"))
        await eventually(lambda: len(alice.pending("plan")) == 1, what="the edit is queued")
        # The server comes back on an empty store: the board does not exist there.
        await start_server(auth="open", secret=None, data_dir=tmp_path / "two", port=port)
        with pytest.raises(ClientError) as failed:
            await asyncio.wait_for(queued, 5)
        assert failed.value.code in ("not_found", "forbidden")
        await eventually(lambda: "plan" not in alice.joined, 3, "the board is dropped")
        with pytest.raises(NotConnected):
            await alice.set_cell("plan", 0, 0, "again")


async def test_after_giving_up_edits_fail_instead_of_waiting(unused_tcp_port: int) -> None:
    async def sleep(_: float) -> None:
        return None

    client = CollabClient(
        f"ws://127.0.0.1:{unused_tcp_port}/ws", user="a", team="t", max_attempts=2, sleep=sleep
    )
    with pytest.raises(ConnectionError, match="gave_up"):
        await client.__aenter__()
    with pytest.raises(NotConnected):
        await client.set_cell("plan", 0, 0, "x")


async def test_long_client_ids_still_edit(server: CollabServer) -> None:
    from tests.conftest import token

    client_id = "c" * 64
    async with CollabClient(server.url, token=token("alice", "core"), client_id=client_id) as alice:
        await alice.create_board("Plan", 2, 2, board="plan")
        await alice.join("plan")
        assert (await alice.set_cell("plan", 0, 0, "ok")).applied
        assert alice.joined["plan"].cells.get(0, 0).client == client_id  # type: ignore[union-attr]


async def test_events_iterators_end_when_the_client_closes(server: CollabServer) -> None:
    from tests.conftest import token

    client = CollabClient(server.url, token=token("alice", "core"))
    await client.__aenter__()
    seen: list[object] = []
    subscribed = asyncio.Event()

    async def consume() -> None:
        events = client.events()
        subscribed.set()
        async for event in events:
            seen.append(event)

    consumer = asyncio.create_task(consume())
    await subscribed.wait()
    await client.close()
    await asyncio.wait_for(consumer, 2)
    assert seen  # it got the final state change before ending


async def test_long_unicode_close_reason_does_not_crash_the_handler(
    server: CollabServer,
) -> None:
    peer = await Peer.open(server.url)
    await peer.send_raw(json.dumps({"type": "é" * 90}))
    error = await peer.next("error")
    assert error["code"] == "bad_request"
    assert await peer.closed() == 4001


async def test_a_peer_that_never_reads_is_dropped(start_server: StartServer) -> None:
    server = await start_server(auth="open", secret=None)
    async with CollabClient(server.url, user="alice", team="core") as alice:
        await alice.create_board("Big", 200, 40, board="big")
        await alice.join("big")
        await asyncio.gather(
            *(alice.set_cell("big", n % 200, n // 200, "v" * 120) for n in range(4000))
        )
    ws = await connect(server.url, max_queue=1, max_size=None)
    await ws.send(json.dumps({"type": "hello", "v": 1, "user": "eve", "team": "core"}))
    join = json.dumps({"type": "board.join", "board": "big"})
    for _ in range(60):  # ~60 MB of snapshots asked for, none read
        await ws.send(join)
    # Dropped by the backlog bound, well before keepalive (5 s + 5 s here) would notice.
    await eventually(lambda: not server.hub.user_sessions("core", "eve"), 3, "eve is dropped")
    ws.transport.abort()
    async with CollabClient(server.url, user="bob", team="core") as bob:  # others unaffected
        board = await bob.join("big")
        assert len(board.cells) == 4000

"""Notes across server nodes on one real Redis: fan-out, a node killed mid-typing, and
compaction through the server."""

from __future__ import annotations

import asyncio
import base64
import random
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text
from redis.asyncio import Redis

from server.app import CollabServer
from server.redis_util import awaited
from server.store.notes_base import COMPACT_AFTER
from tests.conftest import StartServer, token
from tests.support.board import create_board, join_board
from tests.support.notes_typing import fast_backoff, holds, type_into
from tests.support.peer import Message, Peer
from tests.support.process import ServerProcess
from tests.support.waiting import eventually
from tui_collab.client import CollabClient


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def open_notes(peer: Peer, board: str) -> Message:
    await peer.send({"type": "notes.open", "id": "open", "board": board, "sv": "AA=="})
    return await peer.next("notes.state", re="open")


async def test_an_update_on_node_a_reaches_a_subscriber_on_node_b(
    start_server: StartServer, redis_url: str, tmp_path: Path
) -> None:
    a = await start_server(tmp_path / "a", redis_url=redis_url, node="node-a")
    b = await start_server(tmp_path / "b", redis_url=redis_url, node="node-b")
    alice = await Peer.join(a.url, token("alice", "core"))
    bob = await Peer.join(b.url, token("bob", "core"))
    await create_board(alice, "plan")
    for peer in (alice, bob):
        await join_board(peer, "plan")
        await open_notes(peer, "plan")
    doc: Doc[Any] = Doc(client_id=1)
    doc.get("notes", type=Text).insert(0, "from node a")
    await alice.send(
        {"type": "notes.update", "id": "u", "board": "plan", "update": b64(doc.get_update())}
    )
    await alice.next("ack", re="u")
    got = await bob.next("notes.updated")
    assert (got["by"], got["update"]) == ("alice", b64(doc.get_update()))
    await alice.send({"type": "notes.caret", "board": "plan", "anchor": None, "head": "AAEBAA=="})
    carets = await bob.next("notes.carets")
    assert carets["carets"] == [{"user": "alice", "head": "AAEBAA=="}]
    # A late joiner on node b reads the document from Redis (node b never loaded it
    # before bob opened it, and has it live now).
    carol = await Peer.join(b.url, token("carol", "core"))
    await join_board(carol, "plan")
    state = await open_notes(carol, "plan")
    mine: Doc[Any] = Doc()
    mine.apply_update(base64.b64decode(state["update"]))
    assert str(mine.get("notes", type=Text)) == "from node a"
    assert state["carets"] == carets["carets"]


async def test_the_log_is_compacted_past_its_threshold_and_loads_whole(
    start_server: StartServer, redis_url: str, tmp_path: Path
) -> None:
    server: CollabServer = await start_server(tmp_path / "a", redis_url=redis_url)
    alice = await Peer.join(server.url, token("alice", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    await open_notes(alice, "plan")
    doc: Doc[Any] = Doc(client_id=1)
    text = doc.get("notes", type=Text)
    for n in range(COMPACT_AFTER + 20):
        before = doc.get_state()
        text.insert(len(text), f"{n % 10}")
        update = b64(doc.get_update(before))
        await alice.send({"type": "notes.update", "id": f"k{n}", "board": "plan", "update": update})
    await alice.next("ack", re=f"k{COMPACT_AFTER + 19}", timeout=10)
    log_key = "tc:t:core:b:plan:notes:log"
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:

        async def compacted() -> bool:
            return await awaited(redis.llen(log_key)) < COMPACT_AFTER

        await eventually(compacted, what="the log folded into the snapshot")
        assert await redis.exists("tc:t:core:b:plan:notes:snap")
    finally:
        await redis.aclose()
    # A node that loads it cold (this one after the last subscriber left) sees it all.
    await alice.send({"type": "notes.close", "board": "plan"})
    await eventually(lambda: server.notes.get("core", "plan") is None)
    state = await open_notes(alice, "plan")
    cold: Doc[Any] = Doc()
    cold.apply_update(base64.b64decode(state["update"]))
    assert str(cold.get("notes", type=Text)) == str(text)


async def test_a_node_killed_while_its_client_types_loses_no_acked_update(
    redis_url: str, tmp_path: Path
) -> None:
    nodes = [
        ServerProcess(tmp_path / f"node{n}", "--redis", redis_url, "--auth", "open")
        for n in range(2)
    ]
    urls = [node.start() for node in nodes]
    typist = CollabClient(urls, user="ann", team="core", backoff=fast_backoff(1))
    reader = CollabClient(urls[1], user="ben", team="core", backoff=fast_backoff(2))
    acked: list[bytes] = []
    stop = asyncio.Event()
    typing: asyncio.Task[None] | None = None
    try:
        for client in (typist, reader):
            client.start()
            await client.wait_connected()
        await typist.create_board("Plan", 4, 4, board="plan")
        mine = await typist.open_notes("plan")
        theirs = await reader.open_notes("plan")
        mine.on_acked = acked.append
        typing = asyncio.create_task(type_into(mine, random.Random(3), stop))
        await eventually(lambda: len(acked) > 40, timeout=10, what="acks from node 0")
        nodes[0].kill()
        killed_with = len(acked)
        await eventually(lambda: len(acked) > killed_with + 20, timeout=10, what="acks, node 1")
        stop.set()
        await typing
        await eventually(
            lambda: mine.unacked == 0 and str(theirs.text) == str(mine.text),
            timeout=10,
            what="the reader on node 1 has every key",
        )
        state = theirs.doc.get_update()
        assert all(holds(state, update) for update in acked)
    finally:
        stop.set()
        if typing is not None:
            typing.cancel()
            await asyncio.gather(typing, return_exceptions=True)
        for client in (typist, reader):
            await client.close()
        for node in nodes:
            node.stop()

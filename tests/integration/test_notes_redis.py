"""Notes across two server nodes on one real Redis, and compaction through the server."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text
from redis.asyncio import Redis

from server.app import CollabServer
from server.redis_util import awaited
from server.store.notes_base import COMPACT_AFTER
from tests.conftest import StartServer, token
from tests.support.board import create_board, join_board
from tests.support.peer import Message, Peer
from tests.support.waiting import eventually


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

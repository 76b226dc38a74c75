"""Many clients' concurrent edits on two nodes: fewer script calls than edits, same board.

Real `serve --redis` processes on a real redis-server. A node groups the cell writes that
arrive while its previous script call is in flight (server/store/redis.py); what clients
and the other node see must not change: one ack and one `cell.changed` per edit that won.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.conftest import token
from tests.integration.test_scaleout import Nodes
from tests.support.board import cell_events, create_board, join_board
from tests.support.mirror import mirror
from tests.support.peer import Peer
from tests.support.redis_server import RedisServer
from tests.support.waiting import eventually

WRITERS = 8
EDITS = 25
SIDE = 6


@pytest.fixture
def two_nodes(redis_server: RedisServer, tmp_path: Path) -> Iterator[Nodes]:
    cluster = Nodes(tmp_path, redis_server.url, 2).start()
    yield cluster
    cluster.stop()


async def evalsha_calls(url: str) -> int:
    async with Redis.from_url(url, decode_responses=True) as raw:
        stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_edits_share_script_calls_and_every_node_agrees(
    two_nodes: Nodes, redis_server: RedisServer
) -> None:
    writers = [
        await Peer.join(two_nodes.urls[0], token(f"w{n}", "core"), header=True)
        for n in range(WRITERS)
    ]
    watcher = await Peer.join(two_nodes.urls[1], token("eve", "core"), header=True)
    await create_board(writers[0], "plan", SIDE, SIDE)
    for peer in (*writers, watcher):
        await join_board(peer, "plan")

    # Every writer sends all its edits at once; clocks are unique, so the latest wins.
    expected: dict[tuple[int, int], tuple[int, str]] = {}
    frames = []
    for n in range(EDITS):
        for w in range(WRITERS):
            x, y, clock, value = (n + w) % SIDE, (n * w) % SIDE, n * WRITERS + w + 1, f"{w}.{n}"
            expected[(x, y)] = max(expected.get((x, y), (0, "")), (clock, value))
            edit = {"x": x, "y": y, "value": value, "op": f"{w}-{n}", "clock": clock}
            frames.append((writers[w], {"type": "cell.set", "board": "plan", **edit}))
    before = await evalsha_calls(redis_server.url)
    await asyncio.gather(*(peer.send(frame) for peer, frame in frames))

    acks = [
        [await peer.next("ack", re=f"{w}-{n}") for n in range(EDITS)]
        for w, peer in enumerate(writers)
    ]
    calls = await evalsha_calls(redis_server.url) - before
    assert calls < WRITERS * EDITS / 2, f"{calls} script calls for {WRITERS * EDITS} edits"

    won = sum(ack["applied"] for acked in acks for ack in acked)
    final = {cell: value for cell, (_, value) in expected.items()}
    for peer in (*writers, watcher):
        await eventually(
            lambda peer=peer: mirror(peer.log, "plan").values() == final,  # type: ignore[misc]
            5,
            "every client's board ends as the LWW rule says",
        )
    changed = cell_events(watcher.log)
    assert len(changed) == won  # one cell per edit that won, none twice
    assert sorted(m["version"] for m in changed) == list(range(1, won + 1))
    for peer in (*writers, watcher):
        await peer.close()

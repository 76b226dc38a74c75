"""`last_seen` is the same on every node, and after a crash it is the last heartbeat.

Nodes are real servers on one real redis-server; the ones that must crash are
subprocesses that get SIGKILL. Clients are real WebSocket connections.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.app import CollabServer
from server.redis_util import awaited
from tests.conftest import SECRET, StartServer, token
from tests.integration.test_scaleout import online
from tests.support.peer import Peer
from tests.support.process import ServerProcess
from tests.support.roster import next_entry
from tests.support.waiting import eventually

GRACE_S = 1.0
HEARTBEAT_S = 0.2
SLACK = timedelta(seconds=0.5)
"""Scheduling delay allowed on a loaded machine, on top of the heartbeat interval."""


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _now() -> datetime:
    return datetime.now(UTC)


async def presence_api(ws_url: str, bearer: str | None = None) -> dict[str, Any]:
    """GET /api/presence of the node at `ws_url`: its members by user id."""
    base = ws_url.replace("ws://", "http://").removesuffix("/ws")
    if bearer is None:
        request = urllib.request.Request(f"{base}/api/presence?team=core")
    else:
        request = urllib.request.Request(
            f"{base}/api/presence", headers={"Authorization": f"Bearer {bearer}"}
        )

    def get() -> dict[str, Any]:
        with urllib.request.urlopen(request, timeout=5) as reply:
            body: dict[str, Any] = json.loads(reply.read())
        return {m["user"]: m for m in body["members"]}

    return await asyncio.to_thread(get)  # the nodes may run on this very event loop


# Fixtures and arguments name redis_url before start_server: Redis then stops after the
# nodes, not under them.
@pytest.fixture
async def two_nodes(
    redis_url: str, start_server: StartServer, tmp_path: Path
) -> tuple[CollabServer, CollabServer]:
    a = await start_server(tmp_path / "a", redis_url=redis_url, offline_grace_s=GRACE_S)
    b = await start_server(tmp_path / "b", redis_url=redis_url, offline_grace_s=GRACE_S)
    return a, b


async def _alice_watching_bob(a: CollabServer, b: CollabServer) -> tuple[Peer, Peer]:
    alice = await Peer.join(a.url, token("alice", "core"), header=True)
    bob = await Peer.join(b.url, token("bob", "core"), header=True)
    await eventually(lambda: online(alice).get("bob") == "online", 5, "alice sees bob online")
    return alice, bob


async def _every_node_agrees(nodes: list[CollabServer], last_seen: str, redis_url: str) -> None:
    """Each node's /api/presence shows bob offline at `last_seen`; no part of his is left."""
    for node in nodes:
        bob = (await presence_api(node.url, token("alice", "core")))["bob"]
        assert (bob["status"], _when(bob["last_seen"])) == ("offline", _when(last_seen))
    async with Redis.from_url(redis_url, decode_responses=True) as redis:
        parts = await awaited(redis.hkeys("tc:t:core:parts"))
        assert not [field for field in parts if field.endswith("|bob")]


async def test_last_seen_of_a_clean_close_is_shown_on_every_node(
    redis_url: str,
    two_nodes: tuple[CollabServer, CollabServer],
    start_server: StartServer,
    tmp_path: Path,
) -> None:
    a, b = two_nodes
    alice, bob = await _alice_watching_bob(a, b)
    before = _now()
    await bob.close()
    gone = await next_entry(alice, "presence", user="bob", status="offline", timeout=5)
    assert "last_seen" in gone, gone
    assert before <= _when(gone["last_seen"]) <= _now()
    # A node that starts watching the team only now reads it from the store.
    late = await start_server(tmp_path / "c", redis_url=redis_url)
    await _every_node_agrees([a, b, late], gone["last_seen"], redis_url)
    await alice.close()


async def test_last_seen_of_a_lost_connection_is_the_loss_on_every_node(
    redis_url: str,
    two_nodes: tuple[CollabServer, CollabServer],
    start_server: StartServer,
    tmp_path: Path,
) -> None:
    a, b = two_nodes
    alice, bob = await _alice_watching_bob(a, b)
    lost = _now()
    bob.abort()  # no close frame: node b waits out the grace period
    gone = await next_entry(alice, "presence", user="bob", status="offline", timeout=GRACE_S + 5)
    told = _now()
    assert "last_seen" in gone, gone
    last_seen = _when(gone["last_seen"])
    assert lost <= last_seen <= lost + SLACK, "last_seen is when the connection was lost"
    assert told - last_seen >= timedelta(seconds=GRACE_S * 0.9), "offline only after the grace"
    late = await start_server(tmp_path / "c", redis_url=redis_url)
    await _every_node_agrees([a, b, late], gone["last_seen"], redis_url)
    await alice.close()


async def test_a_killed_node_s_user_was_last_seen_at_its_last_heartbeat(
    redis_url: str, start_server: StartServer, tmp_path: Path
) -> None:
    a = await start_server(tmp_path / "a", redis_url=redis_url, node_ttl_s=1.0)
    b = ServerProcess(
        tmp_path / "b",
        *("--redis", redis_url, "--node-ttl", "1", "--presence-heartbeat", str(HEARTBEAT_S)),
        env={"TUI_COLLAB_SECRET": SECRET},
    )
    try:
        b_url = b.start()
        watcher = await Peer.join(a.url, token("watcher", "core"), header=True)
        await Peer.join(b_url, token("stranded", "core"), header=True)
        await eventually(lambda: online(watcher).get("stranded") == "online", 5, "stranded on")
        await asyncio.sleep(1.5)  # several heartbeats: the connection's own save is old now
        killed = _now()
        b.kill()
        gone = await next_entry(watcher, "presence", user="stranded", status="offline", timeout=10)
        noticed = _now()
        last_seen = _when(gone["last_seen"])
        # Node a notices the death about a TTL later; that is not when stranded was seen.
        assert noticed - killed >= timedelta(seconds=0.5)
        assert killed - timedelta(seconds=HEARTBEAT_S) - SLACK <= last_seen <= killed
        member = (await presence_api(a.url, token("watcher", "core")))["stranded"]
        assert _when(member["last_seen"]) == last_seen
        await watcher.close()
    finally:
        b.stop()


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_after_a_crash_last_seen_is_the_last_heartbeat_not_the_restart(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    flags = ["--auth", "open", "--presence-heartbeat", str(HEARTBEAT_S)]
    redis_url = ""
    if store == "redis":
        redis_url = request.getfixturevalue("redis_url")
        flags += ["--redis", redis_url, "--node-ttl", "1"]
    first = ServerProcess(tmp_path / "data", *flags)
    try:
        url = first.start()
        ada = await Peer.join(url, user="ada", team="core")
        await ada.close()  # an earlier last_seen, which must not come back after the crash
        rejoined = _now()
        ada = await Peer.join(url, user="ada", team="core")
        first_node = ada.welcome["server"]["node"]
        await asyncio.sleep(1.5)  # online through several heartbeats
        killed = _now()
        first.kill()
    finally:
        first.stop()
    if store == "redis":
        # Past the dead node's liveness key, so the restarted node cannot see its part.
        async with Redis.from_url(redis_url, decode_responses=True) as redis:

            async def expired() -> bool:
                return not await redis.exists(f"tc:node:{first_node}")

            await eventually(expired, 5, "the dead node's liveness key expires")
            assert not await redis.exists(f"tc:node:{first_node}")
    second = ServerProcess(tmp_path / "data", *flags)
    try:
        url = second.start()
        ada = (await presence_api(url))["ada"]
        assert ada["status"] == "offline"
        last_seen = _when(ada["last_seen"])
        # Alive after the earlier close, and not the restart: a heartbeat's time (how
        # late the last one was depends on the machine's load, so not bounded here).
        assert rejoined <= last_seen <= killed
        # A client's welcome says the same.
        checker = await Peer.join(url, user="checker", team="core")
        (member,) = [m for m in checker.welcome["members"] if m["user"] == "ada"]
        assert _when(member["last_seen"]) == last_seen
        await checker.close()
    finally:
        second.stop()

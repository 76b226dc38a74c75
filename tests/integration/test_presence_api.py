"""GET /api/presence reads a team; it never makes the server watch one.

In open mode anyone who reaches the port may ask about any team: with Redis, a team
watched for each query would cost state and a subscription per made-up name.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from server.app import CollabServer
from tests.conftest import StartServer
from tests.support.peer import Peer
from tests.support.waiting import eventually


async def members(server: CollabServer, team: str) -> dict[str, Any]:
    """GET /api/presence?team=TEAM (open mode): the members by user id."""
    url = f"http://127.0.0.1:{server.port}/api/presence?team={team}"

    def get() -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=5) as reply:
            body: dict[str, Any] = json.loads(reply.read())
        return {m["user"]: m for m in body["members"]}

    return await asyncio.to_thread(get)  # the server runs on this very event loop


async def alice_is(server: CollabServer, status: str) -> bool:
    return bool((await members(server, "core")).get("alice", {}).get("status") == status)


async def subscribers(redis_url: str, channel: str) -> int:
    async with Redis.from_url(redis_url, decode_responses=True) as raw:
        ((_, count),) = await raw.pubsub_numsub(channel)
    return int(count)


def watches(server: CollabServer, team: str) -> bool:
    """Whether the server holds state or a subscription for the team."""
    channels = getattr(server.cluster, "_channels", {})
    return team in server.presence._teams or any(t == team for _, t, _ in channels.values())


async def test_a_query_in_open_mode_with_redis_watches_no_team(
    redis_url: str, start_server: StartServer, tmp_path: Path
) -> None:
    a = await start_server(tmp_path / "a", redis_url=redis_url, auth="open", secret=None)
    b = await start_server(tmp_path / "b", redis_url=redis_url, auth="open", secret=None)
    alice = await Peer.join(a.url, user="alice", team="core", name="Alice")
    try:
        # A team nobody is in: an empty list, and nothing made for it.
        for _ in range(3):
            assert await members(b, "ghost") == {}
        assert not watches(b, "ghost")
        assert await subscribers(redis_url, "tc:t:ghost:frames") == 0

        # A team held on another node: its members as they are, still not watched here.
        await eventually(
            lambda: alice_is(b, "online"), 5, "node b lists alice, connected to node a"
        )
        assert not watches(b, "core")
        assert await subscribers(redis_url, "tc:t:core:frames") == 1  # node a's own
    finally:
        await alice.close()

    # The team's member, offline, is still listed from the store.
    await eventually(lambda: alice_is(b, "offline"), 5, "node b lists alice offline once she left")
    assert not watches(b, "core")

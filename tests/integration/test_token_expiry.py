"""A live connection ends when its token does, unless the client refreshes it in band."""

from __future__ import annotations

import asyncio
import time

import jwt

from server.app import CollabServer
from tests.conftest import SECRET, StartServer, token
from tests.support.peer import Peer
from tests.support.roster import next_entry
from tui_collab.client import CollabClient
from tui_collab.events import Connected


def expiry_of(raw: str) -> float:
    claims = jwt.decode(raw, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    return float(claims["exp"])


async def test_connection_closes_within_a_second_of_exp(server: CollabServer) -> None:
    short = token("alice", "core", ttl_s=2)
    alice = await Peer.join(server.url, short)
    watcher = await Peer.join(server.url, token("bob", "core"))
    code = await alice.closed(timeout=5)
    closed_at = time.time()
    assert code == 4001
    assert abs(closed_at - expiry_of(short)) < 1.0
    assert [m["message"] for m in alice.log if m["type"] == "error"] == ["token expired"]
    assert (await next_entry(watcher, "presence", user="alice"))["status"] == "offline"


async def test_refresh_keeps_the_connection_open(server: CollabServer) -> None:
    short = token("alice", "core", ttl_s=2)
    alice = await Peer.join(server.url, short)
    await alice.send({"type": "auth.refresh", "token": token("alice", "core"), "id": "r"})
    await alice.next("ack", re="r")
    # A delay is the point: the first token must have expired, on the server's clock.
    await asyncio.sleep(max(0.0, expiry_of(short) - time.time()) + 1.0)
    await alice.send({"type": "presence.query", "id": "still"})
    await alice.next("presence.snapshot", re="still")
    await alice.close()


async def test_refresh_with_someone_elses_token_closes_4001(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    await alice.send({"type": "auth.refresh", "token": token("bob", "core"), "id": "r"})
    error = await alice.next("error", re="r")
    assert error["code"] == "unauthorized"
    assert await alice.closed() == 4001


async def test_refresh_with_a_bad_token_closes_4001(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    await alice.send({"type": "auth.refresh", "token": "forged", "id": "r"})
    assert (await alice.next("error", re="r"))["code"] == "unauthorized"
    assert await alice.closed() == 4001


async def test_the_client_swaps_tokens_from_its_provider_before_they_expire(
    start_server: StartServer,
) -> None:
    server = await start_server()
    minted: list[str] = []

    async def provider() -> str:
        minted.append(token("ada", "core", ttl_s=2))
        return minted[-1]

    async with CollabClient(server.url, token_provider=provider) as client:
        await client.create_board("Plan", 5, 5, board="plan")
        await client.join("plan")
        # A delay is the point: two and a half token lifetimes, with no reconnect.
        await asyncio.sleep(5)
        assert isinstance(client.state, Connected)
        assert client.attempts == 1  # never closed, never reconnected
        assert len(minted) >= 3
        ack = await client.set_cell("plan", 0, 0, "still here")
        assert ack.applied


async def test_an_expired_token_is_replaced_by_the_provider_instead_of_giving_up(
    start_server: StartServer,
) -> None:
    server = await start_server()
    fresh = token("ada", "core")

    async def provider() -> str:
        return fresh

    expired = token("ada", "core", ttl_s=-10)
    async with CollabClient(server.url, token=expired, token_provider=provider) as client:
        assert client.welcome is not None
        assert client.welcome.user.id == "ada"
        assert client.attempts == 1  # it knew from `exp`, before trying
    revoked = token("ada", "core")[:-4] + "AAAA"  # refused with 401 at the upgrade
    async with CollabClient(server.url, token=revoked, token_provider=provider) as client:
        assert client.welcome is not None
        assert client.attempts == 2


async def test_a_token_in_its_last_fifth_is_replaced_before_connecting(
    start_server: StartServer,
) -> None:
    """Renewal is due a fifth of the token's life before `exp` (at most 60 s before)."""
    server = await start_server()
    now = int(time.time())
    late = jwt.encode(
        {"sub": "ada", "team": "core", "iat": now - 9, "exp": now + 2}, SECRET, algorithm="HS256"
    )
    fresh: list[str] = []

    async def provider() -> str:
        fresh.append(token("ada", "core"))
        return fresh[-1]

    async with CollabClient(server.url, token=late, token_provider=provider) as client:
        assert client.attempts == 1
        assert len(fresh) == 1  # asked before the first attempt, not after a 4001

"""A live connection ends when its token does, unless the client refreshes it in band."""

from __future__ import annotations

import asyncio
import time

import jwt

from server.app import CollabServer
from tests.conftest import SECRET, token
from tests.support.peer import Peer


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
    assert (await watcher.next("presence", user="alice"))["status"] == "offline"


async def test_refresh_keeps_the_connection_open(server: CollabServer) -> None:
    short = token("alice", "core", ttl_s=2)
    alice = await Peer.join(server.url, short)
    await alice.send({"type": "auth.refresh", "token": token("alice", "core"), "id": "r"})
    await alice.next("ack", re="r")
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

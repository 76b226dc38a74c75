"""Rate limits: a flooder is told, then cut off; everyone else carries on."""

from __future__ import annotations

import asyncio

from tests.conftest import StartServer, token
from tests.support.board import create_board, join_board
from tests.support.metrics import sample
from tests.support.peer import Peer
from tui_collab.client import CollabClient


async def test_a_flooder_gets_rate_limited_then_4029_and_others_are_unaffected(
    start_server: StartServer,
) -> None:
    server = await start_server(rate_per_s=100, burst=200, flood_close_after_s=2.0)
    flooder = await Peer.join(server.url, token("eve", "core"))
    alice = await Peer.join(server.url, token("alice", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    await join_board(flooder, "plan")

    async def flood() -> None:
        n = 0
        try:
            while True:  # ~2,000 messages a second
                for _ in range(20):
                    await flooder.send({"type": "presence.query", "id": f"f{n}"})
                    n += 1
                await asyncio.sleep(0.01)
        except Exception:  # closed under us: expected
            return

    flooding = asyncio.create_task(flood())
    limited = await flooder.next("error", code="rate_limited", timeout=3)
    assert limited["re"].startswith("f")
    # Meanwhile alice's requests are answered as usual.
    loop = asyncio.get_running_loop()
    for n in range(10):
        sent = loop.time()
        await alice.send({"type": "presence.query", "id": f"a{n}"})
        await alice.next("presence.snapshot", re=f"a{n}")
        assert loop.time() - sent < 0.5
        await asyncio.sleep(0.05)  # kept: alice's queries spread over time, a delay is the point
    assert await flooder.closed(timeout=6) == 4029
    await flooding
    errors = [m for m in flooder.log if m.get("code") == "rate_limited"]
    assert 1 <= len(errors) <= 4  # at most one a second
    await alice.send({"type": "presence.query", "id": "after"})
    await alice.next("presence.snapshot", re="after")


async def test_cursor_moves_over_the_limit_are_dropped_silently(
    start_server: StartServer,
) -> None:
    server = await start_server(rate_per_s=50, burst=50, flood_close_after_s=30)
    mover = await Peer.join(server.url, token("mover", "core"))
    await create_board(mover, "plan", width=200, height=5)
    await join_board(mover, "plan")
    for x in range(150):
        await mover.send({"type": "cursor.move", "board": "plan", "x": x, "y": 0})
    quiet = await mover.drain(0.5)
    assert [m for m in quiet if m["type"] == "error"] == []


async def test_the_client_paces_itself_under_the_limit(start_server: StartServer) -> None:
    server = await start_server(rate_per_s=100, burst=20, flood_close_after_s=2.0)
    async with CollabClient(server.url, token=token("alice", "core")) as alice:
        await alice.create_board("Plan", 10, 10, board="plan")
        await alice.join("plan")
        acks = await asyncio.wait_for(
            asyncio.gather(*(alice.set_cell("plan", n % 10, n // 10, f"v{n}") for n in range(100))),
            10,
        )
        assert all(ack.applied for ack in acks)  # none dropped, none refused
    assert sample(server.metrics, "tui_collab_rate_limited_total") == 0

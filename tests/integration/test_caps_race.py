"""Caps that concurrency cannot overshoot: per-user connection slots, boards, cells.

Each cap is reserved in the same step as it is checked, before any await, and given
back on every way out; so many requests at once stop at the cap exactly.
"""

from __future__ import annotations

import asyncio

from tests.conftest import StartServer, token
from tests.support.board import create_board, join_board
from tests.support.peer import Peer
from tests.support.waiting import eventually


async def _hello(url: str, hello_token: str) -> tuple[Peer, str, int | None]:
    """Say hello with the token in the frame; return the first reply's type."""
    peer = await Peer.join_raw(url, {"type": "hello", "v": 1, "token": hello_token})
    reply = await peer.next()
    if reply["type"] == "welcome":
        return peer, "welcome", None
    assert reply["type"] == "error", reply
    return peer, str(reply["code"]), await peer.closed()


async def test_thirty_concurrent_hellos_of_one_user_get_exactly_eight_welcomes(
    start_server: StartServer,
) -> None:
    server = await start_server()
    ada = token("ada", "core")
    results = await asyncio.gather(*(_hello(server.url, ada) for _ in range(30)))
    welcomed = [peer for peer, kind, _ in results if kind == "welcome"]
    refused = [(kind, code) for _, kind, code in results if kind != "welcome"]
    assert len(welcomed) == 8
    assert refused == [("rate_limited", 1013)] * 22
    # Refused handshakes gave their slots back, and so do the eight when they close.
    await asyncio.gather(*(peer.close() for peer in welcomed))
    # A delay is the point: the connect-rate bucket (burst 30) refills in real time.
    await asyncio.sleep(0.3)
    again = await asyncio.gather(*(_hello(server.url, ada) for _ in range(8)))
    assert [kind for _, kind, _ in again] == ["welcome"] * 8
    await asyncio.gather(*(peer.close() for peer, _, _ in again))


async def test_a_handshake_that_fails_after_the_slot_was_taken_gives_it_back(
    start_server: StartServer,
) -> None:
    server = await start_server(max_connections_per_user=2)
    # Header path: the slot is taken at the upgrade; a wrong hello then ends it.
    for _ in range(4):
        bad = await Peer.open(server.url, headers={"Authorization": f"Bearer {token('ada', 'c')}"})
        await bad.send({"type": "hello", "v": 99})
        assert await bad.closed() is not None
        # And one dropped before it ever says hello.
        dropped = await Peer.open(
            server.url, headers={"Authorization": f"Bearer {token('ada', 'c')}"}
        )
        dropped.abort()
    await eventually(lambda: server.admission.held_slots() == {}, what="every slot given back")
    assert server.admission.held_slots() == {}
    peers = [await Peer.join(server.url, token("ada", "c")) for _ in range(2)]
    for peer in peers:
        await peer.close()
    await eventually(lambda: server.admission.held_slots() == {}, what="every slot given back")
    assert server.admission.held_slots() == {}


async def test_concurrent_board_creates_stop_at_the_quota_exactly(
    start_server: StartServer,
) -> None:
    server = await start_server(max_boards_per_team=5, connect_burst=100)
    peers = [await Peer.join(server.url, token(f"u{n}", "core")) for n in range(12)]

    async def create(peer: Peer, n: int) -> str:
        await peer.send(
            {
                "type": "board.create",
                "id": f"c{n}",
                "board": f"b{n}",
                "title": "t",
                "width": 5,
                "height": 5,
            }
        )
        reply = await peer.next(re=f"c{n}")
        return "created" if reply["type"] == "ack" and reply["applied"] else str(reply["code"])

    outcomes = await asyncio.gather(*(create(peer, n) for n, peer in enumerate(peers)))
    assert outcomes.count("created") == 5
    assert outcomes.count("quota_exceeded") == 7
    assert len(await server.store.list_boards("core")) == 5
    for peer in peers:
        await peer.close()


async def test_concurrent_sets_of_empty_cells_stop_at_the_cell_quota_exactly(
    start_server: StartServer,
) -> None:
    server = await start_server(max_cells_per_board=6, connect_burst=100)
    peers = [await Peer.join(server.url, token(f"u{n}", "core")) for n in range(16)]
    await create_board(peers[0], "plan", 20, 20)
    for peer in peers:
        await join_board(peer, "plan")

    async def fill(peer: Peer, n: int) -> str:
        op = f"o{n}"
        await peer.send(
            {
                "type": "cell.set",
                "board": "plan",
                "x": n,
                "y": 0,
                "value": "v",
                "op": op,
                "clock": 1,
            }
        )
        reply = await peer.next(re=op)
        return "applied" if reply["type"] == "ack" and reply["applied"] else str(reply["code"])

    outcomes = await asyncio.gather(*(fill(peer, n) for n, peer in enumerate(peers)))
    assert outcomes.count("applied") == 6
    assert outcomes.count("quota_exceeded") == 10
    room = server.rooms.get("core", "plan")
    assert room is not None
    assert room.cells.filled == 6
    for peer in peers:
        await peer.close()

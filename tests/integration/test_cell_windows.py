"""Cell events in windows on a real server: acks after their ops, joins neither miss
nor double an op that was waiting."""

from __future__ import annotations

from tests.conftest import StartServer, token
from tests.support.board import cell_events, create_board, join_board
from tests.support.peer import Message, Peer
from tests.support.waiting import eventually

WINDOW_S = 1.0  # long, so that what waits for the window's end is seen waiting
CELL_TYPES = ("cell.changed", "cells.changed")


async def on_plan(url: str, *users: str) -> list[Peer]:
    """`users` connected and on board "plan", which the first one creates."""
    peers = [await Peer.join(url, token(user, "core")) for user in users]
    await create_board(peers[0], "plan")
    for peer in peers:
        await join_board(peer, "plan")
    return peers


def edit(n: int) -> Message:
    return {"type": "cell.set", "board": "plan", "x": n, "y": 0, "value": f"v{n}", "op": f"o{n}"}


async def test_a_windows_ops_come_in_one_frame_each_ack_after_it(
    start_server: StartServer,
) -> None:
    server = await start_server(cursor_interval_s=WINDOW_S, cell_window_from=1)
    ada, bob = await on_plan(server.url, "ada", "bob")
    for n in (1, 2, 3):
        await ada.send({**edit(n), "clock": n})
    await ada.next("ack", re="o3", timeout=5)
    first = await bob.next(timeout=5)
    assert (first["type"], first["version"]) == ("cell.changed", 1)
    window = await bob.next("cells.changed", timeout=5)
    assert [c["version"] for c in window["cells"]] == [2, 3]
    assert [c["value"] for c in window["cells"]] == ["v2", "v3"]
    order = [m.get("re") or m["type"] for m in ada.log if m["type"] in ("ack", *CELL_TYPES)]
    assert order == ["create-plan", "cell.changed", "o1", "cells.changed", "o2", "o3"]
    await ada.close()
    await bob.close()


async def test_a_joiner_gets_the_waiting_ops_in_its_snapshot_and_never_again(
    start_server: StartServer,
) -> None:
    server = await start_server(cursor_interval_s=WINDOW_S, cell_window_from=1)
    ada, bob = await on_plan(server.url, "ada", "bob")
    carol = await Peer.join(server.url, token("carol", "core"))
    await ada.send({**edit(1), "clock": 1})  # at once: it starts the window
    await ada.send({**edit(2), "clock": 2})  # waits for the window's end
    room = server.rooms.get("core", "plan")
    assert room is not None
    await eventually(lambda: room.news.waiting == 1, 5, "op 2 waiting for the window")
    state = await join_board(carol, "plan")
    assert state["version"] == 2
    assert {c["value"] for c in state["cells"]} == {"v1", "v2"}
    await ada.next("ack", re="o2", timeout=5)  # the join sent the window early
    await ada.send({**edit(3), "clock": 3})
    await carol.next("cell.changed", timeout=5, version=3)
    assert [c["version"] for c in cell_events(carol.log)] == [3]
    assert [c["version"] for c in cell_events(bob.log)] == [1, 2, 3]
    for peer in (ada, bob, carol):
        await peer.close()


async def test_a_small_board_sends_each_op_at_once(start_server: StartServer) -> None:
    server = await start_server(cursor_interval_s=WINDOW_S)  # windows from 50 connections
    (ada,) = await on_plan(server.url, "ada")
    for n in (1, 2, 3):
        await ada.send({**edit(n), "clock": n})
        await ada.next("ack", re=f"o{n}", timeout=WINDOW_S / 2)  # no window to wait for
    assert [m["type"] for m in ada.log if m["type"] in CELL_TYPES] == ["cell.changed"] * 3
    await ada.close()

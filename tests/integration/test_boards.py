"""Boards, participants, colours and cursors over real sockets."""

from __future__ import annotations

import asyncio

from server.app import CollabServer
from server.boards import PALETTE
from tests.conftest import StartServer, token
from tests.support.board import create_board, join_board
from tests.support.peer import Peer
from tests.support.roster import next_entry
from tests.support.waiting import eventually


async def test_create_update_and_list_boards(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    ack = await create_board(alice, "plan", width=12, height=30)
    assert ack["applied"] is True
    created = await bob.next("board.created")
    assert created["board"] == {
        "id": "plan",
        "title": "Plan",
        "width": 12,
        "height": 30,
        "created_by": "alice",
        "version": 0,
    }
    again = await create_board(bob, "plan")
    assert again["applied"] is False  # the first creator's board stands

    await bob.send({"type": "board.update", "board": "plan", "title": "Roadmap", "id": "u"})
    await bob.next("ack", re="u")
    assert (await alice.next("board.updated"))["board"]["title"] == "Roadmap"

    carol = await Peer.join(server.url, token("carol", "core"))
    assert [(b["id"], b["title"]) for b in carol.welcome["boards"]] == [("plan", "Roadmap")]
    for peer in (alice, bob, carol):
        await peer.close()


async def test_board_without_id_gets_one(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    await alice.send({"type": "board.create", "title": "Scratch", "width": 3, "height": 3})
    created = await alice.next("board.created")
    assert created["board"]["id"].startswith("b-")
    state = await join_board(alice, created["board"]["id"])
    assert state["board"]["title"] == "Scratch"
    await alice.close()


async def test_first_twelve_participants_get_distinct_colours(server: CollabServer) -> None:
    owner = await Peer.join(server.url, token("u00", "core"))
    await create_board(owner, "plan")
    peers = [owner]
    for n in range(1, 12):
        peers.append(await Peer.join(server.url, token(f"u{n:02d}", "core")))
    colours = []
    for peer in peers:
        state = await join_board(peer, "plan")
        colours.append(state["participants"][-1]["color"])
    assert colours == list(PALETTE)
    thirteenth = await Peer.join(server.url, token("u12", "core"))
    state = await join_board(thirteenth, "plan")
    assert {p["user"]: p["color"] for p in state["participants"]}["u12"] == PALETTE[0]
    joined = await next_entry(owner, "joined", user="u12")
    assert joined["color"] == PALETTE[0]
    for peer in [*peers, thirteenth]:
        await peer.close()


async def test_colour_is_kept_on_rejoin_and_freed_on_leave(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core", "Alice"))
    bob = await Peer.join(server.url, token("bob", "core", "Bob"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    bob_state = await join_board(bob, "plan")
    bob_colour = {p["user"]: p["color"] for p in bob_state["participants"]}["bob"]
    assert bob_colour == PALETTE[1]

    await bob.send({"type": "board.leave", "board": "plan", "id": "l"})
    await bob.next("ack", re="l")
    left = await alice.next("participant.left", user="bob")
    assert (left["name"], left["color"]) == ("Bob", PALETTE[1])

    await bob.close()
    bob = await Peer.join(server.url, token("bob", "core", "Bob"))
    again = await join_board(bob, "plan")
    assert {p["user"]: p["color"] for p in again["participants"]}["bob"] == bob_colour
    await alice.close()
    await bob.close()


async def test_user_joined_twice_is_one_participant(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    bob_a = await Peer.join(server.url, token("bob", "core"))
    bob_b = await Peer.join(server.url, token("bob", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    await join_board(bob_a, "plan")
    state = await join_board(bob_b, "plan")
    assert sorted(p["user"] for p in state["participants"]) == ["alice", "bob"]
    await bob_a.close()
    await bob_b.send({"type": "cursor.move", "board": "plan", "x": 1, "y": 1})
    seen = await alice.next("cursors")
    assert seen["cursors"] == [{"user": "bob", "x": 1, "y": 1}]
    assert [m for m in alice.log if m["type"] == "participant.left"] == []
    await bob_b.close()
    await alice.next("participant.left", user="bob")
    await alice.close()


async def test_rapid_moves_are_coalesced_and_the_last_always_arrives(
    start_server: StartServer,
) -> None:
    server = await start_server(cursor_interval_s=0.05)
    mover = await Peer.join(server.url, token("mover", "core"))
    watcher = await Peer.join(server.url, token("watcher", "core"))
    await create_board(mover, "plan", width=60, height=5)
    await join_board(mover, "plan")
    await join_board(watcher, "plan")

    for x in range(60):
        await mover.send({"type": "cursor.move", "board": "plan", "x": x, "y": 2})
        await asyncio.sleep(0.002)
    frames = []
    while True:
        frame = await watcher.next("cursors", timeout=2)
        frames.append(frame)
        if {"user": "mover", "x": 59, "y": 2} in frame["cursors"]:
            break
    assert len(frames) < 20, f"60 moves became {len(frames)} frames"
    for frame in frames:
        assert len(frame["cursors"]) == 1  # only the users that moved, once each
    quiet = await watcher.drain(0.2)
    assert [m for m in quiet if m["type"] == "cursors"] == []  # nothing after the last
    assert server.rooms.get("core", "plan") is not None
    await mover.close()
    await watcher.close()


async def test_lone_move_after_quiet_goes_out_without_waiting_for_a_tick(
    start_server: StartServer,
) -> None:
    # A one-second window makes a trailing-edge throttle impossible to miss.
    server = await start_server(cursor_interval_s=1.0)
    mover = await Peer.join(server.url, token("mover", "core"))
    watcher = await Peer.join(server.url, token("watcher", "core"))
    await create_board(mover, "plan")
    await join_board(mover, "plan")
    await join_board(watcher, "plan")
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await mover.send({"type": "cursor.move", "board": "plan", "x": 4, "y": 5})
    frame = await watcher.next("cursors")
    assert loop.time() - sent < 0.5
    assert frame["cursors"] == [{"user": "mover", "x": 4, "y": 5}]
    # A second move inside the window waits for the window's end.
    await mover.send({"type": "cursor.move", "board": "plan", "x": 5, "y": 5})
    assert [m for m in await watcher.drain(0.3) if m["type"] == "cursors"] == []
    frame = await watcher.next("cursors", timeout=2)
    assert frame["cursors"] == [{"user": "mover", "x": 5, "y": 5}]
    await mover.close()
    await watcher.close()


async def test_joiner_sees_current_cursors_and_typing_reaches_others(
    server: CollabServer,
) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    await alice.send({"type": "cursor.move", "board": "plan", "x": 2, "y": 3})
    await alice.next("cursors")
    state = await join_board(bob, "plan")
    assert state["cursors"] == [{"user": "alice", "x": 2, "y": 3}]

    await alice.send({"type": "typing", "board": "plan", "x": 2, "y": 3, "active": True})
    typing = await bob.next("typing")
    assert typing == {
        "type": "typing",
        "board": "plan",
        "user": "alice",
        "x": 2,
        "y": 3,
        "active": True,
    }
    assert [m for m in await alice.drain(0.1) if m["type"] == "typing"] == []
    await alice.close()
    left = await bob.next("participant.left", user="alice")
    assert left["board"] == "plan"
    await bob.close()


async def test_colour_and_version_outlive_an_empty_room(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    state = await join_board(bob, "plan")
    bob_colour = {p["user"]: p["color"] for p in state["participants"]}["bob"]
    await bob.send(
        {"type": "cell.set", "board": "plan", "x": 0, "y": 0, "value": "v", "op": "o1", "clock": 1}
    )
    await bob.next("ack", re="o1")
    await alice.close()
    await bob.close()
    await eventually(  # the server notices both closes a moment later
        lambda: server.rooms.get("core", "plan") is None, 2, "the room is gone"
    )

    carol = await Peer.join(server.url, token("carol", "core"))
    assert [b["version"] for b in carol.welcome["boards"]] == [1]
    await join_board(carol, "plan")
    bob = await Peer.join(server.url, token("bob", "core"))
    state = await join_board(bob, "plan")
    assert {p["user"]: p["color"] for p in state["participants"]}["bob"] == bob_colour
    await bob.close()
    await carol.close()

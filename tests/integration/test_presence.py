"""Presence over real sockets: online, status, offline, several connections, isolation."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from server.app import CollabServer
from tests.conftest import StartServer, token
from tests.support.peer import Peer
from tests.support.proxy import Proxy
from tests.support.roster import next_entry


async def test_teammates_see_each_others_status_activity_and_offline(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core", "Alice"))
    bob = await Peer.join(server.url, token("bob", "core", "Bob"))
    assert {m["user"]: m["status"] for m in bob.welcome["members"]} == {
        "alice": "online",
        "bob": "online",
    }
    joined = await next_entry(alice, "presence", user="bob")
    assert (joined["status"], joined["name"], joined["connections"]) == ("online", "Bob", 1)

    await bob.send(
        {
            "type": "presence.set",
            "status": "busy",
            "activity": {"kind": "editing", "board": "plan", "detail": "Q3 budget"},
        }
    )
    busy = await next_entry(alice, "presence", user="bob")
    assert busy["status"] == "busy"
    assert busy["activity"] == {"kind": "editing", "board": "plan", "detail": "Q3 budget"}

    await bob.send({"type": "presence.set", "activity": None})
    cleared = await next_entry(alice, "presence", user="bob")
    assert (cleared["status"], "activity" in cleared) == ("busy", False)

    await bob.close()
    gone = await next_entry(alice, "presence", user="bob")
    assert gone["status"] == "offline"
    assert gone["connections"] == 0
    assert "activity" not in gone
    last_seen = datetime.fromisoformat(gone["last_seen"])
    assert last_seen.tzinfo is not None
    assert (datetime.now(last_seen.tzinfo) - last_seen).total_seconds() < 5
    await alice.close()


async def test_user_with_two_connections_stays_online_when_one_closes(
    server: CollabServer,
) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    bob_laptop = await Peer.join(server.url, token("bob", "core"))
    bob_desktop = await Peer.join(server.url, token("bob", "core"))
    assert (await next_entry(alice, "presence", user="bob", connections=2))["status"] == "online"

    await bob_desktop.send({"type": "presence.set", "status": "away"})
    await next_entry(alice, "presence", user="bob", status="away")
    # The chosen status sticks across the user's connections.
    await bob_laptop.send({"type": "presence.query", "user": "bob", "id": "q1"})
    snapshot = await bob_laptop.next("presence.snapshot", re="q1")
    assert [m["status"] for m in snapshot["members"]] == ["away"]

    await bob_desktop.close()
    still = await next_entry(alice, "presence", user="bob")
    assert (still["status"], still["connections"]) == ("away", 1)
    await bob_laptop.close()
    assert (await next_entry(alice, "presence", user="bob"))["status"] == "offline"
    await alice.close()


async def test_lost_connection_goes_offline_only_after_grace(start_server: StartServer) -> None:
    server = await start_server(offline_grace_s=0.5)
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    await next_entry(alice, "presence", user="bob", status="online")

    loop = asyncio.get_running_loop()
    lost_at = loop.time()
    bob.abort()
    offline = await next_entry(alice, "presence", user="bob", status="offline", timeout=5)
    waited = loop.time() - lost_at
    assert waited >= 0.45, f"offline after {waited:.2f}s, before the 0.5 s grace"
    assert offline["last_seen"]
    await alice.close()


async def test_blip_shorter_than_grace_is_invisible(start_server: StartServer) -> None:
    server = await start_server(offline_grace_s=2.0)
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    await next_entry(alice, "presence", user="bob", status="online")
    bob.abort()
    await asyncio.sleep(0.2)  # the point: a blip of this length, shorter than the grace
    bob_again = await Peer.join(server.url, token("bob", "core"))
    heard = await alice.drain(0.5)
    assert [m for m in heard if m.get("user") == "bob"] == []
    await bob_again.close()
    await alice.close()


async def test_silent_peer_is_detected_by_ping_then_grace(start_server: StartServer) -> None:
    server = await start_server(ping_interval_s=0.2, ping_timeout_s=0.2, offline_grace_s=0.3)
    proxy = Proxy("127.0.0.1", server.port)
    await proxy.start()
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(proxy.url(), token("bob", "core"))
    await next_entry(alice, "presence", user="bob", status="online")

    loop = asyncio.get_running_loop()
    frozen_at = loop.time()
    proxy.freeze()  # no close frame, no RST: only the missing pongs tell
    await next_entry(alice, "presence", user="bob", status="offline", timeout=5)
    waited = loop.time() - frozen_at
    assert 0.5 <= waited <= 2.5, f"offline after {waited:.2f}s"
    bob.abort()
    await proxy.close()
    await alice.close()


async def test_restart_marks_everyone_offline_and_keeps_last_seen(
    start_server: StartServer,
) -> None:
    first = await start_server()
    alice = await Peer.join(first.url, token("alice", "core"))
    bob = await Peer.join(first.url, token("bob", "core"))
    await bob.send({"type": "presence.set", "status": "busy"})
    await next_entry(alice, "presence", user="bob", status="busy")
    await first.stop()  # both still connected: the server goes away under them
    await alice.closed()
    await bob.closed()

    second = await start_server()
    carol = await Peer.join(second.url, token("carol", "core"))
    members = {m["user"]: m for m in carol.welcome["members"]}
    assert members["alice"]["status"] == "offline"
    assert members["bob"]["status"] == "offline"
    assert members["bob"]["last_seen"]
    assert members["carol"]["status"] == "online"
    await carol.close()


async def test_crash_leaves_no_ghost_online(start_server: StartServer, tmp_path: Path) -> None:
    """A store left with online rows (as after SIGKILL) reads all offline after restart."""
    first = await start_server()
    alice = await Peer.join(first.url, token("alice", "core"))
    # Simulate a crash: the store never hears that alice left.
    await first.store.close()
    alice.abort()
    first._server.close()  # type: ignore[union-attr]
    await first._server.wait_closed()  # type: ignore[union-attr]
    first._server = None

    second = await start_server()
    bob = await Peer.join(second.url, token("bob", "core"))
    members = {m["user"]: m["status"] for m in bob.welcome["members"]}
    assert members == {"alice": "offline", "bob": "online"}
    await bob.close()


async def test_other_team_hears_nothing_of_this_team(server: CollabServer) -> None:
    eve = await Peer.join(server.url, token("eve", "rivals"))
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    for peer in (alice, bob):
        await peer.send(
            {
                "type": "board.create",
                "board": "plan",
                "title": "Plan",
                "width": 8,
                "height": 8,
                "id": "c",
            }
        )
        await peer.next("ack", re="c")
        await peer.send({"type": "board.join", "board": "plan", "id": "j"})
        await peer.next("board.state", re="j")
    await alice.send(
        {
            "type": "presence.set",
            "status": "busy",
            "activity": {"kind": "editing", "detail": "secret plans"},
        }
    )
    await alice.send({"type": "cursor.move", "board": "plan", "x": 3, "y": 4})
    await alice.send({"type": "typing", "board": "plan", "x": 3, "y": 4, "active": True})
    await alice.send(
        {
            "type": "cell.set",
            "board": "plan",
            "x": 3,
            "y": 4,
            "value": "launch code",
            "op": "o-1",
            "clock": 1,
        }
    )
    await alice.send({"type": "board.update", "board": "plan", "title": "Secret"})
    await bob.next("cell.changed")
    await bob.next("board.updated")
    await bob.close()
    await alice.close()

    # Eve's own board of the same name is a different board.
    await eve.send({"type": "board.join", "board": "plan", "id": "e"})
    assert (await eve.next("error", re="e"))["code"] == "not_found"
    await eve.send({"type": "presence.query", "id": "q"})
    snapshot = await eve.next("presence.snapshot", re="q")
    assert [m["user"] for m in snapshot["members"]] == ["eve"]
    received = eve.log
    await eve.close()
    text = repr(received)
    for leaked in ("alice", "bob", "secret plans", "launch code", "Secret", "cell.changed"):
        assert leaked not in text, f"team rivals received {leaked!r}: {received}"
    assert {m["type"] for m in received} <= {
        "welcome",
        "presence",
        "presence.batch",
        "presence.snapshot",
        "error",
    }

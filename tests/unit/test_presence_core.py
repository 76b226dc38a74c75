"""Presence with recording peers and a real SQLite store: no sockets."""

from __future__ import annotations

from pathlib import Path

from tests.support.waiting import eventually
from tests.unit.server_core import Core


async def test_a_connection_brings_a_user_online_for_the_whole_team(tmp_path: Path) -> None:
    async with Core(tmp_path) as core:
        _, ada_peer = await core.connect("ada")
        _, bob_peer = await core.connect("bob")
        # Announced before the session is registered: its own `welcome` says it.
        assert [(f["user"], f["status"]) for f in ada_peer.frames] == [("bob", "online")]
        assert bob_peer.frames == []
        assert {m.user: m.status for m in core.presence.members("core")} == {
            "ada": "online",
            "bob": "online",
        }
        assert core.presence.online_count() == 2


async def test_a_second_connection_keeps_the_user_online_until_both_end(tmp_path: Path) -> None:
    async with Core(tmp_path) as core:
        first, _ = await core.connect("ada")
        second, _ = await core.connect("ada")
        _, bob_peer = await core.connect("bob")
        member = core.presence.member("core", "ada")
        assert member is not None
        assert member.connections == 2
        core.disconnect(first)
        assert [f["connections"] for f in bob_peer.take()] == [1]
        core.disconnect(second)
        [offline] = bob_peer.take()
        assert (offline["user"], offline["status"]) == ("ada", "offline")
        assert offline["last_seen"] is not None


async def test_a_status_set_reaches_the_team_and_a_lost_connection_waits_for_grace(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path, offline_grace_s=0.05) as core:
        ada, _ = await core.connect("ada")
        _, bob_peer = await core.connect("bob")
        bob_peer.take()
        await core.send(ada, {"type": "presence.set", "id": "p", "status": "busy"})
        assert [(f["user"], f["status"]) for f in bob_peer.take()] == [("ada", "busy")]
        core.disconnect(ada, clean=False)
        assert bob_peer.take() == []  # still online during the grace period
        await eventually(lambda: bob_peer.frames, timeout=2, what="the grace period to end")
        assert [(f["user"], f["status"]) for f in bob_peer.take()] == [("ada", "offline")]


async def test_presence_is_stored_so_a_later_node_lists_offline_members(tmp_path: Path) -> None:
    async with Core(tmp_path) as core:
        ada, _ = await core.connect("ada")
        core.disconnect(ada)
    async with Core(tmp_path) as later:
        await later.presence.ensure_team("core")
        [member] = later.presence.members("core")
        assert (member.user, member.status) == ("ada", "offline")

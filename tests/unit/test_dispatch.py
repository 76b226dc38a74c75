"""The dispatcher with recording peers and a real SQLite store: no sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.auth import mint_token
from tests.unit.server_core import SECRET, Core
from tui_collab.protocol import CloseCode


def _create(board: str = "plan", width: int = 4, height: int = 3) -> dict[str, Any]:
    return {"type": "board.create", "id": "r1", "board": board, "title": "Plan",
            "width": width, "height": height}  # fmt: skip


def _set(x: int, y: int, value: str, op: str, clock: int = 1) -> dict[str, Any]:
    return {"type": "cell.set", "board": "plan", "x": x, "y": y, "value": value,
            "op": op, "clock": clock}  # fmt: skip


async def test_a_created_board_is_acked_and_announced_to_the_team_only(tmp_path: Path) -> None:
    async with Core(tmp_path) as core:
        ada, ada_peer = await core.connect("ada")
        _, bob_peer = await core.connect("bob")
        _, eve_peer = await core.connect("eve", team="rivals")
        for peer in (ada_peer, bob_peer, eve_peer):
            peer.take()
        await core.send(ada, _create())
        assert ada_peer.types() == ["board.created", "ack"]
        assert ada_peer.frames[1] == {"type": "ack", "re": "r1", "version": 0, "applied": True}
        assert bob_peer.types() == ["board.created"]
        board = bob_peer.frames[0]["board"]
        assert (board["id"], board["width"], board["height"]) == ("plan", 4, 3)
        assert eve_peer.frames == []
        assert [b.id for b in await core.store.list_boards("core")] == ["plan"]
        await core.send(ada, _create())  # the same id again: acked, not applied
        assert ada_peer.frames[2:] == [{"type": "ack", "re": "r1", "applied": False}]


async def test_a_cell_set_is_stored_acked_and_sent_to_the_boards_participants(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path) as core:
        ada, ada_peer = await core.connect("ada")
        bob, bob_peer = await core.connect("bob")
        await core.send(ada, _create())
        for session in (ada, bob):
            await core.send(session, {"type": "board.join", "id": "j", "board": "plan"})
        state = [f for f in bob_peer.take() if f["type"] == "board.state"]
        assert state[0]["complete"] is True
        assert state[0]["re"] == "j"
        ada_peer.take()
        await core.send(ada, _set(1, 2, "hi", "op-1"))
        acks = [f for f in ada_peer.take() if f["type"] == "ack"]
        assert acks == [{"type": "ack", "re": "op-1", "version": 1, "applied": True}]
        changed = [f for f in bob_peer.take() if f["type"] == "cell.changed"]
        assert len(changed) == 1
        assert changed[0]["board"] == "plan"
        stored = await core.store.load_cells("core", "plan", 0)
        assert [(op.x, op.y, op.value, op.by) for op in stored] == [(1, 2, "hi", "ada")]


async def test_cells_outside_the_board_and_on_boards_not_joined_are_refused(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path) as core:
        ada, peer = await core.connect("ada")
        await core.send(ada, _create(width=4, height=3))
        await core.send(ada, _set(0, 0, "x", "op-a"))
        await core.send(ada, {"type": "board.join", "id": "j", "board": "plan"})
        await core.send(ada, _set(4, 0, "x", "op-b"))
        errors = [(f["code"], f.get("re")) for f in peer.frames if f["type"] == "error"]
        assert errors == [("forbidden", "op-a"), ("bad_request", "op-b")]


async def test_the_team_board_quota_holds(tmp_path: Path) -> None:
    async with Core(tmp_path, max_boards_per_team=1) as core:
        ada, peer = await core.connect("ada")
        await core.send(ada, _create("one"))
        await core.send(ada, _create("two"))
        errors = [f["code"] for f in peer.frames if f["type"] == "error"]
        assert errors == ["quota_exceeded"]
        assert [b.id for b in await core.store.list_boards("core")] == ["one"]


async def test_malformed_frames_get_errors_and_then_close_the_connection(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path, malformed_close_after=3, burst=1000, rate_per_s=1000) as core:
        ada, peer = await core.connect("ada")
        peer.take()
        for _ in range(3):
            await core.send(ada, "{not json")
        assert [f["code"] for f in peer.frames] == ["bad_request"] * 3
        assert peer.ended == (CloseCode.POLICY_VIOLATION, "repeated malformed input")
        assert ada.closing
        await core.send(ada, {"type": "presence.query", "id": "q"})
        assert len(peer.frames) == 3  # read and dropped once closing


async def test_a_flood_is_answered_once_a_second_then_closed(tmp_path: Path) -> None:
    async with Core(tmp_path, rate_per_s=1, burst=2, flood_close_after_s=2) as core:
        ada, peer = await core.connect("ada")
        peer.take()
        query = {"type": "presence.query", "id": "q"}
        for _ in range(4):
            await core.send(ada, query)
        assert peer.types() == ["presence.snapshot", "presence.snapshot", "error"]
        assert peer.frames[-1]["code"] == "rate_limited"
        assert peer.ended is None
        for _ in range(5):  # over the limit, never a second's pause, for 2.5 s
            core.clock.advance(0.5)
            await core.send(ada, query)
            await core.send(ada, query)
        assert peer.ended == (CloseCode.RATE_LIMITED, "rate limit exceeded")


async def test_auth_refresh_takes_a_token_for_the_same_user_and_refuses_others(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path) as core:
        ada, peer = await core.connect("ada")
        peer.take()
        good = mint_token(SECRET, "ada", "core", "Ada", 3600)
        await core.send(ada, {"type": "auth.refresh", "id": "a1", "token": good})
        assert peer.take() == [{"type": "ack", "re": "a1"}]
        assert ada.identity.expires_at is not None
        other = mint_token(SECRET, "bob", "core", None, 3600)
        await core.send(ada, {"type": "auth.refresh", "id": "a2", "token": other})
        assert [f["code"] for f in peer.frames] == ["unauthorized"]
        assert peer.ended == (CloseCode.AUTH_FAILED, "token is for another user or team")
        ada.forget()

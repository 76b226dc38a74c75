"""What a node does with other nodes' news, on the core alone: no Redis, no sockets."""

from __future__ import annotations

from pathlib import Path

from server.cluster_sync import ClusterSync
from server.store.base import BoardRecord
from server.wire import CellEvent
from tests.unit.server_core import Core
from tui_collab.cells import CellOp
from tui_collab.protocol import BoardCreated, BoardMeta, encode


async def test_a_board_made_on_another_node_reaches_the_team_and_the_directory(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path) as core:
        sync = ClusterSync(core.ctx)
        _, peer = await core.connect("ada")
        assert await core.boards.metas("core") == []
        meta = BoardMeta(id="far", title="Far", width=5, height=2, created_by="bob")
        sync.on_team_frame("core", encode(BoardCreated(board=meta)))
        assert peer.types() == ["board.created"]
        assert await core.boards.metas("core") == [meta]
        sync.on_team_frame("rivals", encode(BoardCreated(board=meta)))
        assert len(peer.frames) == 1  # another team's news is not ours


async def test_a_cell_event_from_another_node_reaches_the_boards_participants(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path) as core:
        sync = ClusterSync(core.ctx)
        await core.store.create_board(BoardRecord("core", "plan", "Plan", 4, 4, "ada"))
        ada, peer = await core.connect("ada")
        await core.send(ada, {"type": "board.join", "id": "j", "board": "plan"})
        peer.take()
        op = CellOp(2, 3, "far", 1, "c-bob", "bob", 1)
        sync.on_cell_event("core", "plan", CellEvent("n-other", 1, op))
        [changed] = peer.take()
        assert changed["type"] == "cell.changed"
        assert (changed["x"], changed["y"], changed["value"]) == (2, 3, "far")
        sync.on_cell_event("core", "plan", CellEvent("n-other", 1, op))  # seen already
        assert peer.frames == []
        sync.on_cell_event("core", "closed", CellEvent("n-other", 1, op))  # no room here
        assert peer.frames == []

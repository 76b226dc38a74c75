"""`cell.history` over real sockets: newest first, bounded, with server time, durable."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from server.app import CollabServer
from server.store.migrations import MIGRATIONS
from server.store.sqlite import DB_FILE
from tests.conftest import StartServer, token
from tests.support.batch import edit, send_batch
from tests.support.board import create_board, join_board
from tests.support.peer import Message, Peer
from tui_collab.protocol import HISTORY_PER_CELL


async def _history(peer: Peer, x: int, y: int, id_: str = "h", board: str = "plan") -> Message:
    await peer.send({"type": "cell.history", "id": id_, "board": board, "x": x, "y": y})
    return await peer.next(re=id_)


async def test_history_is_the_newest_50_ops_newest_first_and_survives_a_restart(
    start_server: StartServer,
) -> None:
    server = await start_server()
    alice = await Peer.join(server.url, token("alice", "core"), client_id="c-alice")
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    # 59 ops in one batch and one more by cell.set: both paths keep history.
    await send_batch(alice, "b1", [edit(2, 3, f"v{n}", n + 1) for n in range(59)])
    await alice.send(
        {
            "type": "cell.set",
            "board": "plan",
            "x": 2,
            "y": 3,
            "value": "v59",
            "op": "o",
            "clock": 60,
        }
    )
    await alice.next("ack", re="o")
    await send_batch(alice, "b2", [edit(0, 0, "elsewhere", 61)])

    reply = await _history(alice, 2, 3)
    assert reply["type"] == "cell.history"
    assert (reply["board"], reply["x"], reply["y"]) == ("plan", 2, 3)
    entries = reply["entries"]
    assert len(entries) == HISTORY_PER_CELL
    assert [e["value"] for e in entries] == [f"v{n}" for n in range(59, 9, -1)]
    assert [e["version"] for e in entries] == list(range(60, 10, -1))
    assert {(e["client"], e["by"]) for e in entries} == {("c-alice", "alice")}
    times = [datetime.fromisoformat(e["at"]) for e in entries]
    assert times == sorted(times, reverse=True)
    await alice.close()
    await server.stop()

    again = await start_server()
    bob = await Peer.join(again.url, token("bob", "core"))  # not joined: history needs none
    assert (await _history(bob, 2, 3))["entries"] == entries
    assert [e["value"] for e in (await _history(bob, 0, 0, "h2"))["entries"]] == ["elsewhere"]
    assert (await _history(bob, 5, 5, "h3"))["entries"] == []


async def test_history_refuses_cells_off_the_board_and_other_teams(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    rival = await Peer.join(server.url, token("eve", "rivals"))
    await create_board(alice, "plan")
    outside = await _history(alice, 3, 10)
    assert outside["type"] == "error"
    assert outside["code"] == "bad_request"
    assert outside["message"] == "cell (3, 10) is outside the 10x10 board"
    for peer, board in ((rival, "plan"), (alice, "nope")):
        error = await _history(peer, 0, 0, board=board)
        assert (error["type"], error["code"]) == ("error", "not_found")


def test_the_kept_history_is_the_protocol_s_bound() -> None:
    """Migration 5's triggers write the bound out; it must be the one the protocol promises."""
    triggers = [s for s in MIGRATIONS[4] if s.startswith("CREATE TRIGGER cells_history")]
    assert len(triggers) == 2
    assert all(f"OFFSET {HISTORY_PER_CELL})" in t for t in triggers)


async def test_cells_stored_before_schema_5_have_no_time_and_no_history(
    start_server: StartServer, tmp_path: Path
) -> None:
    data = tmp_path / "old"
    data.mkdir(mode=0o700)
    with sqlite3.connect(data / DB_FILE) as db:
        for step in MIGRATIONS[:4]:
            for statement in step:
                db.execute(statement)
        db.execute("PRAGMA user_version=4")
        db.execute("INSERT INTO teams VALUES ('core', '2026-01-01T00:00:00+00:00')")
        db.execute(
            "INSERT INTO boards VALUES ('core', 'plan', 'Plan', 10, 10, 'ada', 0, "
            "'2026-01-01T00:00:00+00:00')"
        )
        db.execute(
            "INSERT INTO cells VALUES ('core', 'plan', 1, 1, 'old', 1, 'c-ada', 'ada', 1, "
            "'2026-01-01T00:00:00+00:00')"
        )
    server = await start_server(data)
    alice = await Peer.join(server.url, token("alice", "core"), client_id="c-alice")
    (cell,) = (await join_board(alice, "plan"))["cells"]
    assert cell["value"] == "old"
    assert "at" not in cell
    assert (await _history(alice, 1, 1))["entries"] == []
    await send_batch(alice, "b1", [edit(1, 1, "new", 2)])
    (entry,) = (await _history(alice, 1, 1, "h2"))["entries"]
    assert entry["value"] == "new"
    assert "at" in entry

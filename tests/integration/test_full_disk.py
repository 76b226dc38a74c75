"""A full disk: every edit that could not be stored is refused (never acked), and the log
gets one line for the lot, not a traceback per edit.

The database is capped with `PRAGMA max_page_count` on the writer's connection, which
makes SQLite fail exactly as on a full disk (SQLITE_FULL, "database or disk is full").
"""

from __future__ import annotations

import logging
import sqlite3

import pytest

from server.app import CollabServer
from server.store.sqlite import SQLiteStore
from tests.conftest import token
from tests.support.board import create_board, join_board
from tests.support.peer import Peer

EDITS = 120


async def test_a_full_disk_refuses_edits_with_one_log_line(
    server: CollabServer, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await Peer.join(server.url, token("alice", "core"))
    await create_board(peer, "plan", width=100, height=100)
    await join_board(peer, "plan")
    store = server.store
    assert isinstance(store, SQLiteStore)

    def fill_the_disk(db: sqlite3.Connection) -> None:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")

    await store._require_writer().call(fill_the_disk)
    caplog.clear()
    caplog.set_level(logging.INFO)
    for n in range(EDITS):
        await peer.send(
            {
                "type": "cell.set",
                "board": "plan",
                "x": n % 100,
                "y": n // 100,
                "value": f"{n:03d}" + "x" * 250,
                "op": f"op-{n}",
                "clock": 1,
            }
        )
    replies = {}
    for _ in range(EDITS):
        reply = await peer.next(None, timeout=10)
        while reply.get("type") not in ("ack", "error"):
            reply = await peer.next(None, timeout=10)
        replies[reply["re"]] = reply
    refused = [re for re, reply in replies.items() if reply["type"] == "error"]
    acked = [re for re, reply in replies.items() if reply["type"] == "ack"]
    assert len(replies) == EDITS
    assert len(refused) >= EDITS // 2  # a few may fit in the pages already there
    assert all(replies[re]["code"] == "internal" for re in refused)

    stored = {op.value[:3] for op in await store.load_cells("core", "plan")}
    assert stored == {re.removeprefix("op-").zfill(3) for re in acked}  # no false ack

    lines = [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("server")]
    assert [r.getMessage() for r in lines] == [
        "store write failed: OperationalError: database or disk is full"
    ]
    assert lines[0].exc_info is None
    await peer.close()

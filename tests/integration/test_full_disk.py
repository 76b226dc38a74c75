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


async def test_presence_and_session_writes_on_a_full_disk_log_no_tracebacks(
    server: CollabServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = server.store
    assert isinstance(store, SQLiteStore)

    def fill_the_disk(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE filler (blob BLOB)")
        db.commit()
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
        while True:  # use up every free page, so the smallest write fails too
            try:
                db.execute("INSERT INTO filler VALUES (zeroblob(512))")
                db.commit()
            except sqlite3.OperationalError:
                db.rollback()
                return

    await store._require_writer().call(fill_the_disk)
    caplog.set_level(logging.INFO)
    caplog.clear()
    alice = await Peer.join(server.url, token("alice", "core"))
    for n in range(150):  # each arrival and status change is a presence (and session) write
        bob = await Peer.join(server.url, token(f"bob{n}", "core"))
        await bob.send({"type": "presence.set", "status": "busy", "id": "p"})
        await bob.next("ack")
        await bob.close()
    await alice.send({"type": "presence.query", "id": "q"})  # every write was tried by now
    await alice.next("presence.snapshot")
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert failures, "the full disk was never noticed"
    assert all(r.exc_info is None for r in failures)
    assert len(failures) <= 3  # one per kind (edit writer, background writes), not per write
    await alice.close()

"""The notes log and snapshot in the SQLite store's file (tables of migration 6)."""

from __future__ import annotations

import sqlite3
import time

from server.store.notes_base import StoredNotes
from server.store.sqlite import SQLiteStore


class SQLiteNotes:
    """Notes in the SQLite store's file (tables of migration 6), through its writer."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def load_notes(self, team: str, board: str) -> StoredNotes:
        reader = self._store.reader
        async with reader.execute(
            "SELECT data FROM notes_snapshots WHERE team = ? AND board = ?", (team, board)
        ) as cursor:
            row = await cursor.fetchone()
        async with reader.execute(
            "SELECT data FROM notes_log WHERE team = ? AND board = ? ORDER BY seq", (team, board)
        ) as cursor:
            rows = await cursor.fetchall()
        return StoredNotes(None if row is None else bytes(row[0]), [bytes(r[0]) for r in rows])

    async def append_notes(self, team: str, board: str, update: bytes, by: str) -> int:
        at = time.time_ns() // 1_000_000

        def job(db: sqlite3.Connection) -> int:
            db.execute(
                "INSERT INTO notes_log (team, board, data, author, at) VALUES (?, ?, ?, ?, ?)",
                (team, board, update, by, at),
            )
            row = db.execute(
                "SELECT count(*) FROM notes_log WHERE team = ? AND board = ?", (team, board)
            ).fetchone()
            return int(row[0])

        count: int = await self._store.writer.submit(job)
        return count

    async def compact_notes(self, team: str, board: str) -> bool:
        def job(db: sqlite3.Connection) -> bool:
            # In the writer's transaction: nothing is appended between the read and the
            # delete, and a failure leaves snapshot and log as they were.
            row = db.execute(
                "SELECT data FROM notes_snapshots WHERE team = ? AND board = ?", (team, board)
            ).fetchone()
            rows = db.execute(
                "SELECT seq, data FROM notes_log WHERE team = ? AND board = ? ORDER BY seq",
                (team, board),
            ).fetchall()
            if not rows:
                return False
            stored = StoredNotes(
                None if row is None else bytes(row[0]), [bytes(r[1]) for r in rows]
            )
            snapshot, waiting = stored.compacted()
            db.execute(
                """INSERT INTO notes_snapshots (team, board, data) VALUES (?, ?, ?)
                   ON CONFLICT (team, board) DO UPDATE SET data = excluded.data""",
                (team, board, snapshot),
            )
            db.execute(
                "DELETE FROM notes_log WHERE team = ? AND board = ? AND seq <= ?",
                (team, board, rows[-1][0]),
            )
            at = time.time_ns() // 1_000_000
            db.executemany(
                "INSERT INTO notes_log (team, board, data, author, at) VALUES (?, ?, ?, '', ?)",
                [(team, board, update, at) for update in waiting],
            )
            return True

        done: bool = await self._store.writer.submit(job)
        return done

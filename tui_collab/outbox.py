"""The durable outbox: edits not yet acknowledged, kept on disk until the server has them.

An edit is written here before it is shown as pending, and removed when the server
acknowledges (or refuses) it, so an app that quits, crashes or is killed with SIGKILL
sends it on its next start. One SQLite file holds the outboxes of every server and
user of this installation, each under its own key; it also keeps a stable client id
per key, so a re-sent edit is byte for byte the edit first sent (the server's LWW
tie-break uses the client id, and an edit that did land is then a no-op).

Writes are small and synchronous: a person makes a few edits a second at most, and a
write that returns has reached the operating system (WAL, synchronous=NORMAL), which is
what surviving a killed process needs.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from tui_collab.private_files import create_private_file, make_private_dir
from tui_collab.protocol import CellSet

logger = logging.getLogger(__name__)

FILE_NAME: Final = "outbox.sqlite3"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS ops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    op TEXT NOT NULL,
    frame TEXT NOT NULL,
    UNIQUE (key, op)
);
CREATE TABLE IF NOT EXISTS clients (
    key TEXT PRIMARY KEY,
    client_id TEXT NOT NULL
);
"""


def outbox_key(server: str, team: str, user: str) -> str:
    """One outbox per server and user: edits go back only where they were made."""
    digest = hashlib.sha256(f"{server}\n{team}\n{user}".encode()).hexdigest()
    return digest[:32]


class OutboxError(Exception):
    """The outbox file cannot be opened or written (a read-only or full disk)."""


class Outbox:
    """Edits of one server and user that the server has not acknowledged yet."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key
        try:
            make_private_dir(path.parent)
            create_private_file(path)  # 0600, and so its -wal and -shm files
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=2000")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open the outbox {path}: {exc}") from exc

    @classmethod
    def in_dir(cls, data_dir: Path, server: str, team: str, user: str) -> Outbox:
        return cls(data_dir / FILE_NAME, outbox_key(server, team, user))

    def client_id(self) -> str:
        """This installation's client id for the key, made once and kept."""
        row = self._db.execute(
            "SELECT client_id FROM clients WHERE key = ?", (self.key,)
        ).fetchone()
        if row is not None:
            return str(row[0])
        client_id = f"c-{secrets.token_hex(8)}"
        self._write(
            "INSERT OR IGNORE INTO clients (key, client_id) VALUES (?, ?)", (self.key, client_id)
        )
        return self.client_id()

    def load(self) -> list[CellSet]:
        """Every kept edit, oldest first; a row that no longer parses is dropped and logged."""
        rows = self._db.execute(
            "SELECT op, frame FROM ops WHERE key = ? ORDER BY seq", (self.key,)
        ).fetchall()
        ops: list[CellSet] = []
        for op_id, frame in rows:
            try:
                ops.append(CellSet.model_validate_json(frame))
            except ValueError:
                logger.warning("dropping unreadable outbox entry %s", op_id)
                self.remove(op_id)
        return ops

    def add(self, op: CellSet) -> None:
        self._write(
            "INSERT OR REPLACE INTO ops (key, op, frame) VALUES (?, ?, ?)",
            (self.key, op.op, op.model_dump_json(exclude_none=True)),
        )

    def add_many(self, ops: Iterable[CellSet]) -> None:
        """Keep a pasted block in one transaction: one write for a thousand edits."""
        rows = [(self.key, op.op, op.model_dump_json(exclude_none=True)) for op in ops]
        self._write_many("INSERT OR REPLACE INTO ops (key, op, frame) VALUES (?, ?, ?)", rows)

    def remove(self, op_id: str) -> None:
        self._write("DELETE FROM ops WHERE key = ? AND op = ?", (self.key, op_id))

    def remove_many(self, op_ids: Iterable[str]) -> None:
        """Forget a batch's edits in one transaction, once its ack settled them all."""
        rows = [(self.key, op_id) for op_id in op_ids]
        self._write_many("DELETE FROM ops WHERE key = ? AND op = ?", rows)

    def clear(self) -> None:
        self._write("DELETE FROM ops WHERE key = ?", (self.key,))

    def count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM ops WHERE key = ?", (self.key,)).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, params: tuple[str, ...]) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot write the outbox {self.path}: {exc}") from exc

    def _write_many(self, sql: str, rows: Sequence[tuple[str, ...]]) -> None:
        if not rows:
            return
        try:
            with self._db:  # one transaction: committed, or rolled back on failure
                self._db.execute("BEGIN")
                self._db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot write the outbox {self.path}: {exc}") from exc

"""The embedded store: one SQLite file in WAL mode, written by one group-commit thread.

Durability contract: an `ack` is sent only after the COMMIT that holds the op returned.
With `durability="normal"` (synchronous=NORMAL) committed data survives a crash of the
process; with `"full"` (synchronous=FULL) it also survives power loss or an OS crash,
at the cost of one fsync per group.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiosqlite

from server.startup import StartupError, cannot_open_database, check_data_dir, check_database
from server.store.base import (
    AliveMark,
    AppliedOp,
    BoardRecord,
    PresenceRecord,
    SessionRetention,
)
from server.store.group_commit import GroupCommitWriter
from server.store.migrations import HISTORY_KEPT, LATEST, MIGRATIONS
from tui_collab.cells import CellOp
from tui_collab.private_files import create_private_file
from tui_collab.protocol import DEFAULT_COLUMN_WIDTH

logger = logging.getLogger(__name__)

DB_FILE: Final = "tui-collab.sqlite3"

PRUNE_INTERVAL_S: Final = 60.0
"""How often, at most, a session write also deletes ended sessions past the retention."""
PRUNE_BATCH: Final = 1_000
"""Ended sessions deleted at most per prune, so one never holds the writer for long."""

_UPSERT_CELL: Final = """
INSERT INTO cells (team, board, x, y, value, clock, client, author, version, updated_at, at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT version + 1 FROM boards WHERE team = ? AND id = ?), ?, ?)
ON CONFLICT (team, board, x, y) DO UPDATE SET
    value = excluded.value, clock = excluded.clock, client = excluded.client,
    author = excluded.author, version = excluded.version, updated_at = excluded.updated_at,
    at = excluded.at
WHERE (excluded.clock, excluded.client, excluded.value) > (cells.clock, cells.client, cells.value)
"""

# The write connection records every op the upsert applied in a temporary table, so a
# whole group of ops is one `executemany` plus one read of what won, not a round trip
# per op. Temporary objects live only on that connection.
_APPLIED_LOG: Final = (
    """CREATE TEMP TABLE applied (
        seq INTEGER PRIMARY KEY, team TEXT, board TEXT, x INTEGER, y INTEGER,
        clock INTEGER, client TEXT, value TEXT, version INTEGER)""",
    """CREATE TEMP TRIGGER log_cell_insert AFTER INSERT ON main.cells BEGIN
        INSERT INTO applied (team, board, x, y, clock, client, value, version)
        VALUES (NEW.team, NEW.board, NEW.x, NEW.y, NEW.clock, NEW.client, NEW.value,
                NEW.version);
    END""",
    """CREATE TEMP TRIGGER log_cell_update AFTER UPDATE ON main.cells BEGIN
        INSERT INTO applied (team, board, x, y, clock, client, value, version)
        VALUES (NEW.team, NEW.board, NEW.x, NEW.y, NEW.clock, NEW.client, NEW.value,
                NEW.version);
    END""",
)


@dataclass(frozen=True, slots=True)
class _CellBatch:
    """One `apply_cell_ops` call: one group-commit item, so a group retried piece by piece
    still commits each batch whole or not at all."""

    team: str
    board: str
    ops: tuple[CellOp, ...]


@dataclass(frozen=True, slots=True)
class _CellWrite:
    team: str
    board: str
    op: CellOp


def _apply_cell_batches(
    db: sqlite3.Connection, batches: Sequence[_CellBatch]
) -> list[list[AppliedOp]]:
    """Apply a group's batches in order, as one run of writes; one result list per batch."""
    writes = [_CellWrite(b.team, b.board, op) for b in batches for op in b.ops]
    results = iter(_apply_cell_writes(db, writes))
    return [[next(results) for _ in b.ops] for b in batches]


def _apply_cell_writes(db: sqlite3.Connection, writes: Sequence[_CellWrite]) -> list[AppliedOp]:
    """Apply cell ops in order; each result says whether that op won its cell.

    The history rows and their pruning come with the upsert, from migration 5's triggers.
    """
    versions: dict[tuple[str, str], int] = {}
    for team, board in {(w.team, w.board) for w in writes}:
        row = db.execute(
            "SELECT version FROM boards WHERE team = ? AND id = ?", (team, board)
        ).fetchone()
        if row is None:
            raise LookupError(f"no board {board!r}")
        versions[(team, board)] = int(row[0])
    now = _iso(datetime.now(UTC))
    db.executemany(
        _UPSERT_CELL,
        [
            (
                w.team,
                w.board,
                w.op.x,
                w.op.y,
                w.op.value,
                w.op.clock,
                w.op.client,
                w.op.by,
                w.team,
                w.board,
                _iso_ms(w.op.at) if w.op.at else now,
                w.op.at,
            )
            for w in writes
        ],
    )
    won: dict[tuple[Any, ...], deque[int]] = {}
    for row in db.execute(
        "SELECT team, board, x, y, clock, client, value, version FROM applied ORDER BY seq"
    ).fetchall():
        won.setdefault(tuple(row[:7]), deque()).append(int(row[7]))
    db.execute("DELETE FROM applied")
    results = []
    for w in writes:
        key = (w.team, w.board, w.op.x, w.op.y, w.op.clock, w.op.client, w.op.value)
        queue = won.get(key)
        if queue:
            version = versions[(w.team, w.board)] = queue.popleft()
            results.append(AppliedOp(applied=True, version=version))
        else:
            results.append(AppliedOp(applied=False, version=versions[(w.team, w.board)]))
    return results


class MigrationError(StartupError, RuntimeError):
    """The database is newer than this server, or a migration step failed."""


def _too_new(path: Path, version: int) -> MigrationError:
    return MigrationError(
        f"database {path} has schema version {version} but this server knows up to {LATEST}: "
        "it was written by a newer tui-collab-server; upgrade, or restore a backup made by "
        "this version"
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _iso_ms(at_ms: int) -> str:
    return _iso(datetime.fromtimestamp(at_ms / 1000, UTC))


class SQLiteStore:
    """`Store` on one SQLite file: a write connection owned by the writer thread, one for reads."""

    def __init__(
        self,
        data_dir: Path,
        durability: str = "normal",
        busy_timeout_s: float = 5.0,
        *,
        retention: SessionRetention | None = None,
    ) -> None:
        self.retention = retention or SessionRetention()
        self._prune_due = 0.0  # time.monotonic() of the next prune; the first write prunes
        self._busy_timeout_s = busy_timeout_s
        self._on_commit: Callable[[float, int], None] | None = None
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be normal or full, not {durability!r}")
        self.path = data_dir / DB_FILE
        self._synchronous = "FULL" if durability == "full" else "NORMAL"
        self._read_db: aiosqlite.Connection | None = None
        self._writer: GroupCommitWriter | None = None
        self._epoch = ""

    @property
    def epoch(self) -> str:
        return self._epoch

    def observe_commits(self, callback: Callable[[float, int], None]) -> None:
        """Report each group commit's duration and size (for metrics)."""
        self._on_commit = callback
        if self._writer is not None:
            self._writer.on_commit = callback

    @property
    def writer(self) -> GroupCommitWriter:
        """The group-commit writer, for stores that share this file (the notes)."""
        return self._require_writer()

    @property
    def reader(self) -> aiosqlite.Connection:
        """The read connection, for stores that share this file (the notes)."""
        return self._require_reader()

    @property
    def commits(self) -> int:
        return 0 if self._writer is None else self._writer.commits

    async def open(self) -> None:
        """Open, migrate and check the file; `StartupError` says why it cannot be used.

        A read-only check comes first: a damaged or too new file is refused before the
        writer turns on WAL mode or migrates, so it is left exactly as it was found.
        """
        check_data_dir(self.path.parent)
        version = await asyncio.to_thread(check_database, self.path)
        if version is not None and version > LATEST:
            raise _too_new(self.path, version)
        if version is None:
            try:
                create_private_file(self.path)  # 0600, and so its -wal and -shm files
            except OSError as exc:
                raise cannot_open_database(self.path, exc) from exc
        writer = GroupCommitWriter(self._connect_writer)
        try:
            await writer.open()
            self._epoch = await writer.call(self._prepare)
            self._read_db = await self._connect_reader()
        except sqlite3.Error as exc:
            await writer.close()
            raise cannot_open_database(self.path, exc) from exc
        except BaseException:
            await writer.close()
            raise
        writer.on_commit = self._on_commit
        self._writer = writer

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        if self._read_db is not None:
            await self._read_db.close()
            self._read_db = None

    def _connect_writer(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path,
            isolation_level=None,
            timeout=self._busy_timeout_s,
            check_same_thread=False,
        )
        try:
            for pragma in self._pragmas():
                db.execute(pragma)
            db.execute("PRAGMA journal_mode=WAL")
        except BaseException:
            db.close()
            raise
        return db

    async def _connect_reader(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None, timeout=self._busy_timeout_s)
        try:
            for pragma in (*self._pragmas(), "PRAGMA query_only=ON"):
                await db.execute(pragma)
        except BaseException:
            await db.close()
            raise
        return db

    def _pragmas(self) -> tuple[str, ...]:
        return (
            f"PRAGMA synchronous={self._synchronous}",
            f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}",
            "PRAGMA foreign_keys=ON",
        )

    def _prepare(self, db: sqlite3.Connection) -> str:
        """Writer thread, before any writes: migrate, make the epoch, log applied ops."""
        self._migrate(db)
        epoch = self._ensure_epoch(db)
        for statement in _APPLIED_LOG:
            db.execute(statement)
        return epoch

    def _migrate(self, db: sqlite3.Connection) -> None:
        row = db.execute("PRAGMA user_version").fetchone()
        current = int(row[0]) if row else 0
        if current > LATEST:
            raise _too_new(self.path, current)
        for number in range(current + 1, LATEST + 1):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[number - 1]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")
                db.execute("COMMIT")
            except Exception as exc:
                db.execute("ROLLBACK")
                raise MigrationError(
                    f"database {self.path}: migration {number} failed ({exc}) and was rolled "
                    "back: restore a backup, or report this with the database's schema"
                ) from exc
            logger.info("store migrated to schema version %d", number)

    def _ensure_epoch(self, db: sqlite3.Connection) -> str:
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)",
            (f"e-{secrets.token_hex(8)}",),
        )
        row = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        assert row is not None
        return str(row[0])

    def _require_writer(self) -> GroupCommitWriter:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    def _require_reader(self) -> aiosqlite.Connection:
        if self._read_db is None:
            raise RuntimeError("store is not open")
        return self._read_db

    # --- users and presence ---------------------------------------------------------

    async def record_user(self, team: str, user: str, name: str) -> None:
        now = _iso(datetime.now(UTC))

        def job(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR IGNORE INTO teams (id, created_at) VALUES (?, ?)", (team, now))
            db.execute(
                """INSERT INTO users (team, id, name, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (team, id) DO UPDATE SET name = excluded.name,
                   updated_at = excluded.updated_at""",
                (team, user, name, now, now),
            )

        await self._require_writer().submit(job)

    async def reset_presence(self) -> None:
        now = _iso(datetime.now(UTC))

        def job(db: sqlite3.Connection) -> None:
            # Whoever is still stored online was cut off by a crash: last seen alive_at.
            db.execute(
                """UPDATE user_presence SET status = 'offline',
                   last_seen = CASE
                       WHEN alive_at IS NOT NULL AND (last_seen IS NULL OR alive_at > last_seen)
                       THEN alive_at ELSE COALESCE(last_seen, ?) END,
                   updated_at = ?
                   WHERE status != 'offline'""",
                (now, now),
            )
            db.execute(
                """UPDATE collaboration_sessions SET ended_at = ?
                   WHERE ended_at IS NULL""",
                (now,),
            )

        await self._require_writer().submit(job)

    async def save_presence(self, record: PresenceRecord) -> None:
        now = _iso(datetime.now(UTC))
        last_seen = None if record.last_seen is None else _iso(record.last_seen)
        alive_at = None if record.alive_at is None else _iso(record.alive_at)

        def job(db: sqlite3.Connection) -> None:
            db.execute(
                """INSERT INTO user_presence
                   (team, user, status, activity, last_seen, alive_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (team, user) DO UPDATE SET status = excluded.status,
                   activity = excluded.activity,
                   last_seen = COALESCE(excluded.last_seen, user_presence.last_seen),
                   alive_at = COALESCE(excluded.alive_at, user_presence.alive_at),
                   updated_at = excluded.updated_at""",
                (
                    record.team,
                    record.user,
                    record.status,
                    record.activity_json,
                    last_seen,
                    alive_at,
                    now,
                ),
            )

        await self._require_writer().submit(job)

    async def mark_alive(self, marks: Sequence[AliveMark]) -> None:
        """One statement for the whole heartbeat; users with no presence row yet are skipped
        (their first save, which comes with the connection, carries alive_at itself)."""
        rows = [(_iso(m.at), m.team, m.user) for m in marks]

        def job(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE user_presence SET alive_at = ? WHERE team = ? AND user = ?", rows
            )

        if rows:
            await self._require_writer().submit(job)

    async def load_presence(self, team: str) -> list[PresenceRecord]:
        async with self._require_reader().execute(
            """SELECT u.id, u.name, COALESCE(p.status, 'offline'), p.activity, p.last_seen,
                      p.alive_at
               FROM users u LEFT JOIN user_presence p ON p.team = u.team AND p.user = u.id
               WHERE u.team = ? ORDER BY u.id""",
            (team,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            PresenceRecord(
                team=team,
                user=row[0],
                name=row[1],
                status=row[2],
                activity_json=row[3],
                last_seen=_parse(row[4]),
                alive_at=_parse(row[5]),
            )
            for row in rows
        ]

    async def session_started(
        self, session: str, team: str, user: str, client_id: str, at: datetime
    ) -> None:
        """Record a connection; keep the user's newest `retention.per_user` records.

        At most every `PRUNE_INTERVAL_S` the same transaction also deletes up to
        `PRUNE_BATCH` sessions that ended more than `retention.max_age_s` ago: records
        grow only here, so pruning here bounds them without a timer of its own.
        """
        keep = self.retention.per_user
        prune_before = None
        if time.monotonic() >= self._prune_due:
            self._prune_due = time.monotonic() + PRUNE_INTERVAL_S
            prune_before = self._retention_cutoff(datetime.now(UTC))

        def job(db: sqlite3.Connection) -> None:
            db.execute(
                """INSERT INTO collaboration_sessions (id, team, user, client_id, started_at)
                   VALUES (?, ?, ?, ?, ?)""",
                (session, team, user, client_id, _iso(at)),
            )
            # The sessions_by_user index finds the user's keep-th newest start in one seek.
            db.execute(
                """DELETE FROM collaboration_sessions WHERE team = ? AND user = ?
                   AND started_at < (SELECT started_at FROM collaboration_sessions
                       WHERE team = ? AND user = ? ORDER BY started_at DESC LIMIT 1 OFFSET ?)""",
                (team, user, team, user, keep - 1),
            )
            if prune_before is not None and _prune_ended(db, prune_before) == PRUNE_BATCH:
                self._prune_due = 0.0  # more are due: the next write goes on

        await self._require_writer().submit(job)

    async def prune_sessions(self, now: datetime | None = None) -> int:
        """Delete up to `PRUNE_BATCH` sessions that ended more than the retention before
        `now`; return how many. Session writes call this by themselves; this is for tests
        and operators' scripts."""
        before = self._retention_cutoff(now or datetime.now(UTC))
        deleted: int = await self._require_writer().submit(lambda db: _prune_ended(db, before))
        return deleted

    def _retention_cutoff(self, now: datetime) -> str:
        return _iso(now - timedelta(seconds=self.retention.max_age_s))

    async def session_ended(self, session: str, at: datetime, close_code: int | None) -> None:
        def job(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE collaboration_sessions SET ended_at = ?, close_code = ? WHERE id = ?",
                (_iso(at), close_code, session),
            )

        await self._require_writer().submit(job)

    # --- boards ---------------------------------------------------------------------

    async def create_board(self, board: BoardRecord) -> bool:
        now = _iso(datetime.now(UTC))

        def job(db: sqlite3.Connection) -> bool:
            db.execute(
                "INSERT OR IGNORE INTO teams (id, created_at) VALUES (?, ?)", (board.team, now)
            )
            cursor = db.execute(
                """INSERT OR IGNORE INTO boards
                   (team, id, title, width, height, created_by, version, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, 0, ?)""",
                (
                    board.team,
                    board.id,
                    board.title,
                    board.width,
                    board.height,
                    board.created_by,
                    now,
                ),
            )
            return cursor.rowcount == 1

        return await self._require_writer().submit(job)

    async def update_board(
        self,
        team: str,
        board: str,
        title: str | None = None,
        widths: Mapping[int, int] | None = None,
    ) -> BoardRecord | None:
        changes = dict(widths or {})

        def job(db: sqlite3.Connection) -> BoardRecord | None:
            # Read and written in the writer's transaction: two merges cannot lose each other.
            row = db.execute(
                "SELECT widths FROM boards WHERE team = ? AND id = ?", (team, board)
            ).fetchone()
            if row is None:
                return None
            merged = _merge_widths(_widths(row[0]), changes)
            rows = db.execute(
                """UPDATE boards SET title = COALESCE(?, title), widths = ?
                   WHERE team = ? AND id = ?
                   RETURNING id, title, width, height, created_by, version, widths""",
                (title, json.dumps(merged), team, board),
            ).fetchall()
            return _board(team, rows[0]) if rows else None

        return await self._require_writer().submit(job)

    async def get_board(self, team: str, board: str) -> BoardRecord | None:
        async with self._require_reader().execute(
            """SELECT id, title, width, height, created_by, version, widths FROM boards
               WHERE team = ? AND id = ?""",
            (team, board),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _board(team, row)

    async def list_boards(self, team: str) -> list[BoardRecord]:
        async with self._require_reader().execute(
            """SELECT id, title, width, height, created_by, version, widths FROM boards
               WHERE team = ? ORDER BY created_at, id""",
            (team,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [_board(team, row) for row in rows]

    # --- cells ----------------------------------------------------------------------

    async def apply_cell_op(self, team: str, board: str, op: CellOp) -> AppliedOp:
        """A batch of one: it shares its group's statements with every other write."""
        return (await self.apply_cell_ops(team, board, (op,)))[0]

    async def apply_cell_ops(self, team: str, board: str, ops: Sequence[CellOp]) -> list[AppliedOp]:
        """One group-commit item: the batch commits whole, in one transaction, or fails whole.

        `at` is stored as given: the dispatcher stamps it once per request.
        """
        if not ops:
            return []
        batch = _CellBatch(team, board, tuple(ops))
        results: list[AppliedOp] = await self._require_writer().submit_item(
            _apply_cell_batches, batch
        )
        return results

    async def cell_history(self, team: str, board: str, x: int, y: int) -> list[CellOp]:
        """Newest first, from the primary key: one seek and at most `HISTORY_KEPT` rows."""
        async with self._require_reader().execute(
            """SELECT value, clock, client, author, version, at FROM cell_history
               WHERE team = ? AND board = ? AND x = ? AND y = ?
               ORDER BY version DESC LIMIT ?""",
            (team, board, x, y, HISTORY_KEPT),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            CellOp(x, y, value=r[0], clock=r[1], client=r[2], by=r[3], version=r[4], at=r[5])
            for r in rows
        ]

    async def load_cells(self, team: str, board: str, since: int = 0) -> list[CellOp]:
        async with self._require_reader().execute(
            """SELECT x, y, value, clock, client, author, version, at FROM cells
               WHERE team = ? AND board = ? AND version > ? ORDER BY version""",
            (team, board, since),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            CellOp(
                x=r[0], y=r[1], value=r[2], clock=r[3], client=r[4], by=r[5], version=r[6], at=r[7]
            )
            for r in rows
        ]


def _prune_ended(db: sqlite3.Connection, before: str) -> int:
    """Delete up to `PRUNE_BATCH` sessions that ended before `before` (sessions_by_end)."""
    cursor = db.execute(
        """DELETE FROM collaboration_sessions WHERE rowid IN (
               SELECT rowid FROM collaboration_sessions WHERE ended_at < ? LIMIT ?)""",
        (before, PRUNE_BATCH),
    )
    return cursor.rowcount


def _board(team: str, row: Sequence[Any]) -> BoardRecord:
    return BoardRecord(
        team=team,
        id=str(row[0]),
        title=str(row[1]),
        width=int(row[2]),
        height=int(row[3]),
        created_by=str(row[4]),
        version=int(row[5]),
        widths=tuple(_widths(row[6])),
    )


def _widths(text: str) -> list[tuple[int, int]]:
    """The stored JSON `[[x, width], ...]` as pairs."""
    return [(int(x), int(w)) for x, w in json.loads(text)]


def _merge_widths(
    current: Sequence[tuple[int, int]], changes: Mapping[int, int]
) -> list[tuple[int, int]]:
    """`current` with `changes` laid over it, by column; a default width drops the entry."""
    merged = dict(current)
    merged.update(changes)
    return sorted((x, w) for x, w in merged.items() if w != DEFAULT_COLUMN_WIDTH)

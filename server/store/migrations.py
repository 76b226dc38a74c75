"""Numbered schema migrations; step N leaves `PRAGMA user_version` at N.

Each step runs in its own `BEGIN IMMEDIATE … COMMIT` together with the version bump,
and SQLite makes both transactional, so a failed step leaves schema and version as they
were. Append new steps; never edit a released one.
"""

from __future__ import annotations

from typing import Final

HISTORY_KEPT: Final = 50
"""Ops kept per cell in `cell_history` by migration 5's triggers (`protocol.HISTORY_PER_CELL`).

Fifty answers "who changed this, and what did it say before" for a busy cell over a
working day, and fifty of the largest entries (about 1.2 KiB each) still fit one 64 KiB
reply, so a `cell.history` costs one rate-limit token. The bound is per cell, so the
table is at most fifty times the cells a board ever had. The triggers write the number
out (a migration is never edited): another one needs a new step replacing them.
"""

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: identity, presence, sessions, boards
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE teams (id TEXT PRIMARY KEY, created_at TEXT NOT NULL)",
        """CREATE TABLE users (
            team TEXT NOT NULL REFERENCES teams(id),
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (team, id))""",
        """CREATE TABLE user_presence (
            team TEXT NOT NULL,
            user TEXT NOT NULL,
            status TEXT NOT NULL,
            activity TEXT,
            last_seen TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (team, user),
            FOREIGN KEY (team, user) REFERENCES users(team, id))""",
        """CREATE TABLE collaboration_sessions (
            id TEXT PRIMARY KEY,
            team TEXT NOT NULL,
            user TEXT NOT NULL,
            client_id TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            close_code INTEGER)""",
        "CREATE INDEX sessions_by_user ON collaboration_sessions (team, user, started_at)",
        """CREATE TABLE boards (
            team TEXT NOT NULL REFERENCES teams(id),
            id TEXT NOT NULL,
            title TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            PRIMARY KEY (team, id))""",
    ),
    # 2: cells, last-writer-wins; every applied op bumps its board's version
    (
        """CREATE TABLE cells (
            team TEXT NOT NULL,
            board TEXT NOT NULL,
            x INTEGER NOT NULL,
            y INTEGER NOT NULL,
            value TEXT NOT NULL,
            clock INTEGER NOT NULL,
            client TEXT NOT NULL,
            author TEXT NOT NULL,
            version INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (team, board, x, y),
            FOREIGN KEY (team, board) REFERENCES boards(team, id))""",
        "CREATE INDEX cells_by_version ON cells (team, board, version)",
        """CREATE TRIGGER cells_bump_on_insert AFTER INSERT ON cells BEGIN
            UPDATE boards SET version = NEW.version WHERE team = NEW.team AND id = NEW.board;
        END""",
        """CREATE TRIGGER cells_bump_on_update AFTER UPDATE ON cells BEGIN
            UPDATE boards SET version = NEW.version WHERE team = NEW.team AND id = NEW.board;
        END""",
    ),
    # 3: the presence heartbeat: when a user was last known connected (for crashes)
    ("ALTER TABLE user_presence ADD COLUMN alive_at TEXT",),
    # 4: ended sessions are pruned by age, a bounded batch at a time
    (
        """CREATE INDEX sessions_by_end ON collaboration_sessions (ended_at)
            WHERE ended_at IS NOT NULL""",
    ),
    # 5: op time, each cell's recent history, column widths
    (
        # Unix ms of the op that holds the cell (0: stored before it was recorded): an
        # integer, so loading 10,000 cells parses no dates.
        "ALTER TABLE cells ADD COLUMN at INTEGER NOT NULL DEFAULT 0",
        # (column, width) pairs for columns not at the default width, as JSON.
        "ALTER TABLE boards ADD COLUMN widths TEXT NOT NULL DEFAULT '[]'",
        # Keyed so that a cell's newest rows, and its HISTORY_KEPT-th newest, are one seek.
        """CREATE TABLE cell_history (
            team TEXT NOT NULL,
            board TEXT NOT NULL,
            x INTEGER NOT NULL,
            y INTEGER NOT NULL,
            version INTEGER NOT NULL,
            value TEXT NOT NULL,
            clock INTEGER NOT NULL,
            client TEXT NOT NULL,
            author TEXT NOT NULL,
            at INTEGER NOT NULL,
            PRIMARY KEY (team, board, x, y, version)) WITHOUT ROWID""",
        # Every applied op is kept, and the cell's 51st newest and older go, in the same
        # statement's transaction (OFFSET 50 is HISTORY_KEPT, written out: see its note).
        """CREATE TRIGGER cells_history_on_insert AFTER INSERT ON cells BEGIN
            INSERT INTO cell_history
                (team, board, x, y, version, value, clock, client, author, at)
            VALUES (NEW.team, NEW.board, NEW.x, NEW.y, NEW.version, NEW.value,
                    NEW.clock, NEW.client, NEW.author, NEW.at);
            DELETE FROM cell_history
            WHERE team = NEW.team AND board = NEW.board AND x = NEW.x AND y = NEW.y
              AND version <= (SELECT version FROM cell_history
                  WHERE team = NEW.team AND board = NEW.board AND x = NEW.x AND y = NEW.y
                  ORDER BY version DESC LIMIT 1 OFFSET 50);
        END""",
        """CREATE TRIGGER cells_history_on_update AFTER UPDATE ON cells BEGIN
            INSERT INTO cell_history
                (team, board, x, y, version, value, clock, client, author, at)
            VALUES (NEW.team, NEW.board, NEW.x, NEW.y, NEW.version, NEW.value,
                    NEW.clock, NEW.client, NEW.author, NEW.at);
            DELETE FROM cell_history
            WHERE team = NEW.team AND board = NEW.board AND x = NEW.x AND y = NEW.y
              AND version <= (SELECT version FROM cell_history
                  WHERE team = NEW.team AND board = NEW.board AND x = NEW.x AND y = NEW.y
                  ORDER BY version DESC LIMIT 1 OFFSET 50);
        END""",
    ),
    # 6: each board's notes: an append-only log of Yjs updates, folded into one
    # snapshot per board (server/store/notes_sqlite.py)
    (
        """CREATE TABLE notes_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            team TEXT NOT NULL,
            board TEXT NOT NULL,
            data BLOB NOT NULL,
            author TEXT NOT NULL,
            at INTEGER NOT NULL)""",
        "CREATE INDEX notes_log_by_board ON notes_log (team, board, seq)",
        """CREATE TABLE notes_snapshots (
            team TEXT NOT NULL,
            board TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (team, board))""",
    ),
)

LATEST: Final = len(MIGRATIONS)

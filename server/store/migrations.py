"""Numbered schema migrations; step N leaves `PRAGMA user_version` at N.

Each step runs in its own `BEGIN IMMEDIATE … COMMIT` together with the version bump,
and SQLite makes both transactional, so a failed step leaves schema and version as they
were. Append new steps; never edit a released one.
"""

from __future__ import annotations

from typing import Final

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
)

LATEST: Final = len(MIGRATIONS)

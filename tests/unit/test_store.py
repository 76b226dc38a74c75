"""The SQLite store on a real file: migrations, epoch, group commit, presence, boards."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import pytest

from server.store import BoardRecord, PresenceRecord, SQLiteStore
from server.store import migrations as migrations_module
from server.store.migrations import LATEST
from server.store.sqlite import DB_FILE, MigrationError


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path)
    await store.open()
    yield store
    await store.close()


def _version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


async def test_fresh_store_has_latest_schema_wal_and_epoch(
    store: SQLiteStore, tmp_path: Path
) -> None:
    path = tmp_path / DB_FILE
    assert _version(path) == LATEST
    assert {
        "teams",
        "users",
        "user_presence",
        "collaboration_sessions",
        "boards",
        "cells",
    } <= _tables(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.epoch.startswith("e-")


async def test_epoch_survives_reopen_and_differs_between_stores(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "a")
    await first.open()
    epoch = first.epoch
    await first.close()
    again = SQLiteStore(tmp_path / "a")
    await again.open()
    assert again.epoch == epoch
    await again.close()
    other = SQLiteStore(tmp_path / "b")
    await other.open()
    assert other.epoch != epoch
    await other.close()


async def test_migrates_step_by_step_from_every_older_version(tmp_path: Path) -> None:
    for start in range(LATEST):
        path = tmp_path / str(start) / DB_FILE
        path.parent.mkdir()
        with sqlite3.connect(path) as db:
            for number in range(start):
                for statement in migrations_module.MIGRATIONS[number]:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={start}")
        store = SQLiteStore(path.parent)
        await store.open()
        await store.close()
        assert _version(path) == LATEST


async def test_failed_migration_leaves_schema_and_version_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = (
        *migrations_module.MIGRATIONS[:1],
        ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL"),
    )
    monkeypatch.setattr("server.store.sqlite.MIGRATIONS", broken)
    monkeypatch.setattr("server.store.sqlite.LATEST", 2)
    store = SQLiteStore(tmp_path)
    with pytest.raises(MigrationError, match="migration 2"):
        await store.open()
    if store._write_db is not None:
        await store._write_db.close()
    path = tmp_path / DB_FILE
    assert _version(path) == 1
    assert "half_done" not in _tables(path)


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={LATEST + 1}")
    store = SQLiteStore(tmp_path)
    with pytest.raises(MigrationError, match="knows up to"):
        await store.open()
    if store._write_db is not None:
        await store._write_db.close()


async def test_concurrent_writes_commit_in_groups(store: SQLiteStore) -> None:
    await store.create_board(BoardRecord("core", "plan", "Plan", 100, 100, "alice"))
    before = store.commits
    await asyncio.gather(*(store.record_user("core", f"u{n}", f"User {n}") for n in range(200)))
    groups = store.commits - before
    assert groups < 50, f"200 writes took {groups} commits"
    users = await store.load_presence("core")
    assert len(users) == 200


async def test_a_failing_job_fails_alone(store: SQLiteStore) -> None:
    writer = store._require_writer()

    async def bad(db: aiosqlite.Connection) -> None:
        await db.execute("INSERT INTO no_such_table VALUES (1)")

    results = await asyncio.gather(
        store.record_user("core", "alice", "Alice"),
        writer.submit(bad),
        store.record_user("core", "bob", "Bob"),
        return_exceptions=True,
    )
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], RuntimeError)
    assert [r.user for r in await store.load_presence("core")] == ["alice", "bob"]


async def test_presence_round_trip_and_reset(store: SQLiteStore) -> None:
    seen = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    await store.record_user("core", "alice", "Alice")
    await store.save_presence(
        PresenceRecord("core", "alice", "Alice", "busy", '{"kind":"editing"}', seen)
    )
    (record,) = await store.load_presence("core")
    assert (record.status, record.activity_json, record.last_seen) == (
        "busy",
        '{"kind":"editing"}',
        seen,
    )
    await store.reset_presence()
    (record,) = await store.load_presence("core")
    assert (record.status, record.last_seen) == ("offline", seen)


async def test_boards_are_per_team(store: SQLiteStore) -> None:
    assert await store.create_board(BoardRecord("core", "plan", "Plan", 3, 3, "alice"))
    assert not await store.create_board(BoardRecord("core", "plan", "Other", 3, 3, "bob"))
    assert await store.create_board(BoardRecord("rivals", "plan", "Theirs", 5, 5, "eve"))
    assert [b.title for b in await store.list_boards("core")] == ["Plan"]
    assert (await store.get_board("rivals", "plan")).title == "Theirs"  # type: ignore[union-attr]
    assert await store.update_board("core", "nope", "x") is None
    updated = await store.update_board("core", "plan", "Roadmap")
    assert updated is not None
    assert updated.title == "Roadmap"


async def test_close_flushes_queued_writes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    await store.open()
    pending = [asyncio.ensure_future(store.record_user("core", f"u{n}", "U")) for n in range(50)]
    await asyncio.sleep(0)
    await store.close()
    await asyncio.gather(*pending)
    again = SQLiteStore(tmp_path)
    await again.open()
    assert len(await again.load_presence("core")) == 50
    await again.close()

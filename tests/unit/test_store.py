"""The store test suite, run against SQLite and Redis; then SQLite's own (migrations, WAL)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.redis_util import awaited
from server.store import BoardRecord, PresenceRecord, RedisStore, SQLiteStore, Store
from server.store import migrations as migrations_module
from server.store.base import SessionRetention
from server.store.migrations import LATEST
from server.store.sqlite import DB_FILE, PRUNE_BATCH, MigrationError
from tui_collab.cells import CellMap, CellOp, beats

MakeStore = Callable[[], Store]


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """New, unopened stores that all share one backing (one data dir, or one Redis)."""
    if request.param == "sqlite":
        return lambda: SQLiteStore(tmp_path / "data")
    url: str = request.getfixturevalue("redis_url")
    return lambda: RedisStore(url)


@pytest.fixture
async def store(make_store: MakeStore) -> AsyncIterator[Store]:
    store = make_store()
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path)
    await store.open()
    yield store
    await store.close()


PLAN = BoardRecord("core", "plan", "Plan", 10, 10, "alice")


def op(x: int, y: int, value: str, clock: int, client: str = "c-1", by: str = "alice") -> CellOp:
    return CellOp(x, y, value, clock, client, by)


# --- every store --------------------------------------------------------------------------


async def test_epoch_is_made_once_and_kept(make_store: MakeStore) -> None:
    first = make_store()
    await first.open()
    epoch = first.epoch
    await first.close()
    assert epoch.startswith("e-")
    again = make_store()
    await again.open()
    assert again.epoch == epoch
    await again.close()


async def test_presence_round_trip(store: Store) -> None:
    seen = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    await store.record_user("core", "bob", "Bob")
    await store.record_user("core", "alice", "Alice")
    await store.record_user("rivals", "eve", "Eve")
    await store.save_presence(
        PresenceRecord("core", "alice", "Alice", "busy", '{"kind":"editing"}', seen)
    )
    alice, bob = await store.load_presence("core")
    assert alice == PresenceRecord("core", "alice", "Alice", "busy", '{"kind":"editing"}', seen)
    assert bob == PresenceRecord("core", "bob", "Bob", "offline", None, None)
    # No last_seen keeps the stored one; no activity clears it; a new name is kept.
    await store.record_user("core", "alice", "Alice A.")
    await store.save_presence(PresenceRecord("core", "alice", "Alice", "online", None, None))
    alice, _ = await store.load_presence("core")
    assert alice == PresenceRecord("core", "alice", "Alice A.", "online", None, seen)
    later = seen + timedelta(hours=2)
    await store.save_presence(PresenceRecord("core", "alice", "Alice", "offline", None, later))
    alice, _ = await store.load_presence("core")
    assert (alice.status, alice.last_seen) == ("offline", later)
    assert [r.user for r in await store.load_presence("rivals")] == ["eve"]
    assert await store.load_presence("nobody") == []


async def test_reset_presence_keeps_names_and_last_seen(store: Store) -> None:
    """All the server reads back after a start; whether status changes is the store's own."""
    seen = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    await store.record_user("core", "alice", "Alice")
    await store.save_presence(PresenceRecord("core", "alice", "Alice", "online", None, seen))
    await store.reset_presence()
    (record,) = await store.load_presence("core")
    assert (record.user, record.name, record.last_seen) == ("alice", "Alice", seen)


async def test_sessions_start_and_end(store: Store) -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    await store.record_user("core", "alice", "Alice")
    await store.session_started("s-1", "core", "alice", "c-1", at)
    await store.session_started("s-2", "core", "alice", "c-2", at)
    await store.session_ended("s-1", at + timedelta(minutes=5), 1000)
    await store.session_ended("s-2", at + timedelta(minutes=6), None)
    await store.session_ended("never-started", at, 1001)
    assert await _recorded_sessions(store, ["s-1", "s-2", "never-started"]) == {
        "s-1": ("alice", "c-1", at + timedelta(minutes=5), 1000),
        "s-2": ("alice", "c-2", at + timedelta(minutes=6), None),
    }


SessionRow = tuple[str, str, datetime | None, int | None]


async def _recorded_sessions(store: Store, ids: list[str]) -> dict[str, SessionRow]:
    """The recorded sessions among `ids`: user, client, end and close code.

    `Store` has no reader for sessions (the server only writes them), so this reads each
    backing directly.
    """

    def row(user: str, client: str, ended: str | None, code: object) -> SessionRow:
        end = None if not ended else datetime.fromisoformat(ended)
        return user, client, end, None if code in (None, "") else int(str(code))

    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as db:
            rows = db.execute(
                "SELECT id, user, client_id, ended_at, close_code FROM collaboration_sessions"
            ).fetchall()
        return {r[0]: row(*r[1:]) for r in rows if r[0] in ids}
    assert isinstance(store, RedisStore)
    found: dict[str, SessionRow] = {}
    async with Redis.from_url(store.url, decode_responses=True) as raw:
        for session in ids:
            record = await awaited(raw.hgetall(f"{store.prefix}session:{session}"))
            if record:
                found[session] = row(
                    record["user"],
                    record["client_id"],
                    record.get("ended_at"),
                    record.get("close_code"),
                )
    return found


async def test_boards_are_per_team(store: Store) -> None:
    assert await store.create_board(BoardRecord("core", "plan", "Plan", 3, 3, "alice"))
    assert not await store.create_board(BoardRecord("core", "plan", "Other", 3, 3, "bob"))
    assert await store.create_board(BoardRecord("rivals", "plan", "Theirs", 5, 5, "eve"))
    assert [b.title for b in await store.list_boards("core")] == ["Plan"]
    assert (await store.get_board("rivals", "plan")).title == "Theirs"  # type: ignore[union-attr]
    assert await store.get_board("core", "nope") is None
    assert await store.update_board("core", "nope", "x") is None
    updated = await store.update_board("core", "plan", "Roadmap")
    assert updated == BoardRecord("core", "plan", "Roadmap", 3, 3, "alice", 0)
    assert await store.get_board("core", "plan") == updated
    assert await store.list_boards("nobody") == []


async def test_boards_are_listed_oldest_first(store: Store) -> None:
    for board in ("m", "z", "a", "k"):
        assert await store.create_board(BoardRecord("core", board, board.upper(), 3, 3, "alice"))
    assert [b.id for b in await store.list_boards("core")] == ["m", "z", "a", "k"]


async def test_board_version_counts_the_ops_that_won(store: Store) -> None:
    await store.create_board(PLAN)
    results = [
        await store.apply_cell_op("core", "plan", o)
        for o in (op(0, 0, "a", 1), op(1, 0, "b", 1), op(0, 0, "old", 1, "c-0"), op(0, 0, "c", 2))
    ]
    assert [(r.applied, r.version) for r in results] == [
        (True, 1),
        (True, 2),
        (False, 2),
        (True, 3),
    ]
    board = await store.get_board("core", "plan")
    assert board is not None
    assert board.version == 3
    assert [b.version for b in await store.list_boards("core")] == [3]
    renamed = await store.update_board("core", "plan", "Renamed")
    assert renamed is not None
    assert renamed.version == 3


async def test_last_writer_wins_by_clock_then_client_then_value(store: Store) -> None:
    await store.create_board(PLAN)
    steps = [
        (op(0, 0, "first", 5, "c-2"), True),
        (op(0, 0, "older clock", 4, "c-9"), False),
        (op(0, 0, "lower client", 5, "c-1"), False),
        (op(0, 0, "higher client", 5, "c-3"), True),
        (op(0, 0, "a lower value", 5, "c-3"), False),
        (op(0, 0, "the higher value", 5, "c-3"), True),
        (op(0, 0, "the higher value", 5, "c-3", by="bob"), False),  # the same op again
        (op(0, 0, "", 6, "c-0"), True),  # clearing a cell is a write like any other
    ]
    for cell_op, wins in steps:
        result = await store.apply_cell_op("core", "plan", cell_op)
        assert result.applied is wins, cell_op
    (cell,) = await store.load_cells("core", "plan")
    assert (cell.value, cell.clock, cell.client, cell.version) == ("", 6, "c-0", 4)


TRICKY = ["", "A", "B", "a", "b", "Z", "é", "z", "ß", "ü", "\uffff", "\U00010000", "日本", "a b"]
"""Case, accents and planes: where a locale's collation or UTF-16 order differs from Python's."""


async def test_strings_compare_like_python(store: Store) -> None:
    """Ties on the clock are broken exactly as `tui_collab.cells.beats`, non-ASCII included."""
    await store.create_board(PLAN)
    for x, first in enumerate(TRICKY):
        for y, second in enumerate(TRICKY):
            if first == second:
                continue
            # Cell (x, y): first the clients differ, then (on a later clock) the values.
            for a, b in [
                (op(x, y, "v", 1, first), op(x, y, "v", 1, second)),
                (op(x, y, first, 2, "c"), op(x, y, second, 2, "c")),
            ]:
                assert (await store.apply_cell_op("core", "plan", a)).applied
                result = await store.apply_cell_op("core", "plan", b)
                assert result.applied is beats(b, a), (a.stamp, b.stamp)


async def test_clocks_compare_exactly_up_to_2_62(store: Store) -> None:
    """Beyond 2**53 a double cannot tell neighbours apart; the store must."""
    await store.create_board(PLAN)
    for x, (low, high) in enumerate([(2**53, 2**53 + 1), (2**62 - 1, 2**62), (9, 10), (99, 100)]):
        assert (await store.apply_cell_op("core", "plan", op(x, 0, "high", high))).applied
        assert not (await store.apply_cell_op("core", "plan", op(x, 0, "low", low))).applied
        assert (await store.apply_cell_op("core", "plan", op(x, 1, "low", low))).applied
        assert (await store.apply_cell_op("core", "plan", op(x, 1, "high", high))).applied
    cells = await store.load_cells("core", "plan")
    assert {c.value for c in cells} == {"high"}
    assert sorted(c.clock for c in cells if c.y == 0) == [10, 100, 2**53 + 1, 2**62]


async def test_load_cells_since_a_version(store: Store) -> None:
    await store.create_board(PLAN)
    await store.create_board(BoardRecord("core", "other", "Other", 3, 3, "bob"))
    await store.apply_cell_op("core", "other", op(0, 0, "elsewhere", 1))
    for clock, (x, y) in enumerate([(0, 0), (1, 1), (0, 0), (2, 3)], start=1):
        await store.apply_cell_op("core", "plan", op(x, y, f"v{clock}", clock, by="bob"))
    everything = await store.load_cells("core", "plan")
    assert everything == [
        CellOp(1, 1, "v2", 2, "c-1", "bob", 2),
        CellOp(0, 0, "v3", 3, "c-1", "bob", 3),
        CellOp(2, 3, "v4", 4, "c-1", "bob", 4),
    ]
    assert await store.load_cells("core", "plan", since=2) == everything[1:]
    assert await store.load_cells("core", "plan", since=4) == []
    assert await store.load_cells("core", "nope") == []
    assert CellMap(everything).since(2) == everything[1:]


# SQLite's writer reports a failed job as RuntimeError (the LookupError is in its log).
REFUSED = (LookupError, RuntimeError)


async def test_cell_op_on_a_missing_board_is_refused(store: Store) -> None:
    with pytest.raises(REFUSED):
        await store.apply_cell_op("core", "nope", op(0, 0, "a", 1))
    await store.create_board(PLAN)
    with pytest.raises(REFUSED):
        await store.apply_cell_op("rivals", "plan", op(0, 0, "a", 1))
    assert await store.load_cells("core", "nope") == []
    assert await store.load_cells("rivals", "plan") == []


async def test_presence_of_a_user_never_recorded_is_refused(store: Store) -> None:
    with pytest.raises(REFUSED):
        await store.save_presence(PresenceRecord("core", "ghost", "G", "online", None, None))
    assert await store.load_presence("core") == []


async def test_concurrent_ops_get_a_gapless_run_of_versions(store: Store) -> None:
    await store.create_board(PLAN)
    ops = [op(n % 5, n % 3, f"v{n}", n // 4 + 1, f"c-{n % 7}") for n in range(60)]
    results = await asyncio.gather(*(store.apply_cell_op("core", "plan", o) for o in ops))
    won = sorted(r.version for r in results if r.applied)
    assert won == list(range(1, len(won) + 1))
    stored = await store.load_cells("core", "plan")
    assert {(c.x, c.y): c.stamp for c in stored} == {(c.x, c.y): c.stamp for c in CellMap(ops)}


# --- SQLite only --------------------------------------------------------------------------


def _version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def _writer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("store-writer")}


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


async def test_fresh_store_has_latest_schema_wal_and_epoch(
    sqlite_store: SQLiteStore, tmp_path: Path
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
    assert sqlite_store.epoch.startswith("e-")


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
    threads = _writer_threads()
    with pytest.raises(MigrationError, match="migration 2"):
        await store.open()
    assert _writer_threads() == threads  # a failed open closes what it opened
    path = tmp_path / DB_FILE
    assert _version(path) == 1
    assert "half_done" not in _tables(path)


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={LATEST + 1}")
    store = SQLiteStore(tmp_path)
    threads = _writer_threads()
    with pytest.raises(MigrationError, match="knows up to"):
        await store.open()
    assert _writer_threads() == threads  # a failed open closes what it opened


async def test_concurrent_writes_commit_in_groups(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    await store.create_board(BoardRecord("core", "plan", "Plan", 100, 100, "alice"))
    before = store.commits
    await asyncio.gather(*(store.record_user("core", f"u{n}", f"User {n}") for n in range(200)))
    groups = store.commits - before
    assert groups < 50, f"200 writes took {groups} commits"
    users = await store.load_presence("core")
    assert len(users) == 200


async def test_a_group_is_one_call_to_the_writer_thread(
    sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN, the work and COMMIT cross to the writer thread once, not once per statement."""
    store = sqlite_store
    await store.create_board(PLAN)
    writer = store._require_writer()
    executor = writer._executor
    calls = 0
    submit = executor.submit

    def counting_submit(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return submit(*args, **kwargs)

    monkeypatch.setattr(executor, "submit", counting_submit)
    threads: set[str] = set()

    def job(db: sqlite3.Connection) -> bool:
        threads.add(threading.current_thread().name)
        return db.in_transaction

    before = store.commits
    in_transaction, applied = await asyncio.gather(
        asyncio.gather(*(writer.submit(job) for _ in range(5))),
        asyncio.gather(*(store.apply_cell_op("core", "plan", op(n, 0, "v", 1)) for n in range(5))),
    )
    assert store.commits - before == 1
    assert calls == 1
    assert in_transaction == [True] * 5
    assert [r.version for r in applied] == [1, 2, 3, 4, 5]
    (name,) = threads
    assert name.startswith("store-writer")


async def test_a_failing_job_fails_alone(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    writer = store._require_writer()

    def bad(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO no_such_table VALUES (1)")

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


async def test_reset_marks_everyone_offline(sqlite_store: SQLiteStore) -> None:
    """One server per file: whoever the store says is online was connected to a dead process."""
    seen = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    await sqlite_store.record_user("core", "alice", "Alice")
    await sqlite_store.save_presence(
        PresenceRecord("core", "alice", "Alice", "busy", '{"kind":"editing"}', seen)
    )
    await sqlite_store.reset_presence()
    (record,) = await sqlite_store.load_presence("core")
    assert (record.status, record.last_seen) == ("offline", seen)


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


def _sessions(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id FROM collaboration_sessions ORDER BY id").fetchall()
    return [r[0] for r in rows]


async def test_sessions_are_kept_per_user_up_to_the_cap(tmp_path: Path) -> None:
    """Each start keeps the user's newest `per_user` records; other users are untouched."""
    store = SQLiteStore(tmp_path, retention=SessionRetention(per_user=3))
    await store.open()
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    try:
        await store.session_started("b-0", "core", "bob", "c-2", at)
        for n in range(5):
            await store.session_started(f"s-{n}", "core", "alice", "c-1", at.replace(minute=n))
            await store.session_ended(f"s-{n}", at.replace(minute=n, second=30), 1000)
    finally:
        await store.close()
    assert _sessions(tmp_path / DB_FILE) == ["b-0", "s-2", "s-3", "s-4"]


async def test_ended_sessions_are_pruned_after_the_retention(tmp_path: Path) -> None:
    """A bounded batch per prune, oldest end first; open sessions are never pruned by age."""
    store = SQLiteStore(tmp_path, retention=SessionRetention(max_age_s=3600))
    await store.open()
    start = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    try:
        await store.session_started("open", "core", "alice", "c-1", start)
        await store.session_started("recent", "core", "alice", "c-1", start)
        await store.session_ended("recent", start + timedelta(hours=5), 1000)
        for n in range(PRUNE_BATCH + 2):
            await store.session_started(f"old-{n}", "core", f"u{n}", "c", start)
        await store.session_ended("old-0", start + timedelta(hours=1), 1001)
        # Old sessions end in one write, as the server does not (a test shortcut).
        await store._require_writer().submit(
            lambda db: db.execute(
                "UPDATE collaboration_sessions SET ended_at = ? WHERE id LIKE 'old-%'",
                ((start + timedelta(hours=1)).isoformat(),),
            )
        )
        now = start + timedelta(hours=5, minutes=30)  # 1 h retention: "recent" stays
        assert await store.prune_sessions(now) == PRUNE_BATCH
        assert await store.prune_sessions(now) == 2
        assert await store.prune_sessions(now) == 0
    finally:
        await store.close()
    assert _sessions(tmp_path / DB_FILE) == ["open", "recent"]


async def test_a_session_write_prunes_by_itself(tmp_path: Path) -> None:
    """No timer: the first session write after a start (then one a minute) prunes."""
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    store = SQLiteStore(tmp_path)
    await store.open()
    await store.session_started("ancient", "core", "alice", "c-1", long_ago)
    await store.session_ended("ancient", long_ago, 1000)
    await store.close()
    store = SQLiteStore(tmp_path)
    await store.open()
    try:
        await store.session_started("new", "core", "alice", "c-1", datetime.now(UTC))
    finally:
        await store.close()
    assert _sessions(tmp_path / DB_FILE) == ["new"]

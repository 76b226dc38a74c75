"""The presence heartbeat in both stores: `alive_at`, and what a restart makes of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.store import PresenceRecord, RedisStore, SQLiteStore, Store
from server.store.base import AliveMark

SEEN = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Store
    if request.param == "sqlite":
        opened = SQLiteStore(tmp_path / "data")
    else:
        opened = RedisStore(request.getfixturevalue("redis_url"))
    await opened.open()
    yield opened
    await opened.close()


async def _record(store: Store, user: str) -> PresenceRecord:
    (record,) = [r for r in await store.load_presence("core") if r.user == user]
    return record


async def test_heartbeat_sets_alive_at_of_known_users_only(store: Store) -> None:
    await store.record_user("core", "alice", "Alice")
    await store.save_presence(
        PresenceRecord("core", "alice", "Alice", "online", None, SEEN, alive_at=SEEN)
    )
    later = SEEN + timedelta(minutes=5)
    await store.mark_alive([AliveMark("core", "alice", later), AliveMark("core", "ghost", later)])
    await store.mark_alive([])
    alice = await _record(store, "alice")
    assert (alice.status, alice.last_seen, alice.alive_at) == ("online", SEEN, later)
    assert [r.user for r in await store.load_presence("core")] == ["alice"]
    # A save without alive_at keeps it.
    await store.save_presence(PresenceRecord("core", "alice", "Alice", "away", None, None))
    assert (await _record(store, "alice")).alive_at == later


async def test_a_restart_makes_the_heartbeat_last_seen_sqlite(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    await store.open()
    try:
        for user in ("online", "offline", "never-beat"):
            await store.record_user("core", user, user)
        alive = SEEN + timedelta(hours=1)
        await store.save_presence(
            PresenceRecord("core", "online", "o", "busy", None, SEEN, alive_at=SEEN)
        )
        await store.mark_alive([AliveMark("core", "online", alive)])
        await store.save_presence(
            PresenceRecord("core", "offline", "f", "offline", None, SEEN, alive_at=alive)
        )
        await store.save_presence(PresenceRecord("core", "never-beat", "n", "online", None, SEEN))
        await store.reset_presence()
        records = {r.user: (r.status, r.last_seen) for r in await store.load_presence("core")}
        assert records == {
            "online": ("offline", alive),  # cut off by the crash: last known alive
            "offline": ("offline", SEEN),  # went offline before: left alone
            "never-beat": ("offline", SEEN),  # no heartbeat: the stored value stays
        }
    finally:
        await store.close()


async def test_redis_last_seen_and_alive_at_never_move_back(redis_url: str) -> None:
    """Every node saves the team's view, and one node's may lag another's."""
    store = RedisStore(redis_url)
    await store.open()
    try:
        await store.record_user("core", "alice", "Alice")
        later = SEEN + timedelta(seconds=1)
        await store.save_presence(
            PresenceRecord("core", "alice", "Alice", "offline", None, later, alive_at=later)
        )
        await store.save_presence(
            PresenceRecord("core", "alice", "Alice", "offline", None, SEEN, alive_at=SEEN)
        )
        await store.mark_alive([AliveMark("core", "alice", SEEN)])
        alice = await _record(store, "alice")
        assert (alice.last_seen, alice.alive_at) == (later, later)
        # A fraction of a second after a whole second still counts as later.
        fraction = later + timedelta(microseconds=1)
        await store.save_presence(
            PresenceRecord("core", "alice", "Alice", "offline", None, fraction)
        )
        assert (await _record(store, "alice")).last_seen == fraction
    finally:
        await store.close()

"""The notes log and snapshot, on a real SQLite file and a real Redis: the same suite.

Appends, loads, and compactions that fold the log into one snapshot and drop exactly
what they folded; an update that arrived before the one it builds on stays logged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from server.store.base import Store
from server.store.notes_store import NotesStore, notes_store_for
from server.store.redis import RedisStore
from server.store.sqlite import SQLiteStore

MakeStore = Callable[[], Store]


@pytest.fixture(params=["sqlite", "redis"])
async def notes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[NotesStore]:
    store: Store
    if request.param == "sqlite":
        store = SQLiteStore(tmp_path / "data")
    else:
        store = RedisStore(request.getfixturevalue("redis_url"))
    await store.open()
    yield notes_store_for(store)
    await store.close()


def typed(words: list[str]) -> list[bytes]:
    """One update per word, each appended to the text, as one client types them."""
    doc: Doc[Any] = Doc(client_id=11)
    text = doc.get("notes", type=Text)
    updates = []
    for word in words:
        before = doc.get_state()
        text.insert(len(text), word)
        updates.append(doc.get_update(before))
    return updates


def text_of(doc: Doc[Any]) -> str:
    return str(doc.get("notes", type=Text))


async def test_appends_load_back_and_count_the_log(notes: NotesStore) -> None:
    updates = typed(["one ", "two ", "three"])
    counts = [await notes.append_notes("core", "plan", u, "alice") for u in updates]
    assert counts == [1, 2, 3]
    stored = await notes.load_notes("core", "plan")
    assert stored.snapshot is None
    assert stored.updates == updates
    doc, waiting = stored.rebuild()
    assert text_of(doc) == "one two three"
    assert waiting.held == []
    assert (await notes.load_notes("core", "other")).updates == []


async def test_compaction_folds_the_log_into_one_snapshot(notes: NotesStore) -> None:
    updates = typed([f"w{n} " for n in range(40)])
    for update in updates[:30]:
        await notes.append_notes("core", "plan", update, "alice")
    assert await notes.compact_notes("core", "plan")
    for update in updates[30:]:
        await notes.append_notes("core", "plan", update, "alice")
    stored = await notes.load_notes("core", "plan")
    assert stored.snapshot is not None
    assert len(stored.updates) == 10
    doc, _ = stored.rebuild()
    assert text_of(doc) == "".join(f"w{n} " for n in range(40))
    assert await notes.compact_notes("core", "plan")
    assert (await notes.load_notes("core", "plan")).updates == []
    assert not await notes.compact_notes("core", "plan")  # nothing logged: nothing to do


async def test_an_update_ahead_of_its_cause_stays_logged_through_compaction(
    notes: NotesStore,
) -> None:
    first, second, third = typed(["a", "b", "c"])
    await notes.append_notes("core", "plan", first, "alice")
    await notes.append_notes("core", "plan", third, "alice")  # "b" is still on its way
    assert await notes.compact_notes("core", "plan")
    stored = await notes.load_notes("core", "plan")
    assert stored.updates == [third]
    doc, waiting = stored.rebuild()
    assert text_of(doc) == "a"
    assert len(waiting.held) == 1
    await notes.append_notes("core", "plan", second, "bob")
    doc, waiting = (await notes.load_notes("core", "plan")).rebuild()
    assert text_of(doc) == "abc"
    assert waiting.held == []

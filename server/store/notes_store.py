"""The notes store that lives beside the server's store (see `notes_base`)."""

from __future__ import annotations

from server.store.base import Store
from server.store.notes_base import COMPACT_AFTER, NotesStore, StoredNotes, notes_channel
from server.store.notes_redis import RedisNotes
from server.store.notes_sqlite import SQLiteNotes
from server.store.redis import RedisStore
from server.store.sqlite import SQLiteStore


def notes_store_for(store: Store) -> NotesStore:
    """The notes store in the same SQLite file or Redis as `store`."""
    if isinstance(store, SQLiteStore):
        return SQLiteNotes(store)
    if isinstance(store, RedisStore):
        return RedisNotes(store)
    raise TypeError(f"no notes store for {type(store).__name__}")


__all__ = [
    "COMPACT_AFTER",
    "NotesStore",
    "StoredNotes",
    "notes_channel",
    "notes_store_for",
]

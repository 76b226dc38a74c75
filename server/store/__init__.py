"""Persistence behind one protocol, so the server never knows which store it runs on."""

from server.store.base import BoardRecord, PresenceRecord, Store
from server.store.sqlite import SQLiteStore

__all__ = ["BoardRecord", "PresenceRecord", "SQLiteStore", "Store"]

"""Persistence behind one protocol, so the server never knows which store it runs on."""

from server.store.base import BoardRecord, PresenceRecord, Store
from server.store.redis import CellEvent, RedisStore, board_channel
from server.store.sqlite import SQLiteStore

__all__ = [
    "BoardRecord",
    "CellEvent",
    "PresenceRecord",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "board_channel",
]

"""Persistence behind one protocol, so the server never knows which store it runs on."""

from server.store.base import BoardRecord, PresenceRecord, Store
from server.store.redis import RedisStore
from server.store.sqlite import SQLiteStore
from server.wire import CellEvent, board_channel

__all__ = [
    "BoardRecord",
    "CellEvent",
    "PresenceRecord",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "board_channel",
]

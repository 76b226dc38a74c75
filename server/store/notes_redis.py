"""Notes in Redis, shared by every node (see `notes_store` for the log and snapshot).

    {p}t:{team}:b:{board}:notes:snap   string  the snapshot, base64
    {p}t:{team}:b:{board}:notes:log    list    updates since the snapshot, base64, oldest first

An append is one MULTI: RPUSH to the log and PUBLISH on the board's notes channel
(`{"node", "by", "u"}`), so an update is on the channel only if it is stored, and every
node that watches the board applies it. A node that missed messages (its subscription
broke) reads the log again (`ClusterSync.on_resync`), so none is lost; a node that dies
after the append lost nothing, and one that dies before it never acked.

A compaction reads the snapshot and the first N log entries under WATCH of the snapshot,
rebuilds the document from them, and in one MULTI sets the snapshot, trims exactly those
N from the head of the log and appends again any of them still waiting for an update
they build on: appends go to the tail meanwhile, and a concurrent compaction on another
node makes this one's EXEC fail instead of dropping anything twice.
"""

from __future__ import annotations

import base64

from redis.exceptions import WatchError

from server.redis_util import awaited, compact_json
from server.store.notes_base import StoredNotes, notes_channel
from server.store.redis import RedisStore


class RedisNotes:
    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def _key(self, team: str, board: str) -> str:
        return f"{self._store.prefix}t:{team}:b:{board}:notes"

    async def load_notes(self, team: str, board: str) -> StoredNotes:
        key = self._key(team, board)
        pipe = self._store.client.pipeline(transaction=True)
        pipe.get(f"{key}:snap")
        pipe.lrange(f"{key}:log", 0, -1)
        snapshot, log = await pipe.execute()
        return StoredNotes(
            base64.b64decode(snapshot) if snapshot else None,
            [base64.b64decode(entry) for entry in log],
        )

    async def append_notes(self, team: str, board: str, update: bytes, by: str) -> int:
        text = base64.b64encode(update).decode()
        message = compact_json({"node": self._store.node, "by": by, "u": text})
        pipe = self._store.client.pipeline(transaction=True)
        pipe.rpush(f"{self._key(team, board)}:log", text)
        pipe.publish(notes_channel(self._store.prefix, team, board), message)
        length, _ = await pipe.execute()
        return int(length)

    async def compact_notes(self, team: str, board: str) -> bool:
        key = self._key(team, board)
        async with self._store.client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(f"{key}:snap")
                snapshot = await pipe.get(f"{key}:snap")
                log = await awaited(pipe.lrange(f"{key}:log", 0, -1))
                if not log:
                    return False
                stored = StoredNotes(
                    base64.b64decode(snapshot) if snapshot else None,
                    [base64.b64decode(entry) for entry in log],
                )
                snapshot, waiting = stored.compacted()
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(f"{key}:snap", base64.b64encode(snapshot).decode())
                pipe.ltrim(f"{key}:log", len(log), -1)
                for update in waiting:
                    pipe.rpush(f"{key}:log", base64.b64encode(update).decode())
                await pipe.execute()
            except WatchError:
                return False
        return True

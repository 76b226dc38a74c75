"""Whether this process can serve now: its store answers, and it is not draining.

`/healthz` says the process is alive (a restart helps only when it is not); `/readyz`
says whether a load balancer should send it clients. A store that does not answer, or
a shutdown under way, makes it answer 503, and the balancer moves new clients elsewhere.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from typing import Final

from redis.exceptions import RedisError

from server.store.base import Store
from server.store.redis import RedisStore, without_password
from server.store.sqlite import SQLiteStore

PROBE_TIMEOUT_S: Final = 2.0
"""Longer than this and the store counts as unavailable: a probe must answer in time."""


@dataclass(frozen=True, slots=True)
class Readiness:
    """The answer to `/readyz`: ready, or why not (one line)."""

    ready: bool
    status: str
    """`ok`, `draining` or `unavailable`."""
    reason: str = ""


READY: Final = Readiness(True, "ok")
DRAINING: Final = Readiness(False, "draining", "shutting down: new clients go elsewhere")


async def readiness(store: Store, draining: bool, timeout_s: float = PROBE_TIMEOUT_S) -> Readiness:
    """Draining beats everything; otherwise the store must answer within `timeout_s`."""
    if draining:
        return DRAINING
    try:
        async with asyncio.timeout(timeout_s):
            problem = await _store_problem(store)
    except TimeoutError:
        problem = f"the store did not answer within {timeout_s:g} s"
    return READY if problem is None else Readiness(False, "unavailable", problem)


async def _store_problem(store: Store) -> str | None:
    if isinstance(store, RedisStore):
        try:
            await store.ping()
        except (RedisError, OSError, RuntimeError) as exc:
            return f"redis at {without_password(store.url)}: {exc}"
        return None
    if isinstance(store, SQLiteStore):
        return await asyncio.to_thread(sqlite_problem, store)
    return None  # a store with no probe (tests' own) is taken at its word


def sqlite_problem(store: SQLiteStore) -> str | None:
    """Read the store's epoch through a new connection to its file: this fails when the
    file was deleted, moved, replaced or damaged, or its disk is gone, though the open
    connections would still read their unlinked copy."""
    uri = f"{store.path.resolve().as_uri()}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=1.0)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"database {store.path}: {exc}"
    if row is None or row[0] != store.epoch:
        return f"database {store.path} is not the one this server opened (epoch changed)"
    return None

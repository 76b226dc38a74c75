"""One writer task that commits queued jobs in small groups, one transaction per group.

SQLite allows one writer at a time and a commit costs a sync; grouping the jobs that
arrive while the previous commit runs amortises both without adding a timer to the
path. A job is an async function of the connection that only runs statements, so it can
be re-run: when one job of a group fails, the group is rolled back and each job is
retried alone, and only the faulty one fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiosqlite

logger = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[aiosqlite.Connection], Awaitable[Any]]


class WriterClosed(RuntimeError):
    """The store is closing; the job was not run."""


class GroupCommitWriter:
    def __init__(self, db: aiosqlite.Connection, max_batch: int = 500) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="store-writer")

    async def submit(self, job: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run `job` inside the next group transaction; return once that transaction committed."""
        if self._closing:
            raise WriterClosed("store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return await future

    async def close(self) -> None:
        """Commit everything already queued, then stop."""
        self._closing = True
        if self._task is None:
            return
        self._queue.put_nowait((_stop, asyncio.get_running_loop().create_future()))
        await self._task

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            stop = any(job is _stop for job, _ in batch)
            batch = [(job, future) for job, future in batch if job is not _stop]
            if batch:
                await self._commit_group(batch)
            if stop:
                while not self._queue.empty():
                    _, future = self._queue.get_nowait()
                    if not future.done():
                        future.set_exception(WriterClosed("store is closed"))
                return

    async def _commit_group(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._transaction([job for job, _ in batch])
        except Exception:
            if len(batch) == 1:
                logger.exception("store write failed")
                _settle(batch[0][1], exc=RuntimeError("store write failed"))
                return
            for job, future in batch:
                await self._commit_group([(job, future)])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)

    async def _transaction(self, jobs: list[Job]) -> list[Any]:
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            results = [await job(self._db) for job in jobs]
            await self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await self._db.execute("ROLLBACK")
            raise
        self.commits += 1
        return results


async def _stop(db: aiosqlite.Connection) -> None:
    """Sentinel job: never run, marks the end of the queue."""


def _settle(
    future: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)

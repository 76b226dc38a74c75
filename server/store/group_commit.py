"""One writer task that commits queued work in small groups, one transaction per group.

SQLite allows one writer at a time and a commit costs a sync; grouping the work that
arrives while the previous commit runs amortises both without adding a timer to the
path. Work comes in two shapes: a job (an async function of the connection) or an item
for a batch runner, which handles all consecutive items of a group in one call, so a
group of 300 cell ops costs a handful of round trips to the database thread, not 300.

Work only runs statements, so it can be re-run: when a group fails, it is rolled back
and each piece of work is retried alone, so only the faulty one fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, TypeVar

import aiosqlite

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
Job = Callable[[aiosqlite.Connection], Awaitable[Any]]
BatchRunner = Callable[[aiosqlite.Connection, Sequence[Any]], Awaitable[Sequence[Any]]]


class WriterClosed(RuntimeError):
    """The store is closing; the work was not run."""


@dataclass(slots=True)
class _Work:
    runner: BatchRunner
    item: Any
    future: asyncio.Future[Any]


async def _run_jobs(db: aiosqlite.Connection, jobs: Sequence[Job]) -> list[Any]:
    return [await job(db) for job in jobs]


class GroupCommitWriter:
    def __init__(self, db: aiosqlite.Connection, max_group: int = 500) -> None:
        self.on_commit: Callable[[float, int], None] | None = None
        """Called with (seconds, writes) after each group commit."""
        self._db = db
        self._max_group = max_group
        self._queue: asyncio.Queue[_Work | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="store-writer")

    async def submit(self, job: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run `job` inside the next group transaction; return once that transaction committed."""
        return await self.submit_item(_run_jobs, job)  # type: ignore[no-any-return]

    async def submit_item(self, runner: BatchRunner, item: Any) -> Any:
        """Queue `item` for `runner`, which gets all neighbouring items of its group at once."""
        if self._closing:
            raise WriterClosed("store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Work(runner, item, future))
        return await future

    async def close(self) -> None:
        """Commit everything already queued, then stop."""
        self._closing = True
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            group = [] if first is None else [first]
            stop = first is None
            while not stop and len(group) < self._max_group and not self._queue.empty():
                work = self._queue.get_nowait()
                if work is None:
                    stop = True
                else:
                    group.append(work)
            if group:
                await self._commit_group(group)
            if stop:
                return

    async def _commit_group(self, group: list[_Work]) -> None:
        try:
            results = await self._transaction(group)
        except Exception:
            if len(group) == 1:
                logger.exception("store write failed")
                _settle(group[0].future, exc=RuntimeError("store write failed"))
                return
            for work in group:
                await self._commit_group([work])
            return
        for work, result in zip(group, results, strict=True):
            _settle(work.future, result=result)

    async def _transaction(self, group: list[_Work]) -> list[Any]:
        started = time.perf_counter()
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            results: list[Any] = []
            for runner, run in groupby(group, key=lambda work: work.runner):
                items = [work.item for work in run]
                produced = await runner(self._db, items)
                if len(produced) != len(items):
                    raise RuntimeError("batch runner returned the wrong number of results")
                results.extend(produced)
            await self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await self._db.execute("ROLLBACK")
            raise
        self.commits += 1
        if self.on_commit is not None:
            self.on_commit(time.perf_counter() - started, len(group))
        return results


def _settle(
    future: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)

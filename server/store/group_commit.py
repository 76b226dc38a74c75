"""One writer thread that commits queued work in small groups, one transaction per group.

SQLite allows one writer at a time and a commit costs a sync; grouping the work that
arrives while the previous commit runs amortises both without adding a timer to the
path. Work comes in two shapes: a job (a function of the connection) or an item for a
batch runner, which handles all consecutive items of a group in one call, so a group of
300 cell ops costs a handful of statements, not 300.

A whole group (BEGIN, its statements, COMMIT, and the retry described below) is one
call on the writer's own thread and connection. Every round trip between the event loop
and that thread waits for a loop iteration, so on a busy server the number of round
trips, not SQLite, sets the ack latency; one per group is the least there can be.

Work only runs statements, so it can be re-run: when a group fails, it is rolled back
and each piece of work is retried alone, so only the faulty one fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby
from typing import Any, TypeVar

from server.logs import RateLimitedLog

logger = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
BatchRunner = Callable[[sqlite3.Connection, Sequence[Any]], Sequence[Any]]


class WriterClosed(RuntimeError):
    """The store is closing; the work was not run."""


class StoreWriteFailed(RuntimeError):
    """The work's transaction failed (`__cause__` is the database's error).

    The writer has already logged it, rate-limited, so callers need not log it again: a
    full disk fails every write, and one traceback per refused edit buried the log.
    """


@dataclass(slots=True)
class _Work:
    runner: BatchRunner
    item: Any
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _Outcome:
    """What a group's call on the writer thread did, for the loop to report."""

    results: list[tuple[bool, Any]] = field(default_factory=list)
    """Per work, in order: (True, result) or (False, the exception)."""
    commits: list[tuple[float, int]] = field(default_factory=list)
    """(seconds, writes) of each transaction that committed."""


def _run_jobs(db: sqlite3.Connection, jobs: Sequence[Job]) -> list[Any]:
    return [job(db) for job in jobs]


class GroupCommitWriter:
    def __init__(self, connect: Callable[[], sqlite3.Connection], max_group: int = 500) -> None:
        self.on_commit: Callable[[float, int], None] | None = None
        """Called on the event loop with (seconds, writes) after each group commit."""
        self._connect = connect
        self._max_group = max_group
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._db: sqlite3.Connection | None = None
        self._pending: deque[_Work] = deque()
        self._busy = False  # a group is scheduled or running on the writer thread
        self._closing = False
        self._drained: asyncio.Future[None] | None = None
        self._failures = RateLimitedLog(logger)
        self.commits = 0

    async def open(self) -> None:
        """Connect on the writer thread, which then owns the connection."""
        loop = asyncio.get_running_loop()
        self._db = await loop.run_in_executor(self._executor, self._connect)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on the writer thread outside any group (setup, before any writes)."""
        db = self._require_db()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, db)

    async def submit(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` inside the next group transaction; return once that transaction committed."""
        return await self.submit_item(_run_jobs, job)  # type: ignore[no-any-return]

    async def submit_item(self, runner: BatchRunner, item: Any) -> Any:
        """Queue `item` for `runner`, which gets all neighbouring items of its group at once."""
        if self._closing:
            raise WriterClosed("store is closed")
        self._require_db()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Work(runner, item, future))
        if not self._busy:
            # Start on the next iteration, so all work submitted in this one joins the group.
            self._busy = True
            loop.call_soon(self._next_group)
        return await future

    async def close(self) -> None:
        """Commit everything already queued, then close the connection and stop the thread."""
        self._closing = True
        loop = asyncio.get_running_loop()
        if self._busy:
            if self._drained is None:
                self._drained = loop.create_future()
            await asyncio.shield(self._drained)
        db, self._db = self._db, None
        if db is not None:
            await loop.run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=True)
        self._failures.flush()

    def _require_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise WriterClosed("store is not open")
        return self._db

    # --- on the event loop --------------------------------------------------------------

    def _next_group(self) -> None:
        if not self._pending:
            self._busy = False
            if self._drained is not None and not self._drained.done():
                self._drained.set_result(None)
            return
        group = [self._pending.popleft() for _ in range(min(self._max_group, len(self._pending)))]
        loop = asyncio.get_running_loop()
        try:
            running = self._executor.submit(self._run_group, group)
        except RuntimeError as exc:  # the executor was shut down under us
            failed: Future[_Outcome] = Future()
            failed.set_exception(exc)
            self._group_done(group, failed)
            return
        running.add_done_callback(partial(self._wake_loop, loop, group))

    def _group_done(self, group: list[_Work], running: Future[_Outcome]) -> None:
        try:
            outcome = running.result()
        except BaseException as exc:
            outcome = _Outcome(results=[(False, exc)] * len(group))
        # Hand the thread the next group before settling this one: it works while we settle.
        self._next_group()
        for seconds, writes in outcome.commits:
            self.commits += 1
            if self.on_commit is not None:
                try:
                    self.on_commit(seconds, writes)
                except Exception:
                    logger.exception("commit observer failed")
        for work, (ok, value) in zip(group, outcome.results, strict=True):
            if ok:
                _settle(work.future, result=value)
            else:
                self._report(value)
                error = StoreWriteFailed("store write failed")
                error.__cause__ = value
                _settle(work.future, exc=error)

    def _report(self, exc: BaseException) -> None:
        """One line per kind of failure per 10 s; the traceback only at debug level."""
        kind = f"{type(exc).__name__}: {exc}"
        self._failures.log(logging.ERROR, kind, "store write failed: %s", kind)
        logger.debug("store write failed", exc_info=exc)

    def _wake_loop(
        self, loop: asyncio.AbstractEventLoop, group: list[_Work], running: Future[_Outcome]
    ) -> None:
        """Writer thread, after a group: report to the loop, the one hop back."""
        with contextlib.suppress(RuntimeError):  # the loop is closed; nobody is waiting
            loop.call_soon_threadsafe(self._group_done, group, running)

    # --- on the writer thread -----------------------------------------------------------

    def _run_group(self, group: list[_Work]) -> _Outcome:
        outcome = _Outcome()
        try:
            results = self._transaction(group, outcome)
        except Exception as exc:
            if len(group) == 1:
                outcome.results.append((False, exc))
                return outcome
            for work in group:
                alone = self._run_group([work])
                outcome.results.extend(alone.results)
                outcome.commits.extend(alone.commits)
            return outcome
        outcome.results.extend((True, result) for result in results)
        return outcome

    def _transaction(self, group: list[_Work], outcome: _Outcome) -> list[Any]:
        db = self._require_db()
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        try:
            results: list[Any] = []
            for runner, run in groupby(group, key=lambda work: work.runner):
                items = [work.item for work in run]
                produced = runner(db, items)
                if len(produced) != len(items):
                    raise RuntimeError("batch runner returned the wrong number of results")
                results.extend(produced)
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        outcome.commits.append((time.perf_counter() - started, len(group)))
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

"""Grouped cell writes on a real redis-server: fewer script calls, the same answers.

A node's concurrent `apply_cell_op`/`apply_cell_ops` calls go out as one script call per
group (server/store/redis.py). These check that a group answers, stores and publishes
exactly what the calls would one by one, that a retry after a lost reply does not apply
anything twice, and that one failing request leaves the rest of its group alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from server.redis_util import awaited
from server.store import BoardRecord, RedisStore
from server.store import redis as redis_store
from server.store.base import AppliedOp
from server.wire import board_channel
from tests.support.redis_server import RedisServer
from tests.unit.test_redis_store import Subscriber
from tui_collab.cells import CellMap, CellOp

BOARDS = (("core", "plan"), ("core", "road"), ("ops", "plan"))
"""Three boards, two teams: a group spans them all."""

Call = tuple[str, str, list[CellOp], bool]
"""(team, board, ops, single): one apply_cell_op (single) or apply_cell_ops call."""


def random_calls(seed: int, count: int) -> list[Call]:
    """Single ops and small batches on few cells, with clashing clocks, clients and values,
    so that many ops lose and ties go to the client id and then the value."""
    rng = random.Random(seed)
    calls: list[Call] = []
    for n in range(count):
        team, board = rng.choice(BOARDS)
        ops = [
            CellOp(
                rng.randrange(3),
                rng.randrange(2),
                rng.choice(["", "a", "b", "日", f"v{n}"]),
                rng.choice([1, 2, 3, 2**62]),
                rng.choice(["c1", "c2", "é"]),
                rng.choice(["ada", "bob"]),
                at=rng.choice([0, 1_700_000_000_000 + n]),
            )
            for _ in range(1 if rng.random() < 0.7 else rng.randint(1, 5))
        ]
        calls.append((team, board, ops, len(ops) == 1 and rng.random() < 0.9))
    return calls


async def run_call(store: RedisStore, call: Call) -> list[AppliedOp]:
    team, board, ops, single = call
    if single:
        return [await store.apply_cell_op(team, board, ops[0])]
    return await store.apply_cell_ops(team, board, ops)


async def evalsha_calls(url: str) -> int:
    async with Redis.from_url(url, decode_responses=True) as raw:
        stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def open_store(url: str, prefix: str) -> RedisStore:
    """A store with the test's boards; the node name is fixed, so events compare equal."""
    store = RedisStore(url, prefix=prefix, node="node-a")
    await store.open()
    for team, board in BOARDS:
        assert await store.create_board(BoardRecord(team, board, "B", 10, 10, "ada"))
    # Load the script (the first EVALSHA is answered NOSCRIPT), so counts are exact.
    await store.create_board(BoardRecord("core", "warm", "W", 1, 1, "ada"))
    await store.apply_cell_op("core", "warm", CellOp(0, 0, "w", 1, "c", "ada"))
    return store


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two stores on one Redis under different prefixes: one grouped, one a call at a time."""
    grouped, alone = await open_store(redis_url, "g:"), await open_store(redis_url, "s:")
    yield grouped, alone
    await grouped.close()
    await alone.close()


@pytest.mark.parametrize("seed", range(3))
async def test_a_group_answers_stores_and_publishes_as_one_call_at_a_time(
    stores: tuple[RedisStore, RedisStore], redis_url: str, seed: int
) -> None:
    grouped, alone = stores
    calls = random_calls(seed, 120)
    events = {
        (prefix, team, board): Subscriber(redis_url, board_channel(prefix, team, board))
        for prefix in ("g:", "s:")
        for team, board in BOARDS
    }
    async with contextlib.AsyncExitStack() as stack:
        for sub in events.values():
            await stack.enter_async_context(sub)
        before, scripts_before = await evalsha_calls(redis_url), grouped.cell_scripts
        together = await asyncio.gather(*(run_call(grouped, call) for call in calls))
        assert await evalsha_calls(redis_url) - before == grouped.cell_scripts - scripts_before
        assert grouped.cell_scripts - scripts_before < len(calls) / 10
        one_by_one = [await run_call(alone, call) for call in calls]
        assert together == one_by_one

        # The LWW rule as the client applies it: per board, in call order.
        maps = {(team, board): CellMap() for team, board in BOARDS}
        for (team, board, ops, _), results in zip(calls, together, strict=True):
            assert [maps[(team, board)].apply(op) for op in ops] == [r.applied for r in results]
        for team, board in BOARDS:
            stored = await grouped.load_cells(team, board)
            assert {(c.x, c.y): c.stamp for c in stored} == {
                (c.x, c.y): c.stamp for c in maps[(team, board)]
            }
            assert stored == await alone.load_cells(team, board)
            assert await grouped.cell_history(team, board, 0, 0) == await alone.cell_history(
                team, board, 0, 0
            )
            # One event per single op that won and per batch with a winner, as before.
            expected = sum(
                any(r.applied for r in results)
                for (t, b, _, _), results in zip(calls, together, strict=True)
                if (t, b) == (team, board)
            )
            published = await events[("g:", team, board)].take(expected)
            assert len(published) == expected
            assert published == await events[("s:", team, board)].take(expected)


class ReplyCutter:
    """A TCP proxy to Redis that, when armed, swallows the next reply and resets the
    client's connection: the command ran, its answer never arrived."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.armed = False
        self.cut = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, down=False, client=writer)),
            asyncio.create_task(self._pipe(up_reader, writer, down=True, client=writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        *,
        down: bool,
        client: asyncio.StreamWriter,
    ) -> None:
        try:
            while data := await source.read(65536):
                if down and self.armed:
                    self.armed = False
                    self.cut += 1
                    client.transport.abort()
                    return
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.transport.abort()


async def test_a_group_whose_reply_was_lost_is_not_applied_twice(
    redis_server: RedisServer,
) -> None:
    """redis-py resends the script call on the new connection; the group's stored reply
    answers it, so every caller gets what the first run did, and nothing runs twice."""
    cutter = ReplyCutter(redis_server.port)
    store = RedisStore(await cutter.start(), node="node-a")
    await store.open()
    reference = await open_store(redis_server.url, "s:")
    try:
        await store.create_board(BoardRecord("core", "plan", "Plan", 10, 10, "ada"))
        await store.create_board(BoardRecord("core", "road", "Road", 10, 10, "ada"))
        await store.apply_cell_op("core", "plan", CellOp(9, 9, "warm", 1, "c0", "ada"))
        await reference.apply_cell_op("core", "plan", CellOp(9, 9, "warm", 1, "c0", "ada"))
        # The same cell twice in one group: only the group's reply can tell that the
        # first op won before the second beat it.
        calls: list[Call] = [
            ("core", "plan", [CellOp(0, 0, "first", 1, "c1", "ada")], True),
            ("core", "plan", [CellOp(0, 0, "second", 2, "c2", "bob")], True),
            ("core", "road", [CellOp(n, 0, f"b{n}", 1, "c1", "ada") for n in range(4)], False),
            ("core", "plan", [CellOp(0, 0, "late", 1, "c3", "bob")], True),
        ]
        async with Subscriber(redis_server.url, board_channel("tc:", "core", "plan")) as events:
            before = await evalsha_calls(redis_server.url)
            cutter.armed = True
            results = await asyncio.gather(*(run_call(store, call) for call in calls))
            assert cutter.cut == 1
            assert await evalsha_calls(redis_server.url) - before == 2  # the call and its resend
            assert len(await events.take(3, timeout=0.3)) == 2  # each winner published once
        assert results == [await run_call(reference, call) for call in calls]
        assert [r.applied for r in results[0] + results[1] + results[3]] == [True, True, False]
        assert await store.board_version("core", "plan") == 3
        assert await store.board_version("core", "road") == 4
        assert len(await store.cell_history("core", "plan", 0, 0)) == 2
    finally:
        await store.close()
        await reference.close()
        await cutter.close()


async def test_a_failing_request_fails_alone(stores: tuple[RedisStore, RedisStore]) -> None:
    """A request that raises inside the script (here a cell's history key holds a string),
    or names no board, fails its own caller; the rest of the group is applied."""
    grouped, _ = stores
    raw = grouped._require()
    await awaited(raw.set("g:t:core:b:road:h:1,1", "not a list"))
    results = await asyncio.gather(
        grouped.apply_cell_op("core", "plan", CellOp(0, 0, "a", 1, "c", "ada")),
        grouped.apply_cell_ops(
            "core", "road", [CellOp(0, 1, "x", 1, "c", "ada"), CellOp(1, 1, "y", 1, "c", "ada")]
        ),
        grouped.apply_cell_op("core", "nowhere", CellOp(0, 0, "a", 1, "c", "ada")),
        grouped.apply_cell_ops("ops", "plan", [CellOp(2, 0, "b", 1, "c", "ada")]),
        grouped.apply_cell_op("core", "plan", CellOp(0, 1, "c", 1, "c", "ada")),
        return_exceptions=True,
    )
    assert grouped.cell_scripts == 2  # the warm-up, and this group
    assert results[0] == AppliedOp(True, 1)
    assert isinstance(results[1], ResponseError)
    assert "WRONGTYPE" in str(results[1])
    assert isinstance(results[2], LookupError)
    assert results[3] == [AppliedOp(True, 1)]
    assert results[4] == AppliedOp(True, 2)
    assert [c.value for c in await grouped.load_cells("core", "plan")] == ["a", "c"]
    assert await grouped.cell_history("core", "plan", 0, 1) != []
    # The next group is not held up by the failure.
    assert (await grouped.apply_cell_op("core", "road", CellOp(5, 5, "z", 1, "c", "ada"))).applied


async def test_an_idle_store_sends_a_lone_op_at_once_and_close_sends_the_queue(
    redis_url: str,
) -> None:
    store = await open_store(redis_url, "g:")
    started = asyncio.get_running_loop().time()
    assert (await store.apply_cell_op("core", "plan", CellOp(0, 0, "a", 1, "c", "ada"))).applied
    assert asyncio.get_running_loop().time() - started < 0.5
    pending = [
        asyncio.create_task(store.apply_cell_op("core", "plan", CellOp(n, 1, "b", 1, "c", "ada")))
        for n in range(5)
    ]
    await asyncio.sleep(0)
    await store.close()
    assert [task.result().applied for task in pending] == [True] * 5


async def test_a_group_stops_at_max_group_ops_and_a_larger_batch_goes_whole(
    stores: tuple[RedisStore, RedisStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis runs nothing else while a script runs, so a group is bounded; a batch is
    never split, so one over the bound goes alone."""
    grouped, _ = stores
    monkeypatch.setattr(redis_store, "MAX_GROUP_OPS", 5)
    before = grouped.cell_scripts

    def row(y: int, count: int) -> list[CellOp]:
        return [CellOp(x, y, f"{x}", 1, "c", "ada") for x in range(count)]

    results = await asyncio.gather(
        grouped.apply_cell_ops("core", "plan", row(0, 3)),
        grouped.apply_cell_ops("core", "plan", row(1, 3)),
        grouped.apply_cell_op("core", "plan", CellOp(0, 2, "s", 1, "c", "ada")),
        grouped.apply_cell_ops("core", "plan", row(3, 8)),
    )
    assert grouped.cell_scripts - before == 3  # [3], [3, 1], [8]
    assert [r.version for r in results[0] + results[1]] == [1, 2, 3, 4, 5, 6]
    assert results[2] == AppliedOp(True, 7)
    assert [r.version for r in results[3]] == list(range(8, 16))

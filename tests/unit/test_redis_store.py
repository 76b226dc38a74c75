"""The Redis store on a real redis-server: several nodes on one Redis, pub/sub, restarts.

The behaviour every store shares is in test_store.py; this is what only Redis has.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from server.redis_util import awaited
from server.startup import StartupError
from server.store import BoardRecord, CellEvent, PresenceRecord, RedisStore, board_channel
from server.store.base import SESSION_RETENTION_S, SessionRetention
from server.store.redis import OPEN_SESSION_TTL_S
from tests.support.redis_legacy import write_legacy_cells
from tests.support.redis_server import RedisServer
from tui_collab.cells import CellMap, CellOp, grid_digest

PLAN = BoardRecord("core", "plan", "Plan", 10, 10, "alice")


@pytest.fixture
async def nodes(redis_url: str) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two stores on one Redis, as two server processes would have."""
    first, second = RedisStore(redis_url, node="node-a"), RedisStore(redis_url, node="node-b")
    await first.open()
    await second.open()
    yield first, second
    await first.close()
    await second.close()


class Subscriber:
    """Collects the raw payloads published on one channel."""

    def __init__(self, url: str, channel: str) -> None:
        self.client = Redis.from_url(url, decode_responses=True)
        self.pubsub = self.client.pubsub()
        self.channel = channel

    async def __aenter__(self) -> Subscriber:
        await self.pubsub.subscribe(self.channel)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.client.aclose()

    async def take(self, count: int, timeout: float = 5.0) -> list[str]:
        payloads: list[str] = []
        deadline = time.monotonic() + timeout
        while len(payloads) < count and (left := deadline - time.monotonic()) > 0:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                payloads.append(message["data"])
        return payloads


def ops_on(cells: int, count: int, client: str) -> list[CellOp]:
    """`count` ops spread over `cells` cells, clocks rising so that many of them win."""
    return [
        CellOp(n % cells, 0, f"{client}-{n}", n // cells + 1, client, "alice") for n in range(count)
    ]


# --- events ---------------------------------------------------------------------------------


def test_cell_event_round_trip_and_compact_json() -> None:
    event = CellEvent("node-a", 7, CellOp(1, 2, 'ü "quoted"', 2**62, "c-1", "bob", 7))
    payload = event.encode()
    assert payload == (
        '{"node":"node-a","version":7,"op":{"x":1,"y":2,"value":"ü \\"quoted\\"",'
        '"clock":4611686018427387904,"client":"c-1","by":"bob"}}'
    )
    assert CellEvent.decode(payload) == event
    assert CellEvent.decode(payload.encode()) == event


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "[]",
        "{}",
        '{"node":"n","version":1}',
        '{"node":"n","version":"1","op":{"x":0,"y":0,"value":"","clock":1,"client":"c","by":"u"}}',
        '{"node":"n","version":1,"op":{"x":true,"y":0,"value":"","clock":1,"client":"c","by":"u"}}',
        '{"node":1,"version":1,"op":{"x":0,"y":0,"value":"","clock":1,"client":"c","by":"u"}}',
    ],
)
def test_cell_event_decode_refuses_junk(junk: str) -> None:
    with pytest.raises(ValueError, match="not a cell event"):
        CellEvent.decode(junk)


def test_board_channel_is_per_prefix_team_and_board() -> None:
    assert board_channel("tc:", "core", "plan") == "tc:t:core:b:plan:events"
    names = {
        board_channel(p, t, b) for p in ("tc:", "x:") for t in ("core", "rivals") for b in "ab"
    }
    assert len(names) == 8


async def test_published_payload_is_exactly_the_event_encoding(
    nodes: tuple[RedisStore, RedisStore], redis_url: str
) -> None:
    first, _ = nodes
    await first.create_board(PLAN)
    async with Subscriber(redis_url, board_channel("tc:", "core", "plan")) as sub:
        cell_op = CellOp(3, 4, 'ß "x" 日本 \U0001f600', 2**62, "c-1", "bob")
        result = await first.apply_cell_op("core", "plan", cell_op)
        assert not (await first.apply_cell_op("core", "plan", cell_op)).applied
        (payload,) = await sub.take(1)
        assert await sub.take(1, timeout=0.2) == []  # the losing op published nothing
    stored = CellOp(3, 4, cell_op.value, cell_op.clock, "c-1", "bob", result.version)
    assert payload == CellEvent("node-a", result.version, stored).encode()
    assert CellEvent.decode(payload) == CellEvent("node-a", 1, stored)


async def test_events_arrive_in_version_order_from_every_node(
    nodes: tuple[RedisStore, RedisStore], redis_url: str
) -> None:
    first, second = nodes
    await first.create_board(PLAN)
    async with Subscriber(redis_url, board_channel("tc:", "core", "plan")) as sub:
        # Each node on cells of its own: every op wins, whichever node's group goes first.
        results = await asyncio.gather(
            *(first.apply_cell_op("core", "plan", o) for o in ops_on(4, 60, "c-a")),
            *(second.apply_cell_op("core", "plan", replace(o, y=1)) for o in ops_on(4, 60, "c-b")),
        )
        applied = sum(r.applied for r in results)
        events = [CellEvent.decode(p) for p in await sub.take(applied)]
    assert [e.version for e in events] == list(range(1, applied + 1))
    assert {e.node for e in events} == {"node-a", "node-b"}
    for event in events:
        assert event.node == ("node-a" if event.op.client == "c-a" else "node-b")
        assert event.op.version == event.version


# --- several nodes on one Redis ---------------------------------------------------------------


async def test_epoch_is_shared_by_every_node_and_per_prefix(redis_url: str) -> None:
    stores = [RedisStore(redis_url), RedisStore(redis_url), RedisStore(redis_url, prefix="other:")]
    with pytest.raises(RuntimeError, match="not open"):
        _ = stores[0].epoch
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert stores[0].epoch == stores[1].epoch
        assert stores[0].epoch != stores[2].epoch
        assert stores[0].node != stores[1].node
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_concurrent_ops_from_two_nodes_converge(
    nodes: tuple[RedisStore, RedisStore],
) -> None:
    first, second = nodes
    await first.create_board(PLAN)
    mine, theirs = ops_on(5, 80, "c-a"), ops_on(5, 80, "c-b")
    # Both nodes write the same cells with the same clocks: the client id decides.
    results = await asyncio.gather(
        *(first.apply_cell_op("core", "plan", o) for o in mine),
        *(second.apply_cell_op("core", "plan", o) for o in theirs),
    )
    won = sorted(r.version for r in results if r.applied)
    assert won == list(range(1, len(won) + 1))
    expected = CellMap(mine + theirs)
    for store in nodes:
        cells = await store.load_cells("core", "plan")
        assert grid_digest(cells) == expected.digest()
        assert {c.client for c in cells} == {"c-b"}
        assert await store.board_version("core", "plan") == won[-1]


async def test_create_board_race_has_one_winner(nodes: tuple[RedisStore, RedisStore]) -> None:
    first, second = nodes
    for n in range(20):
        board = BoardRecord("core", f"b{n}", "Title", 3, 3, "alice")
        results = await asyncio.gather(
            *(node.create_board(board) for node in (first, second, first, second))
        )
        assert sorted(results) == [False, False, False, True]
    assert len(await second.list_boards("core")) == 20


async def test_a_node_starting_leaves_other_nodes_presence_alone(
    nodes: tuple[RedisStore, RedisStore],
) -> None:
    first, second = nodes
    seen = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    await first.record_user("core", "alice", "Alice")
    record = PresenceRecord("core", "alice", "Alice", "busy", '{"kind":"editing"}', seen)
    await first.save_presence(record)
    await second.reset_presence()
    assert await second.load_presence("core") == [record]


async def test_a_new_users_first_presence_follows_its_member_row(
    nodes: tuple[RedisStore, RedisStore],
) -> None:
    """A hello queues the member row, then the first presence row, as two tasks in that
    order (server/app.py `_record_user`); the presence script needs the row, and the two
    calls go out on different connections of the pool."""
    first, _ = nodes
    users = [f"u{n}" for n in range(200)]
    tasks = []
    for user in users:
        tasks.append(asyncio.create_task(first.record_user("core", user, user)))
        record = PresenceRecord("core", user, user, "online", None, None)
        tasks.append(asyncio.create_task(first.save_presence(record)))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    stored = {record.user: record.status for record in await first.load_presence("core")}
    assert stored == dict.fromkeys(users, "online")


async def test_board_version_and_ping(nodes: tuple[RedisStore, RedisStore]) -> None:
    first, second = nodes
    await first.ping()
    with pytest.raises(LookupError, match="no board"):
        await first.board_version("core", "plan")
    await first.create_board(PLAN)
    assert await second.board_version("core", "plan") == 0
    await first.apply_cell_op("core", "plan", CellOp(0, 0, "a", 1, "c", "u"))
    assert await second.board_version("core", "plan") == 1


async def test_sessions_expire(nodes: tuple[RedisStore, RedisStore], redis_url: str) -> None:
    first, _ = nodes
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    await first.session_started("s-1", "core", "alice", "c-1", at)
    await first.session_ended("never-started", at, 1000)
    async with Redis.from_url(redis_url, decode_responses=True) as raw:
        assert OPEN_SESSION_TTL_S - 5 < await raw.ttl("tc:session:s-1") <= OPEN_SESSION_TTL_S
        await first.session_ended("s-1", at, 1001)
        assert SESSION_RETENTION_S - 5 < await raw.ttl("tc:session:s-1") <= SESSION_RETENTION_S
        assert await awaited(raw.hgetall("tc:session:s-1")) == {
            "team": "core",
            "user": "alice",
            "client_id": "c-1",
            "started_at": at.isoformat(),
            "ended_at": at.isoformat(),
            "close_code": "1001",
        }
        assert not await raw.exists("tc:session:never-started")


async def test_sessions_are_kept_per_user_up_to_the_cap(redis_url: str) -> None:
    """The newest `per_user` records stay, indexed by start; the oldest go, ended or not."""
    store = RedisStore(redis_url, retention=SessionRetention(max_age_s=60, per_user=3))
    await store.open()
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    try:
        for n in range(5):
            await store.session_started(f"s-{n}", "core", "alice", "c-1", at.replace(minute=n))
        await store.session_ended("s-4", at.replace(minute=9), 1000)
        await store.session_started("b-0", "core", "bob", "c-2", at)
    finally:
        await store.close()
    async with Redis.from_url(redis_url, decode_responses=True) as raw:
        assert await raw.zrange("tc:t:core:u:alice:sessions", 0, -1) == ["s-2", "s-3", "s-4"]
        assert sorted(await raw.keys("tc:session:*")) == [
            "tc:session:b-0",
            "tc:session:s-2",
            "tc:session:s-3",
            "tc:session:s-4",
        ]
        assert 55 < await raw.ttl("tc:session:s-4") <= 60  # ended: the retention
        assert await raw.ttl("tc:session:s-3") > 60  # still open
        assert await raw.ttl("tc:t:core:u:alice:sessions") > 0


async def test_keys_stay_under_the_prefix(redis_url: str) -> None:
    store = RedisStore(redis_url, prefix="app1:")
    await store.open()
    try:
        await store.record_user("core", "alice", "Alice")
        await store.create_board(PLAN)
        await store.apply_cell_op("core", "plan", CellOp(0, 0, "a", 1, "c", "u"))
        await store.session_started("s", "core", "alice", "c", datetime.now(UTC))
    finally:
        await store.close()
    async with Redis.from_url(redis_url, decode_responses=True) as raw:
        keys = await raw.keys("*")
    assert keys
    assert all(k.startswith("app1:") for k in keys)


# --- the cell layout ------------------------------------------------------------------------


def legacy_ops() -> list[CellOp]:
    """Ops as layout 1 stored them, some overwritten, non-ASCII in every text field."""
    ops = [CellOp(n % 7, n % 5, f"v{n}", n + 1, "c-1", "alice") for n in range(40)]
    ops += [
        CellOp(8, 0, "日本, and a comma", 100, "é,client", "bøb"),
        CellOp(8, 1, "", 2**62, "c-2", "bob"),
        CellOp(0, 0, "loses", 1, "c-0", "bob"),
    ]
    return ops


async def make_legacy_data(redis_url: str) -> list[CellOp]:
    """A board whose cells are in layout 1, as an older release left them."""
    store = RedisStore(redis_url)
    await store.open()
    await store.create_board(PLAN)
    await store.close()
    ops = legacy_ops()
    async with Redis.from_url(redis_url, decode_responses=True) as raw:
        await raw.delete("tc:layout")
        await write_legacy_cells(raw, "tc:", "core", "plan", ops)
        assert await raw.exists("tc:t:core:b:plan:v", "tc:t:core:b:plan:c:8:0") == 2
    return ops


async def test_layout_1_cells_are_converted_on_open(redis_url: str) -> None:
    """Every cell, version and winner is there after the move, and only the new keys."""
    ops = await make_legacy_data(redis_url)
    expected = CellMap(ops)
    store = RedisStore(redis_url)
    await store.open()
    try:
        cells = await store.load_cells("core", "plan")
        assert grid_digest(cells) == expected.digest()
        assert [c.version for c in cells] == sorted(c.version for c in cells)
        assert cells[-1].version == await store.board_version("core", "plan") == 42
        assert [c for c in cells if c.x == 8] == [
            CellOp(8, 0, "日本, and a comma", 100, "é,client", "bøb", 41),
            CellOp(8, 1, "", 2**62, "c-2", "bob", 42),
        ]
        assert [c.version for c in await store.load_cells("core", "plan", since=40)] == [41, 42]
        # Last-writer-wins carries on against the moved cells.
        assert not (
            await store.apply_cell_op("core", "plan", CellOp(8, 1, "x", 5, "c", "u"))
        ).applied
        won = await store.apply_cell_op("core", "plan", CellOp(8, 0, "y", 101, "c", "u"))
        assert (won.applied, won.version) == (True, 43)
    finally:
        await store.close()
    async with Redis.from_url(redis_url, decode_responses=True) as raw:
        assert await raw.get("tc:layout") == "2"
        assert await raw.keys("tc:t:core:b:plan:c:*") == []
        assert not await raw.exists("tc:t:core:b:plan:v")
        assert await awaited(raw.hlen("tc:t:core:b:plan:cells")) == len(expected)


async def test_nodes_starting_at_once_convert_once(redis_url: str) -> None:
    ops = await make_legacy_data(redis_url)
    stores = [RedisStore(redis_url, node=f"node-{n}") for n in range(3)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        for store in stores:
            assert grid_digest(await store.load_cells("core", "plan")) == CellMap(ops).digest()
    finally:
        for store in stores:
            await store.close()


async def test_a_newer_layout_is_refused(redis_url: str) -> None:
    async with Redis.from_url(redis_url, decode_responses=True) as raw:
        await raw.set("tc:layout", "3")
    with pytest.raises(StartupError, match="layout 3, newer than this server's 2"):
        await RedisStore(redis_url).open()


# --- connection loss and restarts -------------------------------------------------------------


async def test_crash_and_restart_loses_no_acked_op(redis_server: RedisServer) -> None:
    """SIGKILL mid-stream and restart: writers carry on, and every acked op is there."""
    store = RedisStore(redis_server.url)
    await store.open()
    try:
        await store.create_board(PLAN)
        acked: list[CellOp] = []
        stop = asyncio.Event()

        async def writer(row: int) -> None:
            n = 0
            while not stop.is_set():
                cell_op = CellOp(n, row, "v", 1, f"c-{row}", "alice")
                result = await store.apply_cell_op("core", "plan", cell_op)
                assert result.applied  # every op has a cell of its own
                acked.append(cell_op)
                n += 1

        writers = [asyncio.create_task(writer(row)) for row in range(4)]
        while len(acked) < 200:
            await asyncio.sleep(0.002)
        redis_server.kill()
        killed_at = len(acked)
        redis_server.start()
        # The same instance carries on: it reconnects and reloads its scripts by itself.
        while len(acked) < killed_at + 200:
            await asyncio.sleep(0.002)
        stop.set()
        await asyncio.gather(*writers)

        cells = await store.load_cells("core", "plan")
        assert {(o.x, o.y) for o in acked} == {(c.x, c.y) for c in cells}
        assert [c.version for c in cells] == list(range(1, len(cells) + 1))
        assert await store.board_version("core", "plan") == len(cells) == len(acked)
    finally:
        await store.close()


async def test_a_retried_call_reports_what_its_first_attempt_did(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply lost after the script ran: the retry carries the same token and says so."""
    store = RedisStore(redis_url)
    await store.open()
    try:
        monkeypatch.setattr(store, "_nonce", lambda: "same-call")
        assert await store.create_board(PLAN)
        assert await store.create_board(PLAN)
        cell_op = CellOp(0, 0, "a", 1, "c", "u")
        first = await store.apply_cell_op("core", "plan", cell_op)
        again = await store.apply_cell_op("core", "plan", cell_op)
        assert first == again
        assert first.applied
        assert await store.board_version("core", "plan") == 1
        monkeypatch.undo()
        assert not await store.create_board(PLAN)
        assert not (await store.apply_cell_op("core", "plan", cell_op)).applied
    finally:
        await store.close()


async def test_a_restart_within_the_retry_window_is_ridden_out(
    redis_server: RedisServer,
) -> None:
    store = RedisStore(redis_server.url)
    await store.open()
    try:
        await store.create_board(PLAN)
        redis_server.stop()

        async def restart_soon() -> None:
            await asyncio.sleep(0.2)
            await asyncio.to_thread(redis_server.start)

        restarting = asyncio.create_task(restart_soon())
        result = await store.apply_cell_op("core", "plan", CellOp(0, 0, "a", 1, "c", "u"))
        await restarting
        assert (result.applied, result.version) == (True, 1)
    finally:
        await store.close()


async def test_an_outage_raises_instead_of_hanging(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    await store.open()
    try:
        await store.create_board(PLAN)
        redis_server.kill()
        started = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await store.apply_cell_op("core", "plan", CellOp(0, 0, "a", 1, "c", "u"))
        assert time.monotonic() - started < 5
        redis_server.start()
        await store.ping()
        assert (await store.apply_cell_op("core", "plan", CellOp(0, 0, "a", 1, "c", "u"))).applied
    finally:
        await store.close()


# --- the LWW rule, through Redis ----------------------------------------------------------------

_examples = itertools.count()

TEXT = st.sampled_from(["", "a", "B", "b", "é", "z", "\uffff", "\U00010000", "日"])

ops_strategy = st.lists(
    st.builds(
        CellOp,
        x=st.integers(0, 2),
        y=st.integers(0, 1),
        value=TEXT,
        clock=st.sampled_from([1, 2, 3, 2**53, 2**53 + 1, 2**62]),
        client=TEXT.filter(bool),
        by=st.sampled_from(["alice", "bob"]),
    ),
    max_size=25,
)


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops_strategy, data=st.data())
def test_redis_and_client_agree_in_any_order(
    redis_url: str, ops: list[CellOp], data: st.DataObject
) -> None:
    """Each example writes under a prefix of its own, so the shared server needs no flush."""
    order = data.draw(st.permutations(ops + ops[: len(ops) // 3]))
    prefix = f"h{next(_examples)}:"

    async def run() -> None:
        store = RedisStore(redis_url, prefix=prefix)
        await store.open()
        try:
            await store.create_board(PLAN)
            client = CellMap()
            version = 0
            for cell_op in order:
                result = await store.apply_cell_op("core", "plan", cell_op)
                assert result.applied == client.apply(cell_op)
                version += result.applied
                assert result.version == version
            stored = await store.load_cells("core", "plan")
            assert grid_digest(stored) == client.digest() == CellMap(ops).digest()
            assert [c.version for c in stored] == sorted({c.version for c in stored})
        finally:
            await store.close()

    asyncio.run(run())


@given(st.text(), st.text())
def test_utf8_byte_order_is_code_point_order(a: str, b: str) -> None:
    """Why a bytewise compare in Lua agrees with Python's str order (no surrogates in UTF-8)."""
    try:
        encoded = (a.encode(), b.encode())
    except UnicodeEncodeError:
        return  # a lone surrogate: neither Redis nor SQLite can store it
    assert (a < b) == (encoded[0] < encoded[1])


def test_a_password_in_the_redis_url_never_reaches_a_log_line() -> None:
    from server.store.redis import without_password

    assert without_password("redis://:s3cret@10.0.0.1:6379/0") == "redis://:***@10.0.0.1:6379/0"
    assert without_password("redis://app:pw@cache/1") == "redis://app:***@cache/1"
    assert without_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"

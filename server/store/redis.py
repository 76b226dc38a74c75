"""The scale-out store: every server process shares one Redis.

Key layout (`p` is the prefix, "tc:" by default; team, board and user ids are protocol
identifiers, which cannot contain ":", so no two keys collide):

    {p}epoch                      string  made once with SET NX; the same for every node
    {p}teams                      set     every team that has a user or a board
    {p}t:{team}:users             set     the team's user ids
    {p}t:{team}:u:{user}          hash    name, created_at, updated_at, status, activity,
                                          last_seen, alive_at (the presence heartbeat)
    {p}t:{team}:boards            zset    board id, scored by creation time (Redis clock, µs)
    {p}t:{team}:b:{board}         hash    title, width, height, created_by, created_at,
                                          version, token, widths (JSON {"x": width},
                                          absent while every column is the default)
    {p}t:{team}:b:{board}:cells   hash    field "x,y", value the cell (`_decode_cell`)
    {p}t:{team}:b:{board}:h:{x},{y}
                                  list    the cell's applied ops, newest first, at most
                                          `HISTORY_PER_CELL` (`cell_history`)
    {p}t:{team}:b:{board}:notes:snap
                                  string  the board's notes snapshot, base64
    {p}t:{team}:b:{board}:notes:log
                                  list    notes updates since the snapshot, base64
                                          (both: server/store/notes_redis.py)
    {p}done:{nonce}               string  a group's reply, for `BATCH_REPLY_TTL_MS`
    {p}layout                     string  the cell layout, `LAYOUT` (see `_migrate_layout`)
    {p}session:{id}               hash    team, user, client_id, started_at, ended_at,
                                          close_code; expires (see `session_started`)
    {p}t:{team}:u:{user}:sessions zset    the user's session ids by start (Unix seconds),
                                          the newest `SessionRetention.per_user` only

A cell is one field of its board's hash, its value one string:
`{version}[@{at}],{clock},{nonce},{len(client)},{len(by)},{client}{by}{value}` (lengths in
UTF-8 bytes; nonce is `[0-9a-z.]`, empty since groups keep their reply instead (see
`apply_cell_ops`), still read from older cells; `@{at}`, the op's time in Unix ms, is absent
in cells stored before it was kept, which read as at=0, so no migration). About 100 bytes
of Redis memory a cell, against about 400 for the hash per cell and index entry of
layout 1 (docs/operations.md).

History is one list per cell, not one per board: a per-cell cap is then one LTRIM in
the apply script, and `cell.history` reads one key. An entry is the cell's string
without its nonce; a list of 50 everyday entries takes about 2.7 KB (`MEMORY USAGE`:
the key, its listpack, ~50 bytes an entry), so a cell edited 50 times or more costs ~25
times its own size; a cell written once, one ~220-byte list. Boards are never deleted,
so neither are their lists.

Cell events (`CellEvent` for one op, `CellsEvent` for a batch) are published on
`board_channel(p, team, board)`.

Cell writes are grouped, as the SQLite store's group commit does: the `apply_cell_op` and
`apply_cell_ops` calls that arrive while this node's previous cell script is in flight go
out together as one script call (`apply_cell_ops.lua`), across boards and teams. Per
acked edit, a node then spends a fraction of a round trip's client work (building the
command, the pool, parsing the reply), which is most of what an edit costs a node beyond
its WebSocket frames. No timer: an idle store sends a call's ops at once. Each request in
a group still publishes its own event and gets its own result or error.

Durability is the Redis server's: with `appendonly yes` and `appendfsync always` a reply
is sent only after the write is fsynced to the AOF, which is what the `Store` contract
("a write returns once committed") needs. Redis must not evict these keys
(`maxmemory-policy noeviction`, the default).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import re
import secrets
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from server.redis_util import awaited, compact_json
from server.startup import StartupError, redis_error
from server.store.base import (
    AliveMark,
    AppliedOp,
    BoardRecord,
    PresenceRecord,
    SessionRetention,
)
from server.wire import board_channel, op_json
from tui_collab.cells import CellOp
from tui_collab.protocol import DEFAULT_COLUMN_WIDTH, HISTORY_PER_CELL

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT_S: Final = 2.0
MAX_CONNECTIONS: Final = 32
"""Connections one node keeps to Redis at most; more commands wait for a free one."""
POOL_WAIT_S: Final = 10.0
"""A reply slower than this raises; every script here runs in well under a millisecond."""
CONNECT_TIMEOUT_S: Final = 1.0
RETRIES: Final = 5
"""Reconnect attempts after a lost connection, with backoff: about 1 to 2 s in all, so a
Redis restart is ridden out and an outage surfaces as ConnectionError rather than a hang."""

OPEN_SESSION_TTL_S: Final = 30 * 24 * 3600
"""A session whose end is never recorded (its node crashed) still goes away by itself.
Ended sessions expire after the store's `SessionRetention.max_age_s`."""

LAYOUT: Final = 2
"""How cells are kept. 1: a hash per cell plus a version index per board (no `{p}layout`
key); 2: one hash per board. `open` converts older data (`_MIGRATE_BOARD`)."""

BATCH_REPLY_TTL_MS: Final = 60_000
"""How long a group's reply is kept for a retry of the same call: the client library
retries a lost reply within about 2 s (`RETRIES`); a minute rides out a Redis restart
too. About 100 bytes a group plus 1 a op meanwhile: ~6 MB at 1,000 groups a second."""

MAX_GROUP_OPS: Final = 2_000
"""Ops in one grouped script call at most (a lone larger batch still goes whole): Redis
runs nothing else while a script runs, a few µs an op, so a group stays a few ms."""

_BOARD_FIELDS: Final = ("title", "width", "height", "created_by", "version", "widths")
_USER_FIELDS: Final = ("name", "status", "activity", "last_seen", "alive_at")


def _lua(*names: str) -> str:
    """The scripts `server/store/lua/{name}.lua`, joined in order (helpers before a body)."""
    folder = resources.files("server.store") / "lua"
    return "".join((folder / f"{name}.lua").read_text(encoding="utf-8") for name in names)


# compare.lua: byte-order string and integer compares (Lua's own `<` follows the locale).
# latest.lua: keep_latest, which only moves a stored moment forward.
# merge.lua: merge_op, the per-op last-writer-wins merge (kept apart from the group
# script, which carries no other rule).
_APPLY_CELL_OPS: Final = _lua("compare", "merge", "apply_cell_ops")
_MIGRATE_BOARD: Final = _lua("migrate_board")
_CREATE_BOARD: Final = _lua("create_board")
_UPDATE_BOARD: Final = _lua("update_board")
_SAVE_PRESENCE: Final = _lua("compare", "latest", "save_presence")
_MARK_ALIVE: Final = _lua("compare", "latest", "mark_alive")
_START_SESSION: Final = _lua("start_session")
_END_SESSION: Final = _lua("end_session")


def without_password(url: str) -> str:
    """The URL fit for a log line, with every password in it masked.

    Covers each form redis-py reads a password from: the user info of redis://,
    rediss:// and unix:// URLs (`:secret@`, `user:secret@`) and the `password` query
    parameter (`?password=secret`; any parameter whose name mentions a password,
    secret, token or auth is masked too). A URL that cannot be parsed is not shown.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a Redis URL that cannot be parsed)"
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    query = _SECRET_QUERY.sub(r"\1***", parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    # Not urlunsplit: it would write unix:///path (an empty host) as unix:/path.
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return shown + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


_SECRET_QUERY: Final = re.compile(r"((?:^|&)[^&=]*(?:pass|secret|token|auth)[^&=]*=)[^&]*", re.I)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class _Scripts:
    apply_cell_ops: AsyncScript
    create_board: AsyncScript
    update_board: AsyncScript
    save_presence: AsyncScript
    mark_alive: AsyncScript
    start_session: AsyncScript
    end_session: AsyncScript


@dataclass(slots=True)
class _CellCall:
    """One `apply_cell_op` (`single`) or `apply_cell_ops` call waiting for its group."""

    team: str
    board: str
    ops: Sequence[CellOp]
    single: bool
    future: asyncio.Future[list[AppliedOp]]


def _flag(present: bool) -> str:
    return "1" if present else "0"


class RedisStore:
    """`Store` on a Redis shared by several server processes ("nodes").

    Every write is one command, one MULTI, or one Lua script, so each is atomic on its
    own and no lock is held across round trips. Lost connections are retried a few times
    with backoff (see `RETRIES`); after that the redis `ConnectionError` reaches the
    caller. Writes that are not idempotent by themselves (cell ops, board creation) carry
    a per-call token, so a retry of a call whose reply was lost reports what the first
    attempt did instead of running twice.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tc:",
        node: str | None = None,
        retention: SessionRetention | None = None,
    ) -> None:
        self.url = url
        self.retention = retention or SessionRetention()
        self.prefix = prefix
        self.node = node or f"n-{secrets.token_hex(6)}"
        self._node_json = compact_json(self.node)
        # Per instance and per call: a nonce must never match one stored by an earlier
        # process, even one that was given the same node name.
        # A stored nonce matters only next to an identical (clock, client, value), so a
        # short one (it is kept in every cell) is plenty.
        self._nonce_prefix = secrets.token_hex(5)
        self._calls = itertools.count(1)
        self._redis: Redis | None = None
        self._cells: Redis | None = None
        self._scripts: _Scripts | None = None
        self._epoch: str | None = None
        self._cell_calls: deque[_CellCall] = deque()
        self._cell_writer: asyncio.Task[None] | None = None
        self.cell_scripts = 0
        """Cell script calls made (one per group), for tests and benchmarks."""
        self._recording: dict[str, asyncio.Future[None]] = {}
        """Member rows on their way, by user key: a presence row waits for its user's."""

    # --- lifecycle ------------------------------------------------------------------

    @property
    def epoch(self) -> str:
        if self._epoch is None:
            raise RuntimeError("store is not open")
        return self._epoch

    async def open(self) -> None:
        """Connect and read the epoch; `StartupError` if Redis is unreachable or refuses."""
        shown = without_password(self.url)
        await self._probe(shown)
        try:
            await self._connect()
        except (RedisError, OSError) as exc:
            raise redis_error(shown, exc) from exc

    async def _probe(self, shown: str) -> None:
        """One PING without retries, so a Redis that is not there fails start-up at once
        (the pool's retries ride out a restart, which makes an absent Redis look slow)."""
        try:
            probe = Redis.from_url(
                self.url,
                socket_connect_timeout=CONNECT_TIMEOUT_S,
                socket_timeout=SOCKET_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise StartupError(
                f"--redis {shown} is not a Redis URL ({exc}): use redis://HOST:6379/0"
            ) from exc
        try:
            await awaited(probe.ping())
        except (RedisError, OSError) as exc:
            raise redis_error(shown, exc) from exc
        finally:
            await probe.aclose()

    async def _connect(self) -> None:
        # A bounded pool: a join storm of hundreds of clients must wait for one of a few
        # dozen connections, not open hundreds at once and time out connecting.
        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            # Only connection errors: a timeout may mean the command ran, and Redis
            # being slow is not helped by sending it more. BusyLoadingError (the AOF
            # is still loading after a restart) is a ConnectionError, so it waits too.
            retry=Retry(
                EqualJitterBackoff(cap=0.5, base=0.05),
                RETRIES,
                supported_errors=(RedisConnectionError,),
            ),
        )
        client = Redis.from_pool(pool)  # closing the client closes the pool
        try:
            key = f"{self.prefix}epoch"
            await client.set(key, f"e-{secrets.token_hex(8)}", nx=True)
            epoch = await client.get(key)
            await self._migrate_layout(client)
        except BaseException:
            await client.aclose()
            raise
        assert isinstance(epoch, str)
        self._epoch = epoch
        # EVALSHA; redis-py loads a script again when Redis answers NOSCRIPT (a restart
        # empties the script cache).
        # The cell writer has one call in flight at a time: it keeps one of the pool's
        # connections, which spares each group the pool's checkout and its liveness read.
        cells = client.client()
        self._scripts = _Scripts(
            apply_cell_ops=cells.register_script(_APPLY_CELL_OPS),
            create_board=client.register_script(_CREATE_BOARD),
            update_board=client.register_script(_UPDATE_BOARD),
            save_presence=client.register_script(_SAVE_PRESENCE),
            mark_alive=client.register_script(_MARK_ALIVE),
            start_session=client.register_script(_START_SESSION),
            end_session=client.register_script(_END_SESSION),
        )
        self._redis, self._cells = client, cells
        logger.info(
            "redis store open at %s (node %s, epoch %s)",
            without_password(self.url),
            self.node,
            epoch,
        )

    async def _migrate_layout(self, client: Redis) -> None:
        """Bring the cells to `LAYOUT`; `StartupError` if they are in a newer one.

        Each board is converted by one script, so a reader sees it wholly old or wholly
        new, and nodes starting at once do no harm (the second finds nothing to move).
        Nodes of the old release must be stopped first: cells they write afterwards are
        in keys this layout no longer reads.
        """
        layout_key = f"{self.prefix}layout"
        stored = await client.get(layout_key)
        layout = 1 if stored is None else int(stored)
        if layout > LAYOUT:
            raise StartupError(
                f"Redis at {without_password(self.url)} (prefix {self.prefix!r}) holds cells "
                f"in layout {layout}, newer than this server's {LAYOUT}: upgrade "
                "tui-collab-server on this node"
            )
        if layout == LAYOUT:
            return
        migrate = client.register_script(_MIGRATE_BOARD)
        boards = cells = 0
        for team in sorted(await awaited(client.smembers(f"{self.prefix}teams"))):
            for board in await client.zrange(f"{self._team(team)}:boards", 0, -1):
                key = self._board_key(team, board)
                moved = int(await migrate(keys=[f"{key}:v", f"{key}:cells"], args=[f"{key}:c:"]))
                boards += moved > 0
                cells += moved
        await client.set(layout_key, str(LAYOUT))
        if cells:
            logger.info(
                "redis cells converted to layout %d: %d cells on %d boards", LAYOUT, cells, boards
            )

    async def close(self) -> None:
        """Send the cell ops already queued, then close the connections."""
        while (writer := self._cell_writer) is not None:
            await asyncio.shield(writer)
        if self._cells is not None:
            await self._cells.aclose()
            self._cells = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = self._scripts = None

    async def ping(self) -> None:
        """Raise unless Redis answers (after the usual reconnect attempts)."""
        await awaited(self._require().ping())

    @property
    def client(self) -> Redis:
        """The open connection pool, for stores that share this Redis (the notes)."""
        return self._require()

    def _require(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("store is not open")
        return self._redis

    @property
    def _run(self) -> _Scripts:
        if self._scripts is None:
            raise RuntimeError("store is not open")
        return self._scripts

    def _nonce(self) -> str:
        return f"{self._nonce_prefix}.{_base36(next(self._calls))}"

    def _team(self, team: str) -> str:
        return f"{self.prefix}t:{team}"

    def _board_key(self, team: str, board: str) -> str:
        return f"{self.prefix}t:{team}:b:{board}"

    # --- users and presence ---------------------------------------------------------

    async def record_user(self, team: str, user: str, name: str) -> None:
        """Store a member. A presence row saved after this call started waits for it:
        the two go out on different connections of the pool, in either order, and the
        presence script refuses a user not yet recorded."""
        now = _iso(datetime.now(UTC))
        key = f"{self._team(team)}:u:{user}"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._recording[key] = done  # before the first await: callers queue in order
        try:
            async with self._require().pipeline(transaction=True) as pipe:
                pipe.sadd(f"{self.prefix}teams", team)
                pipe.sadd(f"{self._team(team)}:users", user)
                pipe.hsetnx(key, "created_at", now)
                pipe.hset(key, mapping={"name": name, "updated_at": now})
                await pipe.execute()
        finally:
            done.set_result(None)
            if self._recording.get(key) is done:
                del self._recording[key]

    async def reset_presence(self) -> None:
        """Nothing to do: other nodes' users are still connected.

        With one SQLite file per server a start can mark everyone offline. Here every node
        shares the records, so a node starting must not touch them. Who is online across
        nodes is tracked by per-node heartbeat entries that expire with their node; the
        stored record only feeds a team's member list with names and "last seen". A record
        still "online" that no live node holds is one a crash left behind: the presence
        tracker reads its `alive_at` as the user's last_seen. Open sessions of a crashed
        node expire on their own (`OPEN_SESSION_TTL_S`).
        """

    async def save_presence(self, record: PresenceRecord) -> None:
        """Store status and activity; last_seen and alive_at only move forward (None keeps)."""
        key = f"{self._team(record.team)}:u:{record.user}"
        recording = self._recording.get(key)
        if recording is not None:
            await recording  # the member row first (it may have failed: then this does)
        saved = await self._run.save_presence(
            keys=[key],
            args=[
                record.status,
                _flag(record.activity_json is not None),
                record.activity_json or "",
                "" if record.last_seen is None else _iso(record.last_seen),
                "" if record.alive_at is None else _iso(record.alive_at),
                _iso(datetime.now(UTC)),
            ],
        )
        if not saved:
            raise LookupError(f"no user {record.user!r} in team {record.team!r}")

    async def mark_alive(self, marks: Sequence[AliveMark]) -> None:
        """The heartbeat's alive_at for every user in one script call; never moves one back."""
        if not marks:
            return
        await self._run.mark_alive(
            keys=[f"{self._team(m.team)}:u:{m.user}" for m in marks],
            args=[_iso(m.at) for m in marks],
        )

    async def load_presence(self, team: str) -> list[PresenceRecord]:
        """Every recorded user of the team, by id; "offline" where no status was saved."""
        client = self._require()
        users: list[str] = sorted(await awaited(client.smembers(f"{self._team(team)}:users")))
        async with client.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.hmget(f"{self._team(team)}:u:{user}", list(_USER_FIELDS))
            rows: list[list[str | None]] = await pipe.execute()
        return [
            PresenceRecord(
                team=team,
                user=user,
                name=name,
                status=status or "offline",
                activity_json=activity,
                last_seen=_parse(last_seen),
                alive_at=_parse(alive_at),
            )
            for user, (name, status, activity, last_seen, alive_at) in zip(users, rows, strict=True)
            if name is not None
        ]

    async def session_started(
        self, session: str, team: str, user: str, client_id: str, at: datetime
    ) -> None:
        """Record a connection, and keep only the user's newest `retention.per_user`.

        The record expires by itself: `OPEN_SESSION_TTL_S` while open (its node may crash
        and never end it), `retention.max_age_s` once ended.
        """
        await self._run.start_session(
            keys=[f"{self.prefix}session:{session}", f"{self._team(team)}:u:{user}:sessions"],
            args=[
                team,
                user,
                client_id,
                _iso(at),
                OPEN_SESSION_TTL_S,
                repr(at.timestamp()),
                self.retention.per_user,
                max(OPEN_SESSION_TTL_S, math.ceil(self.retention.max_age_s)),
                f"{self.prefix}session:",
                session,
            ],
        )

    async def session_ended(self, session: str, at: datetime, close_code: int | None) -> None:
        """Record the end; the record expires after the retention. Unknown ids are ignored."""
        await self._run.end_session(
            keys=[f"{self.prefix}session:{session}"],
            args=[
                _iso(at),
                _flag(close_code is not None),
                "" if close_code is None else str(close_code),
                math.ceil(self.retention.max_age_s),
            ],
        )

    # --- boards ---------------------------------------------------------------------

    async def create_board(self, board: BoardRecord) -> bool:
        """Insert a board; False when the team already has one with that id (atomic)."""
        created = await self._run.create_board(
            keys=[
                self._board_key(board.team, board.id),
                f"{self._team(board.team)}:boards",
                f"{self.prefix}teams",
            ],
            args=[
                board.team,
                board.id,
                board.title,
                board.width,
                board.height,
                board.created_by,
                self._nonce(),
            ],
        )
        return bool(created)

    async def update_board(
        self,
        team: str,
        board: str,
        title: str | None = None,
        widths: Mapping[int, int] | None = None,
    ) -> BoardRecord | None:
        """Set the title and/or merge widths, in one script (a default width drops the
        column); the record as it is after, or None without the board."""
        args: list[str | int] = [_flag(title is not None), title or "", DEFAULT_COLUMN_WIDTH]
        for x, width in sorted((widths or {}).items()):
            args += [x, width]
        row = await self._run.update_board(keys=[self._board_key(team, board)], args=args)
        return None if row is None else _board(team, board, row)

    async def get_board(self, team: str, board: str) -> BoardRecord | None:
        row = await awaited(
            self._require().hmget(self._board_key(team, board), list(_BOARD_FIELDS))
        )
        return None if row[0] is None else _board(team, board, row)

    async def list_boards(self, team: str) -> list[BoardRecord]:
        """The team's boards, oldest first, ties by id (as SQLite's ORDER BY created_at, id)."""
        client = self._require()
        ids: list[str] = await client.zrange(f"{self._team(team)}:boards", 0, -1)
        async with client.pipeline(transaction=False) as pipe:
            for board in ids:
                pipe.hmget(self._board_key(team, board), list(_BOARD_FIELDS))
            rows: list[list[str | None]] = await pipe.execute()
        return [
            _board(team, board, row)
            for board, row in zip(ids, rows, strict=True)
            if row[0] is not None
        ]

    async def board_version(self, team: str, board: str) -> int:
        """The board's current version (the highest any of its cells has); for gap checks."""
        version = await awaited(self._require().hget(self._board_key(team, board), "version"))
        if version is None:
            raise LookupError(f"no board {board!r}")
        return int(version)

    # --- cells ----------------------------------------------------------------------

    async def apply_cell_op(self, team: str, board: str, op: CellOp) -> AppliedOp:
        """Merge one op under last-writer-wins, and publish a `CellEvent` if it won.

        The script compares (clock, client, value) exactly as `tui_collab.cells.beats`,
        bumps the board version, stores the cell, appends it to the cell's history and
        publishes, all atomically (`merge.lua`), in the same script call as the other cell
        writes of its group (`_write_cells`). Since Redis runs scripts one at a time, the
        events on a board's channel arrive in version order, with no gaps between them for
        a subscriber that stays connected. Raises LookupError without the board.
        """
        [result] = await self._queue_cells(team, board, (op,), single=True)
        return result

    async def apply_cell_ops(self, team: str, board: str, ops: Sequence[CellOp]) -> list[AppliedOp]:
        """Merge a batch in order, and publish its winners as one `CellsEvent`.

        Merged op after op by `apply_cell_op`'s rule (`merge.lua`) inside one script call,
        so the batch is atomic (Redis runs one script at a time, and the AOF logs it as
        one), its versions are consecutive, and its event comes between the events of
        the ops before and after it. Raises LookupError without the board.
        """
        if not ops:
            return []
        return await self._queue_cells(team, board, tuple(ops), single=False)

    async def _queue_cells(
        self, team: str, board: str, ops: Sequence[CellOp], *, single: bool
    ) -> list[AppliedOp]:
        """Join the next group; an idle store starts one on the next loop iteration, so
        the calls made in this one go with it, and no timer waits for more."""
        self._run  # noqa: B018 -- raises unless open
        future: asyncio.Future[list[AppliedOp]] = asyncio.get_running_loop().create_future()
        self._cell_calls.append(_CellCall(team, board, ops, single, future))
        if self._cell_writer is None:
            self._cell_writer = asyncio.create_task(self._write_cells())
        return await future

    async def _write_cells(self) -> None:
        """Send groups one after another until none is waiting: the calls queued while a
        script call is in flight make up the next one."""
        try:
            while self._cell_calls:
                group = [self._cell_calls.popleft()]
                ops = len(group[0].ops)
                while self._cell_calls and ops + len(self._cell_calls[0].ops) <= MAX_GROUP_OPS:
                    ops += len(self._cell_calls[0].ops)
                    group.append(self._cell_calls.popleft())
                try:
                    replies = await self._apply_group(group)
                except BaseException as exc:
                    # The script ran whole or not at all, and which is unknown (redis-py
                    # already resent it on a lost connection: the stored reply made that
                    # safe). Every caller gets the error, as each would have alone.
                    for call in group:
                        _settle(call.future, exc=exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for call, reply in zip(group, replies, strict=True):
                    _settle_cells(call, reply)
        finally:
            self._cell_writer = None
            for call in self._cell_calls:  # only when cancelled (the loop is closing)
                _settle(call.future, exc=RuntimeError("store is closing"))
            self._cell_calls.clear()

    async def _apply_group(self, group: Sequence[_CellCall]) -> list[str]:
        """One `apply_cell_ops.lua` call for the whole group; its reply line per call."""
        boards: dict[tuple[str, str], int] = {}
        keys = [f"{self.prefix}done:{self._nonce()}"]
        channels: list[str] = []
        requests: list[str | int] = []
        for call in group:
            number = boards.get((call.team, call.board))
            if number is None:
                number = boards[(call.team, call.board)] = len(boards) + 1
                key = self._board_key(call.team, call.board)
                keys += [key, f"{key}:cells"]
                channels.append(board_channel(self.prefix, call.team, call.board))
            requests += [number, "s" if call.single else "b", len(call.ops)]
            for op in call.ops:
                requests += [
                    f"{op.x},{op.y}",
                    op.value,
                    str(op.clock),
                    op.client,
                    op.by,
                    str(op.at),
                    op_json(op),
                ]
        args: list[str | int] = [
            self._node_json,
            HISTORY_PER_CELL,
            BATCH_REPLY_TTL_MS,
            len(channels),
            *channels,
        ]
        self.cell_scripts += 1
        reply: str = await self._run.apply_cell_ops(keys=keys, args=args + requests)
        return reply.split("\n")

    async def cell_history(self, team: str, board: str, x: int, y: int) -> list[CellOp]:
        """The cell's applied ops, newest first (at most `HISTORY_PER_CELL`), one read.

        A cell last written before history was kept has no list: its current value is
        its whole history then.
        """
        key = self._board_key(team, board)
        field = f"{x},{y}"
        async with self._require().pipeline(transaction=False) as pipe:
            pipe.lrange(f"{key}:h:{field}", 0, HISTORY_PER_CELL - 1)
            pipe.hget(f"{key}:cells", field)
            entries, current = await pipe.execute()
        if not entries and current is not None:
            entries = [current]
        return [_decode_cell(field, text) for text in entries]

    async def load_cells(self, team: str, board: str, since: int = 0) -> list[CellOp]:
        """The board's cells with a version greater than `since`, by version (one read).

        The hash has no index by version: a read with `since` reads the whole board, as
        a snapshot does. It is rare (a node that missed an event) and one command.
        """
        key = f"{self._board_key(team, board)}:cells"
        raw: dict[str, str] = await awaited(self._require().hgetall(key))
        cells = [_decode_cell(field, text) for field, text in raw.items()]
        if since:
            cells = [cell for cell in cells if cell.version > since]
        cells.sort(key=_version_of)
        return cells


def _settle_cells(call: _CellCall, reply: str) -> None:
    """Resolve one call from its line of the group's reply (see `apply_cell_ops.lua`)."""
    if reply.startswith("!"):
        _settle(call.future, exc=ResponseError(reply[1:]))
        return
    base, _, flags = reply.partition(":")
    if base == "-1":
        _settle(call.future, exc=LookupError(f"no board {call.board!r}"))
        return
    results = []
    version = int(base)
    for flag in flags:
        version += flag == "1"
        results.append(AppliedOp(applied=flag == "1", version=version))
    _settle(call.future, result=results)


def _settle(
    future: asyncio.Future[list[AppliedOp]],
    result: list[AppliedOp] | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():  # the caller was cancelled: its ops were still sent
        return
    if isinstance(exc, asyncio.CancelledError):  # the writer was, as the loop closes
        future.cancel()
    elif exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result or [])


def _version_of(op: CellOp) -> int:
    return op.version


def _decode_cell(field: str, text: str) -> CellOp:
    """One field of a board's cells hash (see the module's docstring) as its op."""
    x, y = field.split(",")
    head, clock, _nonce, client_len, by_len, rest = text.split(",", 5)
    version, _, at = head.partition("@")
    lengths = int(client_len), int(by_len)
    if rest.isascii():
        client, by, value = _split(rest, *lengths)
    else:  # the lengths count UTF-8 bytes
        parts = _split(rest.encode(), *lengths)
        client, by, value = (part.decode() for part in parts)
    return CellOp(int(x), int(y), value, int(clock), client, by, int(version), int(at or 0))


_S = TypeVar("_S", str, bytes)


def _split(text: _S, first: int, second: int) -> tuple[_S, _S, _S]:
    return text[:first], text[first : first + second], text[first + second :]


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, digit = divmod(number, 36)
        out = digits[digit] + out
        if not number:
            return out


def _board(team: str, board: str, row: Sequence[Any]) -> BoardRecord:
    title, width, height, created_by, version, widths = row
    return BoardRecord(
        team=team,
        id=board,
        title=str(title),
        width=int(width),
        height=int(height),
        created_by=str(created_by),
        version=int(version),
        widths=_widths(widths),
    )


def _widths(stored: str | None) -> tuple[tuple[int, int], ...]:
    """The board's `widths` field ({"x": width}) as (x, width) pairs by column."""
    if not stored:
        return ()
    return tuple(sorted((int(x), int(width)) for x, width in json.loads(stored).items()))

"""What crosses between server processes ("nodes") that share one Redis.

Each node serves its own connections and fans out to them itself; Redis carries, once
per node, what the others must show:

- a team's channel: `board.created` / `board.updated` frames, and presence *parts*
  (one node's view of one user: its connections, status, activity); when the user's
  last connection on a node ends, the node withdraws its part, and the withdrawal
  carries the moment it ended (`last_seen`), so no offline part stays behind;
- a board's channel: `cursors` (one frame per node flush, not per move), `typing`,
  `participant.joined` / `participant.left` frames;
- the board's cell events (one per `cell.set`, one per `cells.set` batch), published by
  the store's apply scripts themselves, so their order on the channel is their version
  order.

Pub/sub is at most once. What must not be lost is also kept in hashes (presence parts,
board rosters) and in the store (cells), and a node re-reads them whenever its
subscription was broken. A node proves it is alive with a key that a heartbeat keeps
from expiring; when it is gone (a SIGKILL, a lost machine) the others drop its parts
and participants by themselves, so no ghost stays online.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from server.redis_util import awaited, compact_json
from server.store.notes_base import notes_channel
from server.wire import (
    CellEvent,
    CellsEvent,
    board_channel,
    board_frames_channel,
    decode_cell_event,
    nodes_channel,
    team_channel,
)

logger = logging.getLogger(__name__)

Part = dict[str, Any]
"""One node's view of one user's presence, as JSON-ready fields."""


@dataclass(frozen=True, slots=True)
class RosterEntry:
    node: str
    user: str
    name: str
    colour: str


class ClusterListener(Protocol):
    """What the server does with what other nodes publish."""

    def on_team_frame(self, team: str, frame: str) -> None: ...

    def on_part(
        self, team: str, user: str, node: str, part: Part | None, last_seen: str | None
    ) -> None:
        """A node's part changed, or (`part` None) was withdrawn, at `last_seen` if known."""
        ...

    def on_board_frame(self, team: str, board: str, node: str, frame: str) -> None: ...

    def on_cell_event(self, team: str, board: str, event: CellEvent) -> None: ...

    def on_cells_event(self, team: str, board: str, event: CellsEvent) -> None:
        """The winners of one batch, in version order (consecutive versions)."""
        ...

    def on_notes(self, team: str, board: str, node: str, message: dict[str, Any]) -> None:
        """A board's notes: an update another node stored (`u`, `by`), or its `carets`."""
        ...

    def on_node_down(self, node: str) -> None: ...

    async def on_resync(self) -> None: ...


class Cluster(Protocol):
    node: str

    async def start(self, listener: ClusterListener) -> None: ...

    async def stop(self) -> None: ...

    async def watch_team(self, team: str) -> dict[str, dict[str, Part]]:
        """Subscribe to a team; return the live parts of other nodes, by user then node."""
        ...

    async def team_parts(self, team: str) -> dict[str, dict[str, Part]]:
        """The live parts of other nodes, by user then node, without subscribing."""
        ...

    async def watch_board(self, team: str, board: str) -> list[RosterEntry]:
        """Subscribe to a board; return the participants other live nodes hold."""
        ...

    def unwatch_board(self, team: str, board: str) -> None: ...

    def publish_team_frame(self, team: str, frame: str) -> None: ...

    def publish_part(self, team: str, user: str, part: Part) -> None: ...

    def withdraw_part(self, team: str, user: str, last_seen: str | None) -> None:
        """This node holds the user no more; `last_seen` is when their last connection ended."""
        ...

    def publish_board_frame(self, team: str, board: str, frame: str) -> None: ...

    def roster_join(self, team: str, board: str, user: str, name: str, colour: str) -> None: ...

    def roster_leave(self, team: str, board: str, user: str) -> None: ...

    async def watch_notes(self, team: str, board: str) -> None:
        """Subscribe to a board's notes channel (before its document is loaded)."""
        ...

    def unwatch_notes(self, team: str, board: str) -> None: ...

    def publish_notes(self, team: str, board: str, message: dict[str, Any]) -> None:
        """Carets of this node's users (updates are published by the store)."""
        ...


class LocalCluster:
    """One process on its own: nothing to share."""

    def __init__(self, node: str) -> None:
        self.node = node

    async def start(self, listener: ClusterListener) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def watch_team(self, team: str) -> dict[str, dict[str, Part]]:
        return {}

    async def team_parts(self, team: str) -> dict[str, dict[str, Part]]:
        return {}

    async def watch_board(self, team: str, board: str) -> list[RosterEntry]:
        return []

    def unwatch_board(self, team: str, board: str) -> None:
        return None

    def publish_team_frame(self, team: str, frame: str) -> None:
        return None

    def publish_part(self, team: str, user: str, part: Part) -> None:
        return None

    def withdraw_part(self, team: str, user: str, last_seen: str | None) -> None:
        return None

    def publish_board_frame(self, team: str, board: str, frame: str) -> None:
        return None

    def roster_join(self, team: str, board: str, user: str, name: str, colour: str) -> None:
        return None

    def roster_leave(self, team: str, board: str, user: str) -> None:
        return None

    async def watch_notes(self, team: str, board: str) -> None:
        return None

    def unwatch_notes(self, team: str, board: str) -> None:
        return None

    def publish_notes(self, team: str, board: str, message: dict[str, Any]) -> None:
        return None


class RedisCluster:
    """The cluster over Redis pub/sub, with liveness keys and hashes for what must stay."""

    def __init__(self, url: str, node: str, *, ttl_s: float = 15.0, prefix: str = "tc:") -> None:
        self.node = node
        self.url = url
        self.prefix = prefix
        self.ttl_s = ttl_s
        self._redis: Redis | None = None
        self._listener: ClusterListener | None = None
        self._outbox: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue()
        self._channels: dict[str, tuple[str, str, str]] = {}
        """Subscribed channel → (kind, team, board)."""
        self._known_nodes: set[str] = set()
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._cleanups: set[asyncio.Task[None]] = set()

    # --- keys -----------------------------------------------------------------------

    def _node_key(self, node: str) -> str:
        return f"{self.prefix}node:{node}"

    def _team_channel(self, team: str) -> str:
        return team_channel(self.prefix, team)

    def _parts_key(self, team: str) -> str:
        return f"{self.prefix}t:{team}:parts"

    def _board_frames(self, team: str, board: str) -> str:
        return board_frames_channel(self.prefix, team, board)

    def _roster_key(self, team: str, board: str) -> str:
        return f"{self.prefix}t:{team}:b:{board}:roster"

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, listener: ClusterListener) -> None:
        self._listener = listener
        self._redis = Redis.from_url(
            self.url,
            decode_responses=True,
            socket_timeout=max(2.0, self.ttl_s / 3),
            socket_connect_timeout=1.0,
        )
        await self._redis.set(self._node_key(self.node), "1", px=int(self.ttl_s * 1000))
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="cluster-heartbeat"),
            asyncio.create_task(self._publisher(), name="cluster-publisher"),
            asyncio.create_task(self._subscriber(), name="cluster-subscriber"),
        ]
        await asyncio.wait_for(self._subscribed.wait(), 10)
        logger.info("cluster node %s up (liveness ttl %.1f s)", self.node, self.ttl_s)

    async def stop(self) -> None:
        """Leave cleanly: the others drop this node's users at once, not after the TTL."""
        await self._drain_outbox()
        await _cancel_all(self._tasks)
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.delete(self._node_key(self.node))
                await self._redis.publish(
                    nodes_channel(self.prefix), compact_json({"node": self.node, "down": True})
                )
            await self._redis.aclose()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _drain_outbox(self) -> None:
        for _ in range(50):
            if self._outbox.empty():
                return
            await asyncio.sleep(0.01)

    # --- watching ----------------------------------------------------------------------

    async def watch_team(self, team: str) -> dict[str, dict[str, Part]]:
        await self._subscribe(self._team_channel(team), ("team", team, ""))
        return await self.team_parts(team)

    async def team_parts(self, team: str) -> dict[str, dict[str, Part]]:
        raw = await awaited(self._require().hgetall(self._parts_key(team)))
        parts: dict[str, dict[str, Part]] = {}
        for field, value in raw.items():
            node, _, user = field.partition("|")
            if node == self.node or not await self._alive(node):
                continue
            with contextlib.suppress(ValueError):
                parts.setdefault(user, {})[node] = json.loads(value)
        return parts

    async def watch_board(self, team: str, board: str) -> list[RosterEntry]:
        await self._subscribe(self._board_frames(team, board), ("frames", team, board))
        await self._subscribe(board_channel(self.prefix, team, board), ("cells", team, board))
        raw = await awaited(self._require().hgetall(self._roster_key(team, board)))
        entries = []
        for field, value in raw.items():
            node, _, user = field.partition("|")
            if node == self.node or not await self._alive(node):
                continue
            with contextlib.suppress(ValueError, KeyError):
                data = json.loads(value)
                entries.append(RosterEntry(node, user, data["name"], data["colour"]))
        return entries

    def unwatch_board(self, team: str, board: str) -> None:
        for channel in (self._board_frames(team, board), board_channel(self.prefix, team, board)):
            if self._channels.pop(channel, None) is not None and self._pubsub is not None:
                self._outbox.put_nowait(("unsubscribe", (channel,)))

    async def watch_notes(self, team: str, board: str) -> None:
        await self._subscribe(notes_channel(self.prefix, team, board), ("notes", team, board))

    def unwatch_notes(self, team: str, board: str) -> None:
        channel = notes_channel(self.prefix, team, board)
        if self._channels.pop(channel, None) is not None and self._pubsub is not None:
            self._outbox.put_nowait(("unsubscribe", (channel,)))

    def publish_notes(self, team: str, board: str, message: dict[str, Any]) -> None:
        self._publish(notes_channel(self.prefix, team, board), message)

    async def _subscribe(self, channel: str, meaning: tuple[str, str, str]) -> None:
        if channel in self._channels:
            return
        self._channels[channel] = meaning
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.subscribe(channel)

    # --- publishing (ordered, fire and forget) -------------------------------------------

    def publish_team_frame(self, team: str, frame: str) -> None:
        self._publish(self._team_channel(team), {"node": self.node, "frame": frame})

    def publish_part(self, team: str, user: str, part: Part) -> None:
        field = f"{self.node}|{user}"
        self._outbox.put_nowait(("hset", (self._parts_key(team), field, compact_json(part))))
        self._publish(self._team_channel(team), {"node": self.node, "user": user, "part": part})

    def withdraw_part(self, team: str, user: str, last_seen: str | None) -> None:
        # Deleted, not kept as an offline part: the hash holds live parts only, and the
        # store's presence record keeps last_seen for nodes that start watching later.
        self._outbox.put_nowait(("hdel", (self._parts_key(team), f"{self.node}|{user}")))
        self._publish(
            self._team_channel(team),
            {"node": self.node, "user": user, "part": None, "last_seen": last_seen},
        )

    def publish_board_frame(self, team: str, board: str, frame: str) -> None:
        self._publish(self._board_frames(team, board), {"node": self.node, "frame": frame})

    def roster_join(self, team: str, board: str, user: str, name: str, colour: str) -> None:
        value = compact_json({"name": name, "colour": colour})
        field = f"{self.node}|{user}"
        self._outbox.put_nowait(("hset", (self._roster_key(team, board), field, value)))

    def roster_leave(self, team: str, board: str, user: str) -> None:
        field = f"{self.node}|{user}"
        self._outbox.put_nowait(("hdel", (self._roster_key(team, board), field)))

    def _publish(self, channel: str, message: dict[str, Any]) -> None:
        self._outbox.put_nowait(("publish", (channel, compact_json(message))))

    async def _publisher(self) -> None:
        """Send queued writes in order, as one pipeline per batch; retry a batch on loss."""
        while True:
            first = await self._outbox.get()
            batch = [first]
            while not self._outbox.empty() and len(batch) < 500:
                batch.append(self._outbox.get_nowait())
            while True:
                try:
                    await self._send(batch)
                    break
                except (RedisError, OSError) as exc:
                    logger.warning("cluster publish failed (%s); retrying", exc)
                    await asyncio.sleep(0.2)

    async def _send(self, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        pipe = self._require().pipeline(transaction=False)
        for command, args in batch:
            if command == "unsubscribe":
                if self._pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.unsubscribe(*args)
                continue
            getattr(pipe, command)(*args)
        await pipe.execute()

    # --- receiving ----------------------------------------------------------------------

    async def _subscriber(self) -> None:
        """Read the subscribed channels; after a broken subscription, resubscribe and resync."""
        first = True
        while True:
            pubsub = self._require().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(nodes_channel(self.prefix), *self._channels)
                self._pubsub = pubsub
                self._subscribed.set()
                if not first:
                    logger.info("cluster subscription restored; resyncing")
                    assert self._listener is not None
                    await self._listener.on_resync()
                first = False
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("cluster subscription lost (%s); reconnecting", exc)
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(0.2)
            except Exception:
                logger.exception("cluster subscriber failed; restarting it")
                self._pubsub = None
                await asyncio.sleep(0.2)

    def _dispatch(self, channel: str, data: str) -> None:
        listener = self._listener
        assert listener is not None
        if channel == nodes_channel(self.prefix):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                message = json.loads(data)
                if message.get("down") and message["node"] != self.node:
                    self._node_gone(message["node"])
            return
        meaning = self._channels.get(channel)
        if meaning is None:
            return
        kind, team, board = meaning
        try:
            if kind == "cells":
                event = decode_cell_event(data)
                if event.node == self.node:
                    return
                self._known_nodes.add(event.node)
                if isinstance(event, CellsEvent):
                    listener.on_cells_event(team, board, event)
                else:
                    listener.on_cell_event(team, board, event)
                return
            message = json.loads(data)
            node = message["node"]
            if node == self.node:
                return
            self._known_nodes.add(node)
            if kind == "notes":
                listener.on_notes(team, board, node, message)
            elif kind == "team" and "frame" in message:
                listener.on_team_frame(team, message["frame"])
            elif kind == "team":
                listener.on_part(
                    team, message["user"], node, message["part"], message.get("last_seen")
                )
            else:
                listener.on_board_frame(team, board, node, message["frame"])
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring a malformed cluster message on %s: %s", channel, exc)

    # --- liveness -----------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Keep this node's key alive, and notice when another node's key has expired."""
        interval = self.ttl_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._require().set(self._node_key(self.node), "1", px=int(self.ttl_s * 1000))
                for node in list(self._known_nodes):
                    if not await self._alive(node):
                        self._node_gone(node)
            except (RedisError, OSError) as exc:
                logger.warning("cluster heartbeat failed: %s", exc)

    async def _alive(self, node: str) -> bool:
        self._known_nodes.add(node)
        return bool(await awaited(self._require().exists(self._node_key(node))))

    def _node_gone(self, node: str) -> None:
        if node not in self._known_nodes:
            return
        self._known_nodes.discard(node)
        logger.info("cluster node %s is gone; dropping its users", node)
        assert self._listener is not None
        self._listener.on_node_down(node)
        task = asyncio.create_task(self._forget_node(node), name="cluster-forget-node")
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _forget_node(self, node: str) -> None:
        """Delete a dead node's parts and roster entries (readers skip them meanwhile)."""
        keys = {
            self._parts_key(team) if kind == "team" else self._roster_key(team, board)
            for kind, team, board in self._channels.values()
            if kind in ("team", "frames")
        }
        try:
            for key in keys:
                fields = await awaited(self._require().hkeys(key))
                stale = [f for f in fields if f.startswith(f"{node}|")]
                if stale:
                    await awaited(self._require().hdel(key, *stale))
        except (RedisError, OSError) as exc:
            logger.warning("could not delete the entries of node %s: %s", node, exc)

    # --- helpers ------------------------------------------------------------------------

    def _require(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("cluster is not started")
        return self._redis


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the tasks, again until each has ended.

    redis-py writes under `asyncio.wait_for`, which on Python 3.11 drops a cancel that
    lands just as the write completes; the task then carries on to its next wait, and a
    single cancel-and-await would hang until that wait ends (seconds, on a quiet node).
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: a task that failed on its way out is not news

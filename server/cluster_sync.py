"""What this node does with what the other nodes publish."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from server.boards import BoardRoom
from server.cluster import Part
from server.context import ServerContext
from server.store.base import BoardRecord
from server.wire import CellEvent, CellsEvent

logger = logging.getLogger(__name__)

GAP_WAIT_S = 0.05
"""Before refilling a gap, let ops of our own that are still on their way land."""


class ClusterSync:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._tasks: set[asyncio.Task[None]] = set()

    def on_team_frame(self, team: str, frame: str) -> None:
        self._ctx.hub.to_team(team, frame)
        message = json.loads(frame)
        if message.get("type") in ("board.created", "board.updated"):
            meta = message["board"]
            self._ctx.boards.remember(
                BoardRecord(
                    team=team,
                    id=meta["id"],
                    title=meta["title"],
                    width=meta["width"],
                    height=meta["height"],
                    created_by=meta["created_by"],
                    version=meta.get("version", 0),
                    widths=tuple(sorted((w["x"], w["width"]) for w in meta.get("widths") or ())),
                )
            )
        if message.get("type") == "board.updated":
            self._start(self._reread(team, message["board"]["id"]))

    async def _reread(self, team: str, board: str) -> None:
        """Take the title and widths from the store after another node's `board.updated`.

        The frame's own are that node's view at its update; two nodes updating at once
        may publish in the other order than they wrote, and widths merge per column, so
        only the store's record is sure to be the latest. The cached version is kept:
        the store's may be ahead of the ops this node has received.
        """
        directory = self._ctx.boards
        before = directory.remembered(team, board)
        try:
            fresh = await self._ctx.store.get_board(team, board)
        except Exception:
            logger.exception("re-reading board %s/%s failed", team, board)
            return
        if fresh is None or directory.remembered(team, board) != before:
            # Gone; or replaced meanwhile, by an update here (the store's answer to it is
            # newer than this read) or another node's frame (which reads again itself).
            return
        room = self._ctx.rooms.get(team, board)
        loaded = self._ctx.boards.loaded(team)
        cached = room.record if room is not None else (loaded or {}).get(board)
        if cached is not None:
            if (cached.title, cached.widths) == (fresh.title, fresh.widths):
                return
            fresh = replace(fresh, version=cached.version)
        self._ctx.boards.remember(fresh)

    def on_part(
        self, team: str, user: str, node: str, part: Part | None, last_seen: str | None
    ) -> None:
        self._ctx.presence.remote_part(team, user, node, part, last_seen)

    def on_board_frame(self, team: str, board: str, node: str, frame: str) -> None:
        self._ctx.rooms.when_open(team, board, lambda room: room.remote_frame(node, frame))

    def on_cell_event(self, team: str, board: str, event: CellEvent) -> None:
        self._ctx.rooms.when_open(team, board, lambda room: self._cell_event(room, event))

    def _cell_event(self, room: BoardRoom, event: CellEvent) -> None:
        room.saw(event.version)
        if room.cells.apply(event.op):
            room.news.publish([event.op])
        if room.seen_above:
            self._refill(room)  # a version is missing: unless it turns up, read it

    def on_cells_event(self, team: str, board: str, event: CellsEvent) -> None:
        """A batch applied on another node: one `cells.changed` here too, for the ops
        that win against this node's cells (all of them, unless some arrived already)."""
        self._ctx.rooms.when_open(team, board, lambda room: self._cells_event(room, event))

    def _cells_event(self, room: BoardRoom, event: CellsEvent) -> None:
        won = []
        for op in event.ops:
            room.saw(op.version)
            if room.cells.apply(op):
                won.append(op)
        room.news.publish(won, batch=True)
        if room.seen_above:
            self._refill(room)

    def on_notes(self, team: str, board: str, node: str, message: dict[str, Any]) -> None:
        self._ctx.notes.remote(team, board, node, message)

    def on_node_down(self, node: str) -> None:
        self._ctx.notes.node_down(node)
        self._ctx.presence.node_down(node)
        for room in self._ctx.rooms.rooms():
            room.node_down(node)

    async def on_resync(self) -> None:
        await self._ctx.presence.resync()
        await self._ctx.notes.resync()
        for room in self._ctx.rooms.rooms():
            for user, participant in room.participants.items():
                self._ctx.cluster.roster_join(
                    room.team, room.id, user, participant.name, participant.colour
                )
            self._refill(room, wait=False)

    def _refill(self, room: BoardRoom, wait: bool = True) -> None:
        if room.filling_gap:
            return
        room.filling_gap = True
        self._start(self._refill_now(room, wait))

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refill_now(self, room: BoardRoom, wait: bool) -> None:
        try:
            for _ in range(10):
                if wait:
                    await asyncio.sleep(GAP_WAIT_S)
                    if not room.seen_above:
                        break  # our own ops in flight filled it
                since = room.watermark
                ops = await self._ctx.store.load_cells(room.team, room.id, since)
                ordered = sorted(ops, key=lambda o: o.version)
                fresh = [op for op in ordered if room.cells.apply(op)]
                room.news.publish(fresh)
                if fresh:
                    logger.info(
                        "board %s/%s: %d changes refilled after version %d",
                        room.team,
                        room.id,
                        len(fresh),
                        since,
                    )
                # The newest op is always still its cell's winner, so it is the board's
                # version as of this read: everything up to it is here now.
                room.caught_up(ordered[-1].version if ordered else since)
                if not room.seen_above:
                    break
                wait = True
        except Exception:
            logger.exception("refilling board %s/%s failed", room.team, room.id)
        finally:
            room.filling_gap = False

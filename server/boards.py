"""Live boards: participants and their colours, cursors, and the in-memory cell map.

A room is opened when the first connection joins a board and holds the board's cells
(loaded once from the store, kept encoded for snapshots by server.snapshot) so that a
joiner's snapshot and the stream of `cell.changed` events can never miss or double an
op: both are decided synchronously on the event loop, in one order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Final

from server.cell_news import WINDOWED_FROM, CellNews
from server.cluster import Cluster, LocalCluster, RosterEntry
from server.hub import Session, Window, grows_with
from server.json_lists import appended
from server.metrics import Metrics
from server.peer import Peer, Sender
from server.snapshot import EncodedCells
from server.store.base import BoardRecord, Store
from tui_collab.protocol import (
    BoardMeta,
    ColumnWidth,
    CursorPosition,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantsChanged,
    encode,
)

logger = logging.getLogger(__name__)

PALETTE: Final = (
    "#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2",
    "#d19a66", "#ff79c6", "#8be9fd", "#50fa7b", "#bd93f9", "#f1fa8c",
)  # fmt: skip
"""Twelve colours that stay distinct on dark and light terminal themes."""

LOAD_SLICE: Final = 2_000
"""Cells loaded into a room's map per turn of the loop."""


def pick_colour(in_use: Mapping[str, int], previous: str | None) -> str:
    """A rejoining user keeps their colour if free; otherwise the least-used colour wins.

    `in_use` counts the board's participants per colour: a room keeps it up to date,
    so a join costs the palette, not the roster (a crowd of 1,000 joining a board
    would otherwise count 1,000 colours each)."""
    if previous is not None and in_use.get(previous, 0) <= 0:
        return previous
    return min(PALETTE, key=lambda colour: (in_use.get(colour, 0), PALETTE.index(colour)))


def board_meta(record: BoardRecord, version: int | None = None) -> BoardMeta:
    return BoardMeta(
        id=record.id,
        title=record.title,
        width=record.width,
        height=record.height,
        created_by=record.created_by,
        version=record.version if version is None else version,
        widths=[ColumnWidth(x=x, width=w) for x, w in record.widths] or None,
    )


@dataclass(slots=True)
class _Participant:
    user: str
    name: str
    colour: str
    sessions: set[Session] = field(default_factory=set)
    json: str = ""
    """The participant as `board.state` lists it, encoded once."""

    def model(self) -> Participant:
        return Participant(user=self.user, name=self.name, color=self.colour)


def _cursor_json(user: str, x: int, y: int) -> str:
    # User ids are identifiers (ASCII letters, digits and `._@-`): nothing to escape.
    return f'{{"user":"{user}","x":{x},"y":{y}}}'


def cursors_frame(board: str, positions: dict[str, tuple[int, int]]) -> str:
    """A `cursors` frame, as `encode(Cursors(...))` would write it."""
    cursors = ",".join(_cursor_json(u, x, y) for u, (x, y) in positions.items())
    return f'{{"type":"cursors","board":"{board}","cursors":[{cursors}]}}'


class BoardRoom:
    """One board's live state; cursors never touch the store.

    Participant changes, cursor moves and (on a crowded board) cell ops go out in
    leading-edge windows (`hub.Window`, `cursor_interval_s`): a lone change at once,
    changes within a window as one frame at its end (`participants`, `cursors`,
    `cells.changed`: `news`), encoded once for every connection. Changes other nodes
    report join this node's windows, so a client gets at most one frame of each per
    window however many nodes share the board. The participant and cursor lists of
    `board.state` are kept encoded between changes.
    """

    def __init__(
        self,
        record: BoardRecord,
        cells: EncodedCells,
        cursor_interval_s: float,
        outbound: Sender,
        previous_colours: dict[str, str] | None = None,
        metrics: Metrics | None = None,
        cluster: Cluster | None = None,
        roster_interval_s: float | None = None,
        cell_window_from: int = WINDOWED_FROM,
    ) -> None:
        self.outbound = outbound
        self.metrics = metrics
        self.cluster: Cluster = cluster or LocalCluster("local")
        self.remote: dict[str, tuple[str, Participant]] = {}
        """Participants held by other nodes: user → (node, participant)."""
        self._remote_json: dict[str, str] = {}
        """Each of `remote`, encoded once."""
        self.remote_cursors: dict[str, tuple[int, int]] = {}
        self.filling_gap = False
        self.watermark = max(record.version, cells.version)
        """Every board version up to this one is in `cells` (or was overwritten there)."""
        self.seen_above: set[int] = set()
        """Versions seen past the watermark; any at all means one below them is missing."""
        self.record = record
        self.cells = cells
        self._interval = cursor_interval_s
        self.participants: dict[str, _Participant] = {}
        self._colour_use: Counter[str] = Counter()
        """Participants per colour, this node's and the others' (a user on both counts
        twice, as both hold a colour)."""
        # Shared with BoardRooms, so a colour outlives the room while the server runs.
        self._previous_colours = {} if previous_colours is None else previous_colours
        self.connections: set[Peer] = set()
        self.cursors: dict[str, tuple[int, int]] = {}
        self._moved: dict[str, tuple[int, int]] = {}
        """This node's users who moved in the window (also published to other nodes)."""
        self._moved_remote: dict[str, tuple[int, int]] = {}
        """Other nodes' users who moved in the window (merged into this node's flush)."""
        self._cursor_window = Window(cursor_interval_s, self._flush_cursors)
        self.news = CellNews(
            record.id,
            cursor_interval_s,
            self.broadcast,
            lambda: len(self.connections),
            cell_window_from,
        )
        """The ops this room took, on their way to its connections."""
        self._joined: dict[str, Participant] = {}
        self._left: dict[str, Participant] = {}
        """The window's participant changes; a user who left and came back is in both."""
        self._lone_exclude: Peer | None = None
        """The joiner, while its join is the window's only change: it is not told of it."""
        self._roster_window = Window(
            grows_with(
                cursor_interval_s if roster_interval_s is None else roster_interval_s,
                lambda: len(self.connections),
            ),
            self._flush_roster,
        )
        self._participants_json: str | None = None
        self._cursors_json: str | None = None
        self.frames_sent = 0

    @property
    def team(self) -> str:
        return self.record.team

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def version(self) -> int:
        return max(self.record.version, self.cells.version)

    def saw(self, version: int) -> None:
        """Note a version this room now has, and move the watermark over what is whole."""
        if version <= self.watermark:
            return
        self.seen_above.add(version)
        self._advance()

    def caught_up(self, version: int) -> None:
        """A read of the store at `version` brought in everything up to it."""
        if version > self.watermark:
            self.watermark = version
            self.seen_above = {v for v in self.seen_above if v > version}
            self._advance()

    def _advance(self) -> None:
        while self.watermark + 1 in self.seen_above:
            self.watermark += 1
            self.seen_above.discard(self.watermark)

    def meta(self) -> BoardMeta:
        return board_meta(self.record, self.version)

    def join(self, session: Session) -> tuple[_Participant, bool]:
        """Add a session; return its participant and whether the user is new on the board.

        The ops waiting in the window go out first: the joiner's snapshot has them."""
        self.news.flush()
        participant = self.participants.get(session.user)
        fresh = participant is None
        if participant is None:
            colour = pick_colour(self._colour_use, self._previous_colours.get(session.user))
            self._colour_use[colour] += 1
            participant = _Participant(session.user, session.identity.name, colour)
            participant.json = encode(participant.model())
            self.participants[session.user] = participant
            self._previous_colours[session.user] = colour
            # Where nobody else is on another node, the kept list's order is the
            # participants', and the newcomer goes at its end.
            kept = self._participants_json
            if kept is not None and not self._remote_json:
                self._participants_json = appended(kept, participant.json)
            else:
                self._participants_json = None
        participant.sessions.add(session)
        self.connections.add(session.ws)
        return participant, fresh

    def leave(self, session: Session) -> _Participant | None:
        """Remove a session; return the participant if that was the user's last one here."""
        self.connections.discard(session.ws)
        participant = self.participants.get(session.user)
        if participant is None:
            return None
        participant.sessions.discard(session)
        if participant.sessions:
            return None
        del self.participants[session.user]
        self._colour_use[participant.colour] -= 1
        self._participants_json = None
        if self.cursors.pop(session.user, None) is not None:
            self._cursors_json = None
        self._moved.pop(session.user, None)
        return participant

    def participant_list(self) -> list[Participant]:
        local = [p.model() for p in self.participants.values()]
        return local + [p for user, (_, p) in self.remote.items() if user not in self.participants]

    def participants_json(self) -> str:
        """`participant_list()` as a JSON list, kept until the participants change and
        then joined again from each participant's JSON, encoded once."""
        if self._participants_json is None:
            local = [p.json for p in self.participants.values()]
            remote = [j for u, j in self._remote_json.items() if u not in self.participants]
            self._participants_json = f"[{','.join(local + remote)}]"
        return self._participants_json

    def cursor_list(self) -> list[CursorPosition]:
        positions = {**self.remote_cursors, **self.cursors}
        return [CursorPosition(user=u, x=x, y=y) for u, (x, y) in positions.items()]

    def cursors_json(self) -> str:
        """`cursor_list()` as a JSON list, kept until a cursor moves."""
        if self._cursors_json is None:
            positions = {**self.remote_cursors, **self.cursors}
            items = ",".join(_cursor_json(u, x, y) for u, (x, y) in positions.items())
            self._cursors_json = f"[{items}]"
        return self._cursors_json

    # --- participants come and go ---------------------------------------------------

    def joined_here(self, participant: _Participant, joiner: Peer) -> None:
        """A user's first connection on this node joined: tell the board and the other
        nodes (`joiner` is not told of its own join)."""
        model = participant.model()
        self.cluster.publish_board_frame(self.team, self.id, _joined_frame(self.id, model))
        self._queue_joined(model, joiner)

    def left_here(self, participant: _Participant) -> None:
        """A user's last connection on this node left."""
        model = participant.model()
        self.cluster.publish_board_frame(self.team, self.id, _left_frame(self.id, model))
        self._queue_left(model)

    def _queue_joined(self, participant: Participant, exclude: Peer | None = None) -> None:
        lone = not self._joined and not self._left
        self._joined[participant.user] = participant
        self._lone_exclude = exclude if lone else None
        self._roster_window.poke()

    def _queue_left(self, participant: Participant) -> None:
        # Said even when they joined within this window: a snapshot sent meanwhile has them.
        self._joined.pop(participant.user, None)
        self._left[participant.user] = participant
        self._lone_exclude = None
        self._roster_window.poke()

    def _flush_roster(self) -> bool:
        """One frame for the window's participant changes; False if there were none."""
        joined, left = self._joined, self._left
        if not joined and not left:
            return False
        self._joined, self._left = {}, {}
        exclude, self._lone_exclude = self._lone_exclude, None
        if len(joined) + len(left) == 1:
            if joined:
                (model,) = joined.values()
                frame = _joined_frame(self.id, model)
            else:
                (model,) = left.values()
                frame = _left_frame(self.id, model)
                exclude = None
            self.broadcast(frame, exclude)
        else:
            self.broadcast(
                encode(
                    ParticipantsChanged(
                        board=self.id, joined=list(joined.values()), left=list(left.values())
                    )
                )
            )
        return True

    # --- what other nodes send --------------------------------------------------------

    def add_roster(self, entries: list[RosterEntry]) -> None:
        for entry in entries:
            model = Participant(user=entry.user, name=entry.name, color=entry.colour)
            self._put_remote(entry.node, model)

    def remote_frame(self, node: str, frame: str) -> None:
        """A frame another node broadcast to its own share of this board: participant
        changes and cursors join this node's windows; typing is relayed as it is."""
        message = json.loads(frame)
        kind = message.get("type")
        user = message.get("user")
        if kind == "participant.joined":
            model = Participant(user=user, name=message["name"], color=message["color"])
            self._put_remote(node, model)
            if user not in self.participants:  # else our own clients know this user
                self._queue_joined(model)
        elif kind == "participant.left":
            gone = self._forget_remote(user)
            if user not in self.participants:
                model = Participant(user=user, name=message["name"], color=message["color"])
                self._queue_left(gone[1] if gone is not None else model)
        elif kind == "cursors":
            for position in message.get("cursors", []):
                at = (position["x"], position["y"])
                self.remote_cursors[position["user"]] = at
                self._moved_remote[position["user"]] = at
            self._cursors_json = None
            self._cursor_window.poke()
        elif kind == "typing":
            self.broadcast(frame, coalescible=True, about=(user,))

    def node_down(self, node: str) -> None:
        for user, (owner, participant) in list(self.remote.items()):
            if owner != node:
                continue
            self._forget_remote(user)
            if user not in self.participants:
                self._queue_left(participant)

    def _put_remote(self, node: str, model: Participant) -> None:
        """Hold a user another node has here (in place of what it said of them before):
        their entry, kept JSON and colour."""
        before = self.remote.get(model.user)
        if before is not None:
            self._colour_use[before[1].color] -= 1
        self.remote[model.user] = (node, model)
        self._remote_json[model.user] = encode(model)
        self._participants_json = None
        self._colour_use[model.color] += 1

    def _forget_remote(self, user: str) -> tuple[str, Participant] | None:
        """Drop a user another node held here: their entry, kept JSON and cursor; return
        the entry (node, participant), if there was one."""
        gone = self.remote.pop(user, None)
        if gone is not None:
            self._colour_use[gone[1].color] -= 1
        self._remote_json.pop(user, None)
        self._participants_json = None
        if self.remote_cursors.pop(user, None) is not None:
            self._cursors_json = None
        self._moved_remote.pop(user, None)
        return gone

    def broadcast(
        self,
        frame: str,
        exclude: Peer | None = None,
        *,
        coalescible: bool = False,
        about: Collection[str] | None = None,
    ) -> None:
        """Send to the board; a coalescible frame (cursors, typing) may skip a peer behind.

        Participant changes waiting for their window go first if the frame is `about` a
        user they announce (any user, when not said): nobody sees a user's cursor or
        typing before they learn the user joined. Other moves leave the window alone,
        so a crowd's arrival is not sent with every cursor frame.
        """
        if (
            coalescible
            and self._roster_window.waiting
            and (about is None or not self._joined.keys().isdisjoint(about))
        ):
            self._roster_window.fire()
        targets = self.connections if exclude is None else self.connections - {exclude}
        self.outbound.send(targets, frame, coalescible=coalescible)

    def announce(
        self,
        frame: str,
        exclude: Peer | None = None,
        *,
        coalescible: bool = False,
        about: Collection[str] | None = None,
    ) -> None:
        """An event of this node's share of the board: to its peers here, and to the
        other nodes for theirs."""
        self.broadcast(frame, exclude, coalescible=coalescible, about=about)
        self.cluster.publish_board_frame(self.team, self.id, frame)

    def resend_cursors(self, session: Session) -> None:
        """Give a peer that skipped cursor frames while it was behind every position now."""
        if self.cursors or self.remote_cursors:  # this node's and the other nodes' users
            frame = f'{{"type":"cursors","board":"{self.id}","cursors":{self.cursors_json()}}}'
            self.outbound.send((session.ws,), frame, coalescible=True)

    def move_cursor(self, user: str, x: int, y: int) -> None:
        """Leading-edge throttle: send at once after a quiet window, else coalesce to its end."""
        self.cursors[user] = (x, y)
        self._moved[user] = (x, y)
        self._cursors_json = None
        self._cursor_window.poke()

    def flush_cursors(self) -> None:
        """Send the moves of the window now."""
        self._cursor_window.fire()

    def _flush_cursors(self) -> bool:
        """One `cursors` frame with this window's moves, this node's and the others';
        only this node's go to the other nodes."""
        if not self._moved and not self._moved_remote:
            return False
        started = time.perf_counter()
        local, remote = self._moved, self._moved_remote
        self._moved, self._moved_remote = {}, {}
        moved = {**remote, **local}
        frame = cursors_frame(self.id, moved)
        self.frames_sent += 1
        self.broadcast(frame, coalescible=True, about=moved.keys())
        if local:
            shared = frame if not remote else cursors_frame(self.id, local)
            self.cluster.publish_board_frame(self.team, self.id, shared)
        if self.metrics is not None:
            self.metrics.cursor_flush.observe(time.perf_counter() - started)
        return True

    def close(self) -> None:
        self.news.close()  # the replies waiting for it go out too
        self._cursor_window.close()
        self._roster_window.close()


def _joined_frame(board: str, p: Participant) -> str:
    return encode(ParticipantJoined(board=board, user=p.user, name=p.name, color=p.color))


def _left_frame(board: str, p: Participant) -> str:
    return encode(ParticipantLeft(board=board, user=p.user, name=p.name, color=p.color))


class BoardRooms:
    """The open rooms of every team, opened on first join and closed when empty."""

    def __init__(
        self,
        store: Store,
        cursor_interval_s: float,
        outbound: Sender,
        metrics: Metrics | None = None,
        cluster: Cluster | None = None,
        roster_interval_s: float | None = None,
        cell_window_from: int = WINDOWED_FROM,
    ) -> None:
        """`roster_interval_s`: the participant window, by default the cursors' one;
        `cell_window_from`: connections from which cell events wait for it too."""
        self._roster_interval = roster_interval_s
        self._cell_window_from = cell_window_from
        self._outbound = outbound
        self._metrics = metrics
        self._cluster: Cluster = cluster or LocalCluster("local")
        self._store = store
        self._interval = cursor_interval_s
        self._rooms: dict[tuple[str, str], BoardRoom] = {}
        self._opening: dict[tuple[str, str], list[Callable[[BoardRoom], None]]] = {}
        """Other nodes' news for rooms being opened, to apply once they are, in order."""
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._colours: dict[tuple[str, str], dict[str, str]] = {}

    def get(self, team: str, board: str) -> BoardRoom | None:
        return self._rooms.get((team, board))

    def when_open(self, team: str, board: str, apply: Callable[[BoardRoom], None]) -> None:
        """Another node's news for a board (a participant frame, a cell op): applied to
        its room now, or kept for the room being opened. The room's roster and cells were
        read after the subscription began, so news that arrives before the room exists
        is replayed over them, not lost; it is state, so replaying what the read already
        had changes nothing. A board with no room here needs none of it."""
        room = self._rooms.get((team, board))
        if room is not None:
            apply(room)
        elif (team, board) in self._opening:
            self._opening[(team, board)].append(apply)

    async def open(self, record: BoardRecord) -> BoardRoom:
        key = (record.team, record.id)
        room = self._rooms.get(key)
        if room is not None:
            return room
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            room = self._rooms.get(key)
            if room is None:
                # Subscribe first (in `_load_room`): what other nodes send meanwhile is
                # kept (`when_open`) and replayed over what is read.
                self._opening[key] = []
                try:
                    room = await self._load_room(record)
                    for apply in self._opening[key]:
                        apply(room)
                finally:
                    del self._opening[key]
        self._locks.pop(key, None)
        return room

    async def _load_room(self, record: BoardRecord) -> BoardRoom:
        key = (record.team, record.id)
        roster = await self._cluster.watch_board(record.team, record.id)
        ops = await self._store.load_cells(record.team, record.id)
        cells = EncodedCells()  # encoded at the first join, in slices
        for start in range(0, len(ops), LOAD_SLICE):
            if start:
                await asyncio.sleep(0)  # a full board takes ~20 ms: not in one go
            for op in ops[start : start + LOAD_SLICE]:
                cells.apply(op)
        room = self._rooms[key] = BoardRoom(
            record,
            cells,
            self._interval,
            self._outbound,
            self._colours.setdefault(key, {}),
            self._metrics,
            self._cluster,
            self._roster_interval,
            self._cell_window_from,
        )
        room.add_roster(roster)
        logger.debug("opened board %s/%s with %d cells", record.team, record.id, len(ops))
        return room

    def discard_if_empty(self, room: BoardRoom) -> bool:
        """Close a room nobody is in; return True if it was closed."""
        if room.connections or room.participants:
            return False
        room.close()
        self._rooms.pop((room.team, room.id), None)
        self._cluster.unwatch_board(room.team, room.id)
        return True

    def rooms(self) -> list[BoardRoom]:
        return list(self._rooms.values())

    def update_record(self, record: BoardRecord) -> None:
        room = self._rooms.get((record.team, record.id))
        if room is not None:
            room.record = record

    def close(self) -> None:
        for room in self._rooms.values():
            room.close()

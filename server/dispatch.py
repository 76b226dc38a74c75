"""What the server does with each client message, one method per message type."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import Any, Final

from redis.exceptions import RedisError

from server import __version__
from server.audit import AUTH_FAILED, RATE_LIMIT_CLOSE, audit
from server.auth import AuthError
from server.boards import BoardRoom, board_meta
from server.cell_news import op_fields
from server.context import ServerContext
from server.hub import Session
from server.join_stream import cost_tokens
from server.limits import InFlight
from server.logs import RateLimitedLog
from server.snapshot import pack
from server.store.base import AppliedOp, BoardRecord
from server.store.group_commit import StoreWriteFailed
from tui_collab.cells import CellOp
from tui_collab.protocol import (
    CLOCK_AHEAD_LIMIT,
    HISTORY_PER_CELL,
    Ack,
    AuthRefresh,
    BoardCreate,
    BoardCreated,
    BoardJoin,
    BoardLeave,
    BoardMeta,
    BoardState,
    BoardUpdate,
    BoardUpdated,
    CellEdit,
    CellHistory,
    CellHistoryQuery,
    CellSet,
    CellsSet,
    ClientMessage,
    CloseCode,
    CursorMove,
    ErrorCode,
    Hello,
    HistoryEntry,
    NotesCaret,
    NotesClose,
    NotesOpen,
    NotesUpdate,
    OpResult,
    PresenceQuery,
    PresenceSet,
    PresenceSnapshot,
    ProtocolError,
    ServerInfo,
    Typing,
    TypingSet,
    UserRef,
    Welcome,
    decode,
    encode,
    utc_now,
)

logger = logging.getLogger(__name__)

ENCODE_SLICE: Final = 200
"""Cells encoded for a snapshot per turn of the loop (about 2 ms at 256 four-byte
characters each)."""
JOIN_SLICE: Final = 8
"""Snapshot chunks (64 KiB each) joined per turn of the loop."""

MAX_DELTA_CELLS: Final = 1_000
"""A resume that lacks more changed cells than this gets the full snapshot instead."""

MALFORMED_COST: Final = 10.0
"""Rate-limit tokens a frame the protocol refuses costs (a good one costs 1)."""

Handler = Callable[[Session, Any], Awaitable[None]]


class Dispatcher:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        # Quota held by requests between their check and their result (see InFlight).
        self._creating: dict[str, InFlight[str]] = {}
        self._filling: dict[tuple[str, str], InFlight[tuple[int, int]]] = {}
        self._storage_errors = RateLimitedLog(logger)
        self._handlers: dict[type[Any], Handler] = {
            Hello: self._hello_again,
            PresenceSet: self._presence_set,
            PresenceQuery: self._presence_query,
            BoardCreate: self._board_create,
            BoardUpdate: self._board_update,
            BoardJoin: self._board_join,
            BoardLeave: self._board_leave,
            CursorMove: self._cursor_move,
            TypingSet: self._typing,
            CellSet: self._cell_set,
            CellsSet: self._cells_set,
            CellHistoryQuery: self._cell_history,
            AuthRefresh: self._auth_refresh,
            NotesOpen: self._notes_open,
            NotesUpdate: self._notes_update,
            NotesCaret: self._notes_caret,
            NotesClose: self._notes_close,
        }

    async def dispatch(self, session: Session, frame: str | bytes) -> None:
        """Handle one frame; every failure becomes an `error` to the sender, never a crash."""
        if session.ending:
            # Read and dropped, so the peer's close frame can arrive; work queued behind
            # a rate-limit or slow-consumer close (a pipeline of joins) never runs.
            self._ctx.metrics.dropped_closing.inc()
            return
        metrics = self._ctx.metrics
        try:
            message = decode(frame)
        except ProtocolError as exc:
            metrics.received("invalid")
            session.bad_frames += 1
            # Bad frames draw on the same bucket, at ten times the price: a working client
            # never sends one, and a broken one must not buy a hundred error replies a
            # second (nor reset the malformed-input rule with one good frame in ten).
            if session.bucket is not None and not session.bucket.take(MALFORMED_COST):
                await self._over_limit(session, None)
                return
            session.send_error(exc.code, exc.message, exc.re)
            if session.bad_frames >= self._ctx.config.malformed_close_after:
                logger.warning(
                    "closing %s user=%s: repeated malformed input", session.id, session.user
                )
                session.close(CloseCode.POLICY_VIOLATION, "repeated malformed input")
            return
        session.bad_frames = 0
        metrics.received(message.type)
        if session.bucket is not None and not session.bucket.take():
            await self._over_limit(session, message)
            return
        try:
            await self._handlers[type(message)](session, message)
        except ProtocolError as exc:
            session.send_error(exc.code, exc.message, exc.re or message.id)
        except Exception as exc:
            if isinstance(exc, StoreWriteFailed):
                pass  # the store's writer logged it, once per kind per 10 s
            elif isinstance(exc, RedisError | sqlite3.Error):
                # The store is failing for everyone: one line per kind, not one per message.
                kind = f"{type(exc).__name__}: {exc}"
                self._storage_errors.log(
                    logging.ERROR, kind, "store failed handling %s: %s", message.type, kind
                )
            else:
                logger.exception("internal error handling %s from %s", message.type, session.id)
            re = message.op if isinstance(message, CellSet) else message.id
            session.send_error(ErrorCode.INTERNAL, "internal server error", re)

    async def _over_limit(self, session: Session, message: ClientMessage | None) -> None:
        """Drop the message; cursor moves and bad frames go silently, others get one error
        a second."""
        self._ctx.metrics.rate_limited.inc()
        assert session.flood is not None
        send_error, close = session.flood.dropped()
        if close:
            logger.warning(
                "closing %s user=%s team=%s: still flooding after %.0f s",
                session.id,
                session.user,
                session.team,
                self._ctx.config.flood_close_after_s,
            )
            audit(
                RATE_LIMIT_CLOSE,
                ip=session.ws.address,
                user=session.user,
                team=session.team,
                seconds=self._ctx.config.flood_close_after_s,
            )
            session.close(CloseCode.RATE_LIMITED, "rate limit exceeded")
            return
        if send_error and message is not None and not isinstance(message, CursorMove):
            re = message.op if isinstance(message, CellSet) else message.id
            session.send_error(
                ErrorCode.RATE_LIMITED,
                f"over {self._ctx.config.rate_per_s} messages a second; dropped",
                re,
            )

    def _to_team(self, team: str, frame: str) -> None:
        """A team event: to this node's members, and to the other nodes for theirs."""
        self._ctx.hub.to_team(team, frame)
        self._ctx.cluster.publish_team_frame(team, frame)

    # --- a session's start and end -------------------------------------------------

    def welcome(self, session: Session, boards: list[BoardMeta]) -> None:
        """Start a session whose hello was accepted: online for the team, `welcome`
        (listing `boards`), then the team's events. Nothing here awaits, so `welcome` is
        its first frame and no event falls between the two."""
        ctx = self._ctx
        identity = session.identity
        ctx.presence.connected(session)
        welcome = Welcome(
            session=session.id,
            client_id=session.client_id,
            user=UserRef(id=identity.user, name=identity.name),
            team=identity.team,
            server=ServerInfo(node=ctx.node, version=__version__, epoch=ctx.store.epoch),
            limits=ctx.limits,
            members=[],
            boards=boards,
        )
        # The team's member list is kept encoded by the tracker: spliced in, not rebuilt.
        head = welcome.model_dump_json(exclude_none=True, exclude={"members"})
        session.send(f'{head[:-1]},"members":{ctx.presence.members_json(identity.team)}}}')
        ctx.hub.add(session)
        session.watch_expiry()
        ctx.spawn(
            ctx.store.session_started(
                session.id, identity.team, identity.user, session.client_id, utc_now()
            )
        )

    def goodbye(self, session: Session, clean: bool, close_code: int | None) -> None:
        """End a session: out of the hub and its boards, offline (after the grace period
        unless `clean`), and its record closed."""
        session.forget()
        self._ctx.hub.remove(session)
        for board in list(session.boards):
            self.leave_board(session, board)
        self._ctx.notes.forget(session)
        self._ctx.presence.disconnected(session, clean=clean)
        self._ctx.spawn(self._ctx.store.session_ended(session.id, utc_now(), close_code))

    # --- boards -------------------------------------------------------------------

    async def _record(self, session: Session, board: str, re: str | None) -> BoardRecord:
        record = (await self._ctx.boards.team(session.team)).get(board)
        if record is None:
            # Another team's board answers exactly like a board that does not exist.
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no board {board!r}", re)
        return record

    async def _joined_room(self, session: Session, board: str, re: str | None) -> BoardRoom:
        room = self._ctx.rooms.get(session.team, board)
        if board in session.boards and room is not None:
            return room
        await self._record(session, board, re)
        raise ProtocolError(ErrorCode.FORBIDDEN, f"join board {board!r} first", re)

    @staticmethod
    def _check_inside(record: BoardRecord, x: int, y: int, re: str | None, where: str = "") -> None:
        if x >= record.width or y >= record.height:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"{where}cell ({x}, {y}) is outside the {record.width}x{record.height} board",
                re,
            )

    # --- handlers -----------------------------------------------------------------

    async def _hello_again(self, session: Session, message: Hello) -> None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "already said hello", message.id)

    async def _presence_set(self, session: Session, message: PresenceSet) -> None:
        # An explicit `"activity": null` clears it; a missing field leaves it as it is.
        clear = "activity" in message.model_fields_set and message.activity is None
        self._ctx.presence.set(session, message.status, message.activity, clear)
        _ack(session, message.id)

    async def _presence_query(self, session: Session, message: PresenceQuery) -> None:
        presence = self._ctx.presence
        if message.user is None:
            members = presence.members(session.team)
        else:
            member = presence.member(session.team, message.user)
            members = [] if member is None else [member]
        frame = encode(PresenceSnapshot(re=message.id, members=members))
        session.send(frame)
        if session.bucket is not None:
            session.bucket.charge(cost_tokens(len(frame)))  # a big team's list costs more

    async def _board_create(self, session: Session, message: BoardCreate) -> None:
        record = BoardRecord(
            team=session.team,
            id=message.board or f"b-{secrets.token_hex(4)}",
            title=message.title,
            width=message.width,
            height=message.height,
            created_by=session.user,
        )
        boards = await self._ctx.boards.team(session.team)
        # From the quota check until the store's answer is counted, this board holds a
        # place: creates running at once stop at the cap exactly.
        creating = self._creating.setdefault(session.team, InFlight())
        try:
            if record.id not in boards:
                others = sum(1 for board in creating if board != record.id and board not in boards)
                cap = self._ctx.config.max_boards_per_team
                if len(boards) + others >= cap:
                    raise ProtocolError(
                        ErrorCode.QUOTA_EXCEEDED, f"team already has {cap} boards", message.id
                    )
            with creating.holding(record.id):
                created = await self._ctx.store.create_board(record)
                if created:
                    boards[record.id] = record
        finally:
            _forget_if_idle(self._creating, session.team)
        if created:
            self._to_team(session.team, encode(BoardCreated(board=board_meta(record))))
            logger.info("board %s/%s created by %s", record.team, record.id, session.user)
        _ack(session, message.id, version=0 if created else None, applied=created)

    async def _board_update(self, session: Session, message: BoardUpdate) -> None:
        current = await self._record(session, message.board, message.id)
        widths: dict[int, int] = {}
        for index, column in enumerate(message.widths or ()):
            if column.x >= current.width:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST,
                    f"widths[{index}]: column {column.x} is outside the "
                    f"{current.width}-column board",
                    message.id,
                )
            widths[column.x] = column.width  # a column given twice: the last one counts
        if message.title is not None or widths:
            record = await self._ctx.store.update_board(
                session.team, message.board, message.title, widths or None
            )
            if record is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, f"no board {message.board!r}", message.id)
            self._ctx.boards.remember(record)
            meta = self._ctx.boards.meta(record)
            self._to_team(session.team, encode(BoardUpdated(board=meta)))
        _ack(session, message.id)

    async def _board_join(self, session: Session, message: BoardJoin) -> None:
        await self._ctx.arrivals.turn()
        record = await self._record(session, message.board, message.id)
        while True:
            room = await self._ctx.rooms.open(record)
            if room.cells.stale <= ENCODE_SLICE and room.cells.unjoined <= JOIN_SLICE:
                break
            # Cells changed since the last snapshot are encoded a slice per turn; the
            # room may close meanwhile (its last participant left), so it is looked up
            # again after each.
            encoded = room.cells.refresh(ENCODE_SLICE, JOIN_SLICE)
            self._ctx.metrics.cells_encoded.inc(encoded)
            await asyncio.sleep(0)
            if session.ending:
                self._ctx.rooms.discard_if_empty(room)
                return
        # No await from here until part 0 is sent: the snapshot and the joiner's
        # registration for later events happen at one instant.
        already = session.user in room.participants
        if not already and len(room.participants) >= self._ctx.config.max_board_participants:
            self._ctx.rooms.discard_if_empty(room)
            raise ProtocolError(
                ErrorCode.BOARD_FULL, f"board {message.board!r} is full", message.id
            )
        self._ctx.metrics.cells_encoded.inc(room.cells.refresh())
        participant, fresh = room.join(session)
        session.boards.add(room.id)
        epoch = self._ctx.store.epoch
        since = message.since
        changed = (
            room.cells.since(since)
            if since is not None and message.epoch == epoch and since <= room.version
            else None
        )
        # A long delta is built per joiner; the kept full snapshot is shared.
        resumable = changed is not None and len(changed) <= MAX_DELTA_CELLS
        if changed is not None and resumable:
            bodies = pack(room.cells.fragment(op.x, op.y) for op in changed) or [b""]
        else:
            bodies = room.cells.parts() or [b""]
        first = BoardState(
            re=message.id,
            board=room.meta(),
            epoch=epoch,
            version=room.version,
            complete=not resumable,
            part=0,
            parts=len(bodies),
            cells=[],
            participants=[],
            cursors=[],
        )
        frame = _first_part(first, room, bodies[0])
        session.send(frame)
        self._ctx.metrics.joins.inc()
        if fresh:
            room.joined_here(participant, session.ws)
            self._ctx.cluster.roster_join(
                room.team, room.id, participant.user, participant.name, participant.colour
            )
        if session.bucket is not None:
            # Cost, not count: a join draws on the bucket by the bytes it sends.
            session.bucket.charge(cost_tokens(len(frame) + sum(map(len, bodies[1:]))))
        if len(bodies) > 1:
            await self._ctx.stream(session.ws, first, bodies, lambda: not session.closing)

    async def _board_leave(self, session: Session, message: BoardLeave) -> None:
        if message.board not in session.boards:
            await self._joined_room(session, message.board, message.id)
        self.leave_board(session, message.board)
        _ack(session, message.id)

    def resend_cursors(self, session: Session) -> None:
        """A peer that skipped cursor frames while behind gets every position again."""
        for board in session.boards:
            room = self._ctx.rooms.get(session.team, board)
            if room is not None:
                room.resend_cursors(session)

    def leave_board(self, session: Session, board: str) -> None:
        session.boards.discard(board)
        self._ctx.notes.close(session, board)
        room = self._ctx.rooms.get(session.team, board)
        if room is None:
            return
        participant = room.leave(session)
        if participant is not None:
            room.left_here(participant)
            self._ctx.cluster.roster_leave(room.team, room.id, participant.user)
        if self._ctx.rooms.discard_if_empty(room):
            # Versions only move while a room is open: keep the directory's copy current.
            boards = self._ctx.boards.loaded(session.team)
            if boards is not None and room.id in boards:
                boards[room.id] = replace(room.record, version=room.version)

    async def _cursor_move(self, session: Session, message: CursorMove) -> None:
        room = await self._joined_room(session, message.board, message.id)
        self._check_inside(room.record, message.x, message.y, message.id)
        room.move_cursor(session.user, message.x, message.y)

    async def _typing(self, session: Session, message: TypingSet) -> None:
        room = await self._joined_room(session, message.board, message.id)
        self._check_inside(room.record, message.x, message.y, message.id)
        frame = encode(
            Typing(
                board=room.id, user=session.user, x=message.x, y=message.y, active=message.active
            )
        )
        room.announce(frame, exclude=session.ws, coalescible=True, about=(session.user,))

    async def _cell_set(self, session: Session, message: CellSet) -> None:
        room = await self._joined_room(session, message.board, message.op)
        (result,) = await self._apply_edits(session, room, [message], message.op, batch=False)
        ack = encode(Ack(re=message.op, version=result.version, applied=result.applied))
        self._reply_after_news(session, room, ack)

    async def _cells_set(self, session: Session, message: CellsSet) -> None:
        """A batch: one token, one commit, one `cells.changed`; checked whole first."""
        room = await self._joined_room(session, message.board, message.id)
        spent = session.cell_bucket
        if spent is not None and not spent.take(len(message.ops)):
            rate = self._ctx.config.cell_ops_per_s
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"over {rate} cell writes a second; this batch of {len(message.ops)} was "
                f"dropped: send it again in {spent.wait_s(len(message.ops)):.1f} s",
                message.id,
            )
        results = await self._apply_edits(session, room, message.ops, message.id, batch=True)
        ack = Ack(
            re=message.id,
            version=max(result.version for result in results),
            ops=[OpResult(version=r.version, applied=r.applied) for r in results],
        )
        self._reply_after_news(session, room, encode(ack))

    def _reply_after_news(self, session: Session, room: BoardRoom, frame: str) -> None:
        """Send an edit's ack once the room has sent the ops it took before it (this
        edit's among them): a client sees its edit's event before the ack, and a lost
        op's winner before learning it lost."""
        live = self._ctx.rooms.get(session.team, room.id)
        if live is None:
            session.send(frame)
        else:
            live.news.after(lambda: session.send(frame))

    async def _apply_edits(
        self,
        session: Session,
        room: BoardRoom,
        edits: Sequence[CellEdit | CellSet],
        re: str,
        *,
        batch: bool,
    ) -> list[AppliedOp]:
        """Check every edit, hold the cells it fills against the quota, store them in one
        commit, and tell the room; return one result per edit. A refusal refuses all."""
        limit = room.cells.max_clock + CLOCK_AHEAD_LIMIT
        for index, edit in enumerate(edits):
            where = f"ops[{index}]: " if batch else ""
            self._check_inside(room.record, edit.x, edit.y, re, where)
            if edit.clock > limit:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST,
                    f"{where}clock {edit.clock} is too far ahead of the board (at most {limit})",
                    re,
                )
        # Once per request: every op of a batch was taken at the same moment.
        at = time.time_ns() // 1_000_000
        ops = [
            CellOp(e.x, e.y, e.value, e.clock, session.client_id, session.user, at=at)
            for e in edits
        ]
        fills = {(e.x, e.y) for e in edits if e.value and not room.cells.value(e.x, e.y)}
        if not fills:
            # Fills no empty cell: the cap cannot be reached by it.
            return await self._store_ops(session, room, ops, batch=batch)
        # Each empty cell given a value holds a place from this check until its result is
        # counted in `filled` (no await in between): requests running at once stop at the
        # cap exactly.
        scope = (session.team, room.id)
        filling = self._filling.setdefault(scope, InFlight())
        try:
            others = sum(1 for c in filling if c not in fills and not room.cells.value(*c))
            cap = self._ctx.config.max_cells_per_board
            if room.cells.filled + others + len(fills) > cap:
                held = room.cells.filled + others
                raise ProtocolError(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"board {room.id!r} has {held} of {cap} non-empty cells and this batch "
                    f"would fill {len(fills)} more; clear some first"
                    if batch
                    else f"board {room.id!r} already has {cap} non-empty cells; clear some first",
                    re,
                )
            with ExitStack() as holds:
                for cell in fills:
                    holds.enter_context(filling.holding(cell))
                return await self._store_ops(session, room, ops, batch=batch)
        finally:
            _forget_if_idle(self._filling, scope)

    async def _store_ops(
        self, session: Session, room: BoardRoom, ops: list[CellOp], *, batch: bool
    ) -> list[AppliedOp]:
        """Store the ops in one commit and count those that won in the live room before
        returning; their event goes out before the caller's ack (`_reply_after_news`)."""
        store = self._ctx.store
        if batch:
            results = await store.apply_cell_ops(session.team, room.id, ops)
        else:
            results = [await store.apply_cell_op(session.team, room.id, ops[0])]
        live = self._ctx.rooms.get(session.team, room.id)
        if live is None:
            return results
        news = []
        for op, result in zip(ops, results, strict=True):
            if result.applied:
                stored = replace(op, version=result.version)
                live.saw(result.version)
                # Not news if the room already has it: with several nodes, a gap refill
                # may have brought this very op in while the store's answer was on its way.
                if live.cells.apply(stored):
                    news.append(stored)
        live.news.publish(news, batch=batch)
        return results

    async def _cell_history(self, session: Session, message: CellHistoryQuery) -> None:
        record = await self._record(session, message.board, message.id)
        self._check_inside(record, message.x, message.y, message.id)
        ops = await self._ctx.store.cell_history(session.team, record.id, message.x, message.y)
        entries = [HistoryEntry(**op_fields(op)) for op in ops[:HISTORY_PER_CELL]]
        frame = encode(
            CellHistory(re=message.id, board=record.id, x=message.x, y=message.y, entries=entries)
        )
        session.send(frame)
        if session.bucket is not None:
            session.bucket.charge(cost_tokens(len(frame)))  # by size, like presence.query

    # --- notes (server.notes) -------------------------------------------------------

    async def _notes_open(self, session: Session, message: NotesOpen) -> None:
        await self._joined_room(session, message.board, message.id)
        await self._ctx.notes.open(session, message)

    async def _notes_update(self, session: Session, message: NotesUpdate) -> None:
        await self._joined_room(session, message.board, message.id)
        await self._ctx.notes.update(session, message)

    async def _notes_caret(self, session: Session, message: NotesCaret) -> None:
        await self._joined_room(session, message.board, message.id)
        self._ctx.notes.caret(session, message)

    async def _notes_close(self, session: Session, message: NotesClose) -> None:
        self._ctx.notes.close(session, message.board)

    async def _auth_refresh(self, session: Session, message: AuthRefresh) -> None:
        try:
            identity = self._ctx.verifier.verify(message.token)
        except AuthError as exc:
            await self._refuse_refresh(session, str(exc), message.id)
            return
        if (identity.user, identity.team) != (session.user, session.team):
            await self._refuse_refresh(session, "token is for another user or team", message.id)
            return
        session.identity = identity
        session.watch_expiry()
        _ack(session, message.id)

    async def _refuse_refresh(self, session: Session, reason: str, re: str | None) -> None:
        logger.warning("auth.refresh refused for %s user=%s: %s", session.id, session.user, reason)
        audit(
            AUTH_FAILED,
            ip=session.ws.address,
            user=session.user,
            team=session.team,
            stage="refresh",
            reason=reason,
        )
        session.send_error(ErrorCode.UNAUTHORIZED, reason, re)
        session.close(CloseCode.AUTH_FAILED, reason)


def _first_part(first: BoardState, room: BoardRoom, body: bytes) -> bytes:
    """Part 0 of a snapshot: `first` with the room's participants and cursors, kept
    encoded by the room, and `body` as its cells, spliced in rather than encoded."""
    head = first.model_dump_json(exclude_none=True, exclude={"cells", "participants", "cursors"})
    lists = f',"participants":{room.participants_json()},"cursors":{room.cursors_json()}'
    return head[:-1].encode() + lists.encode() + b',"cells":[' + body + b"]}"


def _forget_if_idle(table: dict[Any, InFlight[Any]], scope: Any) -> None:
    in_flight = table.get(scope)
    if in_flight is not None and not in_flight:
        del table[scope]


def _ack(
    session: Session, re: str | None, version: int | None = None, applied: bool | None = None
) -> None:
    if re is not None:
        session.send(encode(Ack(re=re, version=version, applied=applied)))


__all__ = ["ClientMessage", "Dispatcher"]

"""What a `CollabClient` knows and owes, with no I/O: the client's sans-I/O core.

`ClientState` holds the board mirrors, presence and the board list; the edits the
server has not acknowledged (and the durable outbox that keeps them across runs); and
the requests waiting for a reply. It changes only when the application asks for
something or a server message is handed to `handle`. Frames go out through `send`,
a plain callable the connection layer sets while connected (None while offline), and
delayed resends through `later`; nothing here opens a socket, sleeps or reads a clock.
The connection layer (`tui_collab.client`) owns the socket, the reconnect loop and
the throttles; `tui_collab.retry` decides when to reconnect.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from pydantic import ValidationError

from tui_collab.cells import cell_name
from tui_collab.events import EventBus, OpRefused, OutboxFailed, PendingChanged
from tui_collab.mirror import BoardMirror
from tui_collab.outbox import Outbox, OutboxError
from tui_collab.protocol import (
    MAX_BATCH_OPS,
    MAX_MESSAGE_BYTES,
    Ack,
    Activity,
    BoardCreated,
    BoardJoin,
    BoardLeave,
    BoardMeta,
    BoardState,
    BoardUpdated,
    CellChanged,
    CellEdit,
    CellHistory,
    CellsChanged,
    CellSet,
    CellsSet,
    Cursors,
    ErrorCode,
    ErrorMessage,
    NotesCarets,
    NotesState,
    NotesUpdated,
    OpResult,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantsChanged,
    Presence,
    PresenceBatch,
    PresenceSet,
    PresenceSnapshot,
    ServerMessage,
    Status,
    Welcome,
    cell_value_problem,
    encode,
    printable,
)

if TYPE_CHECKING:
    from asyncio import Future

logger = logging.getLogger("tui_collab.client")  # one logger for the whole client

Send = Callable[[str], None]
"""Queues one frame for the server, in order."""
Later = Callable[[float, Callable[[], None]], object]
"""Calls a function after a delay in seconds (`loop.call_later`)."""

BATCHED_OP: Final = "p"
"""The first letter of the op id of an edit queued by `add_edits` (a paste, an import):
those are re-sent as `cells.set` batches; `add_edit`'s ("o…") go out one by one."""
RATE_LIMITED_RETRY_S: Final = 1.0
"""The wait before asking again for a join the rate limit refused (a big board's join
costs the limiter tokens by its size; see docs/protocol.md §9)."""
OP_RETRY_S: Final = 1.0
"""The wait before re-sending an edit the server failed on (`internal`, `rate_limited`)."""
_RETRYABLE_ERRORS: Final = {ErrorCode.INTERNAL, ErrorCode.RATE_LIMITED}
"""Op errors that are the server's or the moment's: the op stays pending and is re-sent."""
FRAME_MARGIN_BYTES: Final = 1024
"""Room left under the server's `max_message_bytes` when packing a `cells.set`: the
size is measured, but a frame that is one byte over closes the connection (1009)."""


NOTES_ID: Final = "n:"
"""The prefix of the ids of notes requests: `n:{board}:...` (see tui_collab.notes)."""


class NotesPeer(Protocol):
    """One board's notes (`tui_collab.notes.SharedNotes`), as the connection sees it."""

    def attached(self, send: Send) -> None: ...

    def detached(self) -> None: ...

    def handle(
        self, message: NotesState | NotesUpdated | NotesCarets | Ack | ErrorMessage
    ) -> None: ...


class ClientError(Exception):
    """The server answered a request with an `error`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NotConnected(Exception):
    """The request needs a live connection and there is none right now."""


class ClientState:
    """Mirrors, pending edits and requests in flight; see the module doc."""

    def __init__(self, bus: EventBus, later: Later, outbox: Outbox | None = None) -> None:
        self._bus = bus
        self._later = later
        self._outbox_file = outbox
        self.send: Send | None = None
        """Set while connected; None while offline."""

        self.welcome: Welcome | None = None
        self.presence: dict[str, Presence] = {}
        self.boards: dict[str, BoardMeta] = {}
        self.joined: dict[str, BoardMirror] = {}
        self.status: Status | None = None
        self.activity: Activity | None = None
        """This user's status and activity, said again after every reconnect."""

        self._ids = itertools.count(1)
        token = secrets.token_hex(4)
        self._op_prefix = f"o{token}-"  # op ids: unique for this client
        self._batch_op_prefix = f"{BATCHED_OP}{token}-"  # the ops of `add_edits`
        self._op_numbers = itertools.count(1)
        self.requests: dict[str, Future[ServerMessage]] = {}
        self.joins: dict[str, list[Future[BoardMirror]]] = {}
        self._rejoins: dict[str, str] = {}
        self._op_futures: dict[str, Future[Ack]] = {}
        self._op_boards: dict[str, str] = {}
        self._batch_prefix = f"b{secrets.token_hex(4)}-"
        self._batch_numbers = itertools.count(1)
        self.batches: dict[str, list[str]] = {}
        """`cells.set` frames on the wire on this connection: batch id -> its op ids, in order."""
        self._connection = 0
        """Counts attaches, so a resend scheduled on an old connection does not repeat the
        resend every attach makes."""
        self.notes: dict[str, NotesPeer] = {}
        """Boards whose notes are open: synced after each (re)join."""
        self.restore_only: set[str] = set()
        """Boards joined only to deliver edits kept from an earlier run; left once done."""
        self.restored = self._restore_outbox()
        """How many edits kept from an earlier run this client will send."""

    # --- the connection comes and goes --------------------------------------------

    def welcomed(self, welcome: Welcome) -> None:
        self.welcome = welcome
        self.presence = {m.user: m for m in welcome.members}
        self.boards = {b.id: b for b in welcome.boards}
        self._bus.emit(welcome)

    def attach(self, send: Send) -> None:
        """Connected: restore, in the order the server must see it, then send live.

        Status first, then every joined board (asking only for what changed), then
        every unacknowledged op, oldest first (the server handles a connection's
        frames in order).
        """
        if self.status is not None or self.activity is not None:
            send(encode(PresenceSet(status=self.status, activity=self.activity)))
        self._rejoins.clear()
        for board, mirror in self.joined.items():
            rejoin_id = f"rejoin-{next(self._ids)}"
            self._rejoins[rejoin_id] = board
            send(encode(self._rejoin(board, mirror, rejoin_id)))
        self.batches.clear()
        self._connection += 1
        self._send_ops(send, list(self._op_boards))
        self.send = send
        for notes in self.notes.values():
            notes.attached(send)

    def detach(self) -> None:
        """The connection is gone: half-received snapshots and requests fail."""
        self.send = None
        for notes in self.notes.values():
            notes.detached()
        for mirror in self.joined.values():
            mirror.abandon_parts()
        self.fail_requests(NotConnected("connection lost before the reply"))

    # --- requests -----------------------------------------------------------------

    def open_request(self, message: Any, future: Future[ServerMessage]) -> str:
        """Give `message` an id, send it, and resolve `future` with the reply."""
        if self.send is None:
            raise NotConnected("not connected to the server")
        request_id = f"r{next(self._ids)}"
        message.id = request_id
        self.requests[request_id] = future
        self.send(encode(message))
        return request_id

    def fail_requests(self, exc: Exception) -> None:
        for future in self.requests.values():
            if not future.done():
                future.set_exception(exc)
        self.requests.clear()

    # --- edits --------------------------------------------------------------------

    def add_edit(self, board: str, x: int, y: int, value: str, future: Future[Ack]) -> None:
        """Queue an edit on a joined board (sent now if connected); `future` gets its ack.

        Raises `ClientError` (`bad_request`) for a value or position the protocol
        refuses; nothing is queued then.
        """
        mirror = self.joined[board]
        problem = self._value_problem(value)
        if problem is not None:
            raise ClientError(ErrorCode.BAD_REQUEST, f"value {problem}")
        op_id = f"{self._op_prefix}{next(self._op_numbers)}"
        op = _cell_set(board, x, y, value, op_id, mirror.next_clock())
        self._keep(op)
        mirror.pending[op_id] = op
        self._op_futures[op_id] = future
        self._op_boards[op_id] = board
        self._bus.emit(PendingChanged(board))
        if self.send is not None:
            self.send(encode(op))

    def add_edits(
        self, board: str, edits: Iterable[tuple[int, int, str]], futures: Sequence[Future[Ack]]
    ) -> None:
        """Queue a block of edits on a joined board, sent as `cells.set` batches.

        Each edit is a pending op like `add_edit`'s, with its own future (`futures`, one
        per edit, in order) and its own `OpRefused`; only the frames differ. Every edit
        is checked first: one the protocol refuses raises `ClientError` (`bad_request`)
        naming its cell ("B4: value contains a tab, …"), and nothing is queued.
        """
        mirror = self.joined[board]
        edits = list(edits)
        if len(edits) != len(futures):
            raise ValueError("one future per edit")
        meta = mirror.meta
        sized = board not in self.restore_only  # a stand-in's size is not the board's
        for x, y, value in edits:
            if x < 0 or y < 0 or (sized and (x >= meta.width or y >= meta.height)):
                where = cell_name(x, y) if x >= 0 and y >= 0 else f"({x}, {y})"
                raise ClientError(
                    ErrorCode.BAD_REQUEST,
                    f"{where}: outside the board ({meta.width} columns, {meta.height} rows)",
                )
            problem = self._value_problem(value)
            if problem is not None:
                raise ClientError(ErrorCode.BAD_REQUEST, f"{cell_name(x, y)}: value {problem}")
        # One clock each, in order: a cell written twice in a block keeps the later.
        first_clock = mirror.next_clock()
        ops = [
            _cell_set(board, x, y, value, f"{self._batch_op_prefix}{next(self._op_numbers)}", clock)
            for clock, (x, y, value) in enumerate(edits, start=first_clock)
        ]
        if not ops:
            return
        self._write_outbox(lambda outbox: outbox.add_many(ops))
        for op, future in zip(ops, futures, strict=True):
            mirror.pending[op.op] = op
            self._op_futures[op.op] = future
            self._op_boards[op.op] = board
        self._bus.emit(PendingChanged(board))
        if self.send is not None:
            self._send_ops(self.send, [op.op for op in ops])

    def _value_problem(self, value: str) -> str | None:
        limit = self.welcome.limits.max_cell_chars if self.welcome else None
        return cell_value_problem(value) if limit is None else cell_value_problem(value, limit)

    def _send_ops(self, send: Send, op_ids: list[str]) -> None:
        """Send pending ops in order: each run of one board's batched ops (`add_edits`'s,
        told by their op id, also after a restart) as `cells.set` frames; `set_cell`'s
        ops, and a batched op alone in its run, as a plain `cell.set` each."""
        pending: list[CellSet] = []
        for op_id in op_ids:
            mirror = self.joined.get(self._op_boards.get(op_id, ""))
            if mirror is not None and op_id in mirror.pending:
                pending.append(mirror.pending[op_id])
        for run in _runs(pending):
            if len(run) == 1:
                send(encode(run[0]))
                continue
            for batch in self._pack(run):
                batch_id = f"{self._batch_prefix}{next(self._batch_numbers)}"
                self.batches[batch_id] = [op.op for op, _ in batch]
                send(_batch_frame(batch_id, run[0].board, [edit for _, edit in batch]))

    def _pack(self, run: list[CellSet]) -> list[list[tuple[CellSet, str]]]:
        """Cut one board's ops into batches of at most `MAX_BATCH_OPS` ops and at most
        the server's frame size, measuring each op as encoded (kept, with its JSON)."""
        limit = self.welcome.limits.max_message_bytes if self.welcome else MAX_MESSAGE_BYTES
        # The envelope with an id and board as long as any can be, and room to spare.
        envelope = len(_batch_frame("b" * 64, "b" * 64, []).encode()) + FRAME_MARGIN_BYTES
        budget = max(limit - envelope, 1)
        batches: list[list[tuple[CellSet, str]]] = []
        current: list[tuple[CellSet, str]] = []
        size = 0
        for op in run:
            edit = _edit(op).model_dump_json()
            op_bytes = len(edit.encode()) + 1  # and its comma
            if current and (len(current) >= MAX_BATCH_OPS or size + op_bytes > budget):
                batches.append(current)
                current, size = [], 0
            current.append((op, edit))
            size += op_bytes
        if current:
            batches.append(current)
        return batches

    @property
    def unsaved_count(self) -> int:
        return len(self._op_boards)

    def discard_unsaved(self) -> int:
        """Forget every unacknowledged edit, here and in the outbox; returns how many."""
        dropped = list(self._op_boards.items())
        self.batches.clear()
        for op_id, board in dropped:
            mirror = self.joined.get(board)
            if mirror is not None:
                mirror.pending.pop(op_id, None)
            future = self._op_futures.pop(op_id, None)
            if future is not None and not future.done():
                future.cancel()
        self._op_boards.clear()
        self._write_outbox(Outbox.clear)
        for board in {board for _, board in dropped}:
            self._bus.emit(PendingChanged(board))
        return len(dropped)

    def fail_ops(self, exc: Exception) -> None:
        for future in self._op_futures.values():
            if not future.done():
                future.set_exception(exc)

    # --- server messages ----------------------------------------------------------

    def handle(self, message: ServerMessage) -> None:
        """Apply one server message to the mirrors, settle what it answers, emit it."""
        # A busy board's commonest frames come first: the tests below cost 4 µs a frame.
        if isinstance(message, CellChanged | Cursors):
            mirror = self.joined.get(message.board)
            if mirror is not None:
                if isinstance(message, CellChanged):
                    mirror.apply_change(message)
                else:
                    mirror.apply_cursors(message)
            self._bus.emit(message)
            return
        if isinstance(message, NotesState | NotesUpdated | NotesCarets):
            peer = self.notes.get(message.board)
            if peer is not None:
                peer.handle(message)
            return
        if isinstance(message, Ack | ErrorMessage) and (message.re or "").startswith(NOTES_ID):
            peer = self.notes.get((message.re or "").split(":")[1])
            if peer is not None:
                peer.handle(message)  # refusals reach the bus as `NotesRefused`
            return
        if isinstance(message, Presence | PresenceBatch):
            for member in message.members if isinstance(message, PresenceBatch) else [message]:
                self._on_presence(member)
            return
        if isinstance(message, ParticipantJoined | ParticipantLeft | ParticipantsChanged):
            self._on_participants(message)
            return
        if isinstance(message, BoardState):
            if not self._on_board_state(message):
                return  # a part of a snapshot: nothing to tell until the last
        elif isinstance(message, CellsChanged):
            mirror = self.joined.get(message.board)
            if mirror is not None:
                mirror.apply_changes(message)
        elif isinstance(message, BoardCreated | BoardUpdated):
            self.boards[message.board.id] = message.board
            mirror = self.joined.get(message.board.id)
            if mirror is not None:
                mirror.meta = message.board
        elif isinstance(message, PresenceSnapshot | CellHistory):
            request = self.requests.get(message.re or "")
            if request is not None and not request.done():
                request.set_result(message)
        elif isinstance(message, Ack | ErrorMessage):
            self._on_reply(message)
            if isinstance(message, ErrorMessage) and message.re is None:
                logger.warning("server error: %s %s", message.code, message.message)
        if not isinstance(message, Ack):
            self._bus.emit(message)

    def _on_presence(self, member: Presence) -> None:
        """One member's view: kept, and emitted unless it is the one held already (a
        window's entry may restate what `welcome` showed)."""
        if self.presence.get(member.user) == member:
            return
        self.presence[member.user] = member
        self._bus.emit(member)

    def _on_participants(
        self, message: ParticipantJoined | ParticipantLeft | ParticipantsChanged
    ) -> None:
        """Apply participant changes as sets, emitting `ParticipantLeft` and
        `ParticipantJoined` only for what changes the mirror: an entry may restate what
        `board.state` showed. A user in both lists left and came back within the window."""
        board = message.board
        if isinstance(message, ParticipantsChanged):
            joined, left = message.joined, message.left
        else:
            who = Participant(user=message.user, name=message.name, color=message.color)
            joined, left = ([who], []) if isinstance(message, ParticipantJoined) else ([], [who])
        mirror = self.joined.get(board)
        back = {p.user: p for p in joined}
        for p in left:
            if mirror is not None:
                mirror.cursors.pop(p.user, None)  # the server dropped it at the leave
                held = mirror.participants.get(p.user)
                if held is None or held == back.get(p.user):
                    continue  # not here, or here already as they came back
                del mirror.participants[p.user]
            self._bus.emit(ParticipantLeft(board=board, user=p.user, name=p.name, color=p.color))
        for p in joined:
            if mirror is not None:
                if mirror.participants.get(p.user) == p:
                    continue
                mirror.participants[p.user] = p
            self._bus.emit(ParticipantJoined(board=board, user=p.user, name=p.name, color=p.color))

    def _on_board_state(self, state: BoardState) -> bool:
        """Take one part; return True once the snapshot is whole and the join is done."""
        mirror = self.joined.get(state.board.id)
        if mirror is None:
            mirror = self.joined[state.board.id] = BoardMirror(meta=state.board)
        if not mirror.apply_state(state):
            return False
        self.boards[state.board.id] = state.board
        for future in self.joins.pop(state.board.id, []):
            if not future.done():
                future.set_result(mirror)
        self._rejoins.pop(state.re or "", None)
        request = self.requests.get(state.re or "")
        if request is not None and not request.done():
            request.set_result(state)
        return True

    def _on_reply(self, message: Ack | ErrorMessage) -> None:
        re = message.re
        if re is None:
            return
        if re in self._rejoins and isinstance(message, ErrorMessage):
            if message.code == ErrorCode.RATE_LIMITED:
                self._rejoin_later(re, self._rejoins[re])
            else:
                self._rejoin_failed(self._rejoins.pop(re), message)
            return
        if re in self.batches:
            self._on_batch_reply(re, message)
            return
        board = self._op_boards.get(re)
        if board is not None:
            if isinstance(message, ErrorMessage) and message.code in _RETRYABLE_ERRORS:
                self._retry_op_later(re)
                return
            mirror = self.joined.get(board)
            op = None if mirror is None else mirror.pending.pop(re, None)
            self._settle(re, op, message)
            self._bus.emit(PendingChanged(board))
            if mirror is not None and not mirror.pending and board in self.restore_only:
                self._leave_restored(board)
            return
        request = self.requests.get(re)
        if request is None or request.done():
            return
        if isinstance(message, ErrorMessage):
            request.set_exception(ClientError(message.code, message.message))
        else:
            request.set_result(message)

    def _on_batch_reply(self, batch_id: str, message: Ack | ErrorMessage) -> None:
        """Settle every op of one `cells.set`: the ack's result per op, or the batch's
        error for each (a retryable one re-sends the ops still pending, later)."""
        op_ids = self.batches.pop(batch_id)
        if isinstance(message, ErrorMessage) and message.code in _RETRYABLE_ERRORS:
            self._retry_ops_later(op_ids)
            return
        results: list[OpResult | None] = list(message.ops or []) if isinstance(message, Ack) else []
        results += [None] * (len(op_ids) - len(results))
        boards: set[str] = set()
        settled: list[str] = []
        for op_id, result in zip(op_ids, results, strict=False):
            board = self._op_boards.get(op_id)
            if board is None:
                continue  # discarded, or settled by an earlier copy of this batch
            mirror = self.joined.get(board)
            op = None if mirror is None else mirror.pending.pop(op_id, None)
            reply: Ack | ErrorMessage = message
            if isinstance(message, Ack):
                reply = Ack(
                    re=op_id,
                    version=message.version if result is None else result.version,
                    applied=message.applied if result is None else result.applied,
                )
            self._settle(op_id, op, reply, batch=True)
            settled.append(op_id)
            boards.add(board)
        self._write_outbox(lambda outbox: outbox.remove_many(settled))
        if isinstance(message, ErrorMessage):
            logger.warning(
                "batch %s of %d edits refused: %s %s",
                batch_id,
                len(op_ids),
                message.code,
                message.message,
            )
        for board in boards:
            self._bus.emit(PendingChanged(board))
            mirror = self.joined.get(board)
            if mirror is not None and not mirror.pending and board in self.restore_only:
                self._leave_restored(board)

    def _retry_ops_later(self, op_ids: list[str], delay_s: float = OP_RETRY_S) -> None:
        """A batch the server failed on: its ops stay pending and go out again, batched.

        Skipped if the connection changed meanwhile: every attach re-sends all pending ops.
        """
        connection = self._connection

        def resend() -> None:
            if self.send is not None and self._connection == connection:
                self._send_ops(self.send, op_ids)

        self._later(delay_s, resend)

    @staticmethod
    def _rejoin(board: str, mirror: BoardMirror, rejoin_id: str) -> BoardJoin:
        return BoardJoin(
            board=board, since=mirror.version, epoch=mirror.epoch or None, id=rejoin_id
        )

    def _rejoin_later(self, rejoin_id: str, board: str) -> None:
        """A rejoin the rate limit refused: ask again shortly, on the same connection."""

        def resend() -> None:
            mirror = self.joined.get(board)
            if self._rejoins.get(rejoin_id) != board or mirror is None or self.send is None:
                return
            self.send(encode(self._rejoin(board, mirror, rejoin_id)))

        self._later(RATE_LIMITED_RETRY_S, resend)

    def _rejoin_failed(self, board: str, error: ErrorMessage) -> None:
        """The board is gone or closed to us: drop its mirror and refuse its queued edits."""
        logger.warning("could not rejoin %s: %s %s", board, error.code, error.message)
        mirror = self.joined.pop(board, None)
        self.restore_only.discard(board)
        for op_id in [op for op, b in self._op_boards.items() if b == board]:
            op = None if mirror is None else mirror.pending.get(op_id)
            self._settle(op_id, op, error)
        self._bus.emit(PendingChanged(board))

    def _settle(
        self, op_id: str, op: CellSet | None, reply: Ack | ErrorMessage, *, batch: bool = False
    ) -> None:
        """An op is done (acknowledged, or refused for good): forget it everywhere.

        `batch`: one op of a `cells.set`; the caller removes it from the outbox and logs
        a refusal once, for the whole batch.
        """
        self._op_boards.pop(op_id, None)
        if not batch:
            self._forget(op_id)
        future = self._op_futures.pop(op_id, None)
        if isinstance(reply, ErrorMessage) and op is not None:
            if not batch:
                logger.warning("edit %s refused: %s %s", op_id, reply.code, reply.message)
            self._bus.emit(
                OpRefused(op.board, op_id, op.x, op.y, op.value, reply.code, reply.message)
            )
        if future is None or future.done():
            return
        if isinstance(reply, Ack):
            future.set_result(reply)
        else:
            future.set_exception(ClientError(reply.code, reply.message))

    def _retry_op_later(self, op_id: str, delay_s: float = OP_RETRY_S) -> None:
        """A server-side failure: the op stays pending and goes out again (resending is safe)."""

        def resend() -> None:
            board = self._op_boards.get(op_id)
            mirror = self.joined.get(board or "")
            if mirror is not None and op_id in mirror.pending and self.send is not None:
                self.send(encode(mirror.pending[op_id]))

        self._later(delay_s, resend)

    def _leave_restored(self, board: str) -> None:
        """A board joined only for kept edits has them all in: leave it quietly."""
        self.restore_only.discard(board)
        self.joined.pop(board, None)
        if self.send is not None:
            self.send(encode(BoardLeave(board=board, id=f"r{next(self._ids)}")))

    # --- the durable outbox -------------------------------------------------------

    def _restore_outbox(self) -> int:
        """Queue the edits an earlier run left unacknowledged, on stand-in board mirrors.

        Each board is joined on connect like any other (the stand-in is replaced by the
        server's `board.state`), and left again once its edits are in, unless the
        application joined it meanwhile.
        """
        if self._outbox_file is None:
            return 0
        try:
            kept = self._outbox_file.load()
        except OutboxError as exc:
            self._outbox_failed(exc)
            return 0
        for op in kept:
            mirror = self.joined.get(op.board)
            if mirror is None:
                mirror = self.stand_in(op.board)
                self.restore_only.add(op.board)
            mirror.pending[op.op] = op
            self._op_boards[op.op] = op.board
        if kept:
            logger.info("re-sending %d edits kept from an earlier run", len(kept))
        return len(kept)

    def stand_in(self, board: str) -> BoardMirror:
        """A mirror for a board to join on connect, until the server's `board.state`
        replaces it (nothing reads it before that)."""
        meta = BoardMeta.model_construct(
            id=board, title=board, width=1, height=1, created_by="", version=0
        )
        mirror = self.joined[board] = BoardMirror(meta=meta)
        return mirror

    def _keep(self, op: CellSet) -> None:
        self._write_outbox(lambda outbox: outbox.add(op))

    def _forget(self, op_id: str) -> None:
        self._write_outbox(lambda outbox: outbox.remove(op_id))

    def _write_outbox(self, write: Callable[[Outbox], None]) -> None:
        """Apply `write` to the outbox, if there is one; a failure is reported, not raised."""
        if self._outbox_file is None:
            return
        try:
            write(self._outbox_file)
        except OutboxError as exc:
            self._outbox_failed(exc)

    def _outbox_failed(self, exc: OutboxError) -> None:
        """The edit still goes to the server; only surviving this process is at risk."""
        logger.warning("%s", exc)
        self._bus.emit(OutboxFailed(str(exc)))


def _edit(op: CellSet) -> CellEdit:
    """The op without its board, unvalidated: it was checked as a `CellSet` when queued."""
    return CellEdit.model_construct(x=op.x, y=op.y, value=op.value, op=op.op, clock=op.clock)


def _batch_frame(batch_id: str, board: str, edits: list[str]) -> str:
    """One `cells.set` frame around ops already encoded (by `_pack`, which measured
    them): each op is serialised once. Every op was checked when it was queued."""
    envelope = encode(CellsSet.model_construct(id=batch_id, board=board, ops=[]))
    assert envelope.endswith("[]}")
    return f"{envelope[:-2]}{','.join(edits)}]}}"


def _runs(ops: list[CellSet]) -> list[list[CellSet]]:
    """Consecutive batched ops of one board, in order, each run to go out as batches;
    any other op is a run of its own."""
    runs: list[list[CellSet]] = []
    for op in ops:
        batched = op.op.startswith(BATCHED_OP)
        if (
            runs
            and batched
            and runs[-1][-1].op.startswith(BATCHED_OP)
            and runs[-1][0].board == op.board
        ):
            runs[-1].append(op)
        else:
            runs.append([op])
    return runs


def _cell_set(board: str, x: int, y: int, value: str, op_id: str, clock: int) -> CellSet:
    """The `cell.set` for an edit; `ClientError` (`bad_request`) for what the protocol
    refuses, in its words."""
    try:
        return CellSet(board=board, x=x, y=y, value=value, op=op_id, clock=clock, id=op_id)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "cell"
        raise ClientError(ErrorCode.BAD_REQUEST, printable(f"{where}: {first['msg']}")) from None

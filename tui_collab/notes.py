"""SharedNotes: a client's replica of a board's notes, kept in sync with the server.

The replica is a pycrdt document whose root `Text` "notes" holds the markdown. Every
transaction on it whose origin is not `SharedNotes.REMOTE` is a local edit: its Yjs
update is kept on disk (when the client has a data dir), then sent as `notes.update`
(cut to the server's per-update limit) while connected. Offline, edits only go to disk;
on every (re)connect `notes.open` sends the replica's state vector, the server answers
with what the replica lacks and its own state vector, and the replica sends what the
server lacks. Yjs updates commute and repeat harmlessly, so nothing needs ordering or
de-duplicating.

pycrdt's `Text` counts UTF-8 bytes; this module's own indexes (`insert`, `delete`,
`set_caret`, `carets`) count characters, as Python strings and Textual do.

Nothing here opens a socket: frames go out through the `send` the client attaches, and
server messages come in through `handle`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from pycrdt import Assoc, Doc, StickyIndex, Subscription, Text, TransactionEvent

from tui_collab.events import (
    EventBus,
    NotesCaretsChanged,
    NotesChanged,
    NotesRefused,
    OutboxFailed,
)
from tui_collab.private_files import create_private_file, make_private_dir
from tui_collab.protocol import (
    NOTES_UPDATE_MAX_BYTES,
    Ack,
    ErrorCode,
    ErrorMessage,
    NotesCaret,
    NotesCarets,
    NotesClose,
    NotesOpen,
    NotesState,
    NotesUpdate,
    NotesUpdated,
    encode,
)
from tui_collab.yupdate import (
    EMPTY_UPDATE,
    NOTES_ROOT,
    CausalQueue,
    UpdateError,
    is_panic,
    parse_update,
    split_update,
)

logger = logging.getLogger("tui_collab.client")

Send = Callable[[str], None]
Later = Callable[[float, Callable[[], None]], object]
NotesMessage = NotesState | NotesUpdated | NotesCarets | Ack | ErrorMessage

FILE_NAME: Final = "notes.sqlite3"
RETRY_S: Final = 1.0
"""The wait before re-sending an update the server failed on (`internal`, `rate_limited`)."""
_RETRYABLE: Final = {ErrorCode.INTERNAL, ErrorCode.RATE_LIMITED}


def char_to_byte(text: str, index: int) -> int:
    """A character index in `text` as the UTF-8 byte offset pycrdt's `Text` uses."""
    return len(text[: max(0, index)].encode("utf-8", "surrogatepass"))


def byte_to_char(text: str, offset: int) -> int:
    """A pycrdt `Text` offset (UTF-8 bytes) as a character index in `text`."""
    return len(text.encode("utf-8", "surrogatepass")[: max(0, offset)].decode("utf-8", "ignore"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _is_empty(update: bytes) -> bool:
    """Whether an update carries nothing (no structs, no deletions)."""
    if update == EMPTY_UPDATE:
        return True
    try:
        parsed = parse_update(update)
    except UpdateError:
        return False
    return not parsed.clients and not parsed.delete_set


class NotesReplica:
    """The replica's updates on disk, one file beside the outbox for every board and key.

    Each update is one row, written before it is sent (or once applied, for other
    people's); opening folds a board's rows into one (`replace`), so the file holds about
    one document's size per board.
    """

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key
        make_private_dir(path.parent)
        create_private_file(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=2000")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS updates (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                key TEXT NOT NULL, board TEXT NOT NULL, data BLOB NOT NULL)"""
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS updates_by_board ON updates (key, board)")

    @classmethod
    def beside(cls, outbox_path: Path, key: str) -> NotesReplica:
        return cls(outbox_path.parent / FILE_NAME, key)

    def load(self, board: str) -> tuple[int, list[bytes]]:
        """The board's kept updates, oldest first, and the last one's row number."""
        rows = self._db.execute(
            "SELECT seq, data FROM updates WHERE key = ? AND board = ? ORDER BY seq",
            (self.key, board),
        ).fetchall()
        return (int(rows[-1][0]) if rows else 0), [bytes(r[1]) for r in rows]

    def replace(self, board: str, upto: int, state: bytes) -> None:
        """Keep `state` (the whole replica) instead of the rows up to `upto`."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "DELETE FROM updates WHERE key = ? AND board = ? AND seq <= ?",
                (self.key, board, upto),
            )
            self._db.execute(
                "INSERT INTO updates (key, board, data) VALUES (?, ?, ?)",
                (self.key, board, state),
            )

    def add(self, board: str, update: bytes) -> None:
        self._db.execute(
            "INSERT INTO updates (key, board, data) VALUES (?, ?, ?)", (self.key, board, update)
        )

    def close(self) -> None:
        self._db.close()


class SharedNotes:
    """One board's notes on this client; see the module doc."""

    REMOTE: Final = "tui-collab:remote"
    """The origin of transactions that apply other people's updates (never sent back)."""

    def __init__(
        self,
        board: str,
        user: str,
        bus: EventBus,
        later: Later,
        replica: NotesReplica | None = None,
        update_max_bytes: int = NOTES_UPDATE_MAX_BYTES,
        on_close: Callable[[SharedNotes], None] | None = None,
    ) -> None:
        self.board = board
        self.user = user
        self.doc: Doc[Any] = Doc()
        self.text: Text = self.doc.get(NOTES_ROOT, type=Text)
        self.update_max_bytes = update_max_bytes
        self._bus = bus
        self._later = later
        self._replica = replica
        self._on_close = on_close
        self._ids = itertools.count(1)
        self._send: Send | None = None
        self._open_id: str | None = None
        self._inflight: dict[str, bytes] = {}
        self._remote = False
        self._queue = CausalQueue()
        self._carets: dict[str, tuple[str | None, str | None]] = {}
        self._own_caret: tuple[str | None, str | None] = (None, None)
        self._waiting: list[asyncio.Future[None]] = []
        self.synced = False
        """Whether the replica and the server have exchanged what each lacked since the
        last (re)connect."""
        self.closed = False
        self.on_acked: Callable[[bytes], None] | None = None
        """Called with each update the server acknowledged (it is stored for good)."""
        if replica is not None:
            self._load_replica(replica)
        self._subscription: Subscription = self.doc.observe(self._on_transaction)

    # --- what the application uses ----------------------------------------------------

    @property
    def unacked(self) -> int:
        """Updates sent and not acknowledged yet."""
        return len(self._inflight)

    @property
    def applying_remote(self) -> bool:
        """True while another person's update is being applied (inside observers)."""
        return self._remote

    def insert(self, index: int, value: str) -> None:
        """Insert at a character index (a local edit)."""
        self.text.insert(char_to_byte(str(self.text), index), value)

    def delete(self, start: int, end: int) -> None:
        """Delete the characters from `start` to `end` (a local edit)."""
        current = str(self.text)
        first, last = char_to_byte(current, start), char_to_byte(current, end)
        if last > first:
            del self.text[first:last]

    def set_caret(self, anchor: int | None, head: int | None) -> None:
        """This user's selection (`anchor` to `head`, character indexes); None: no caret."""
        if anchor is None and head is None:
            caret: tuple[str | None, str | None] = (None, None)
        else:
            current = str(self.text)
            caret = (
                self._sticky(current, head if anchor is None else anchor),
                self._sticky(current, anchor if head is None else head),
            )
        self._own_caret = caret
        if self._send is not None:
            self._send(encode(NotesCaret(board=self.board, anchor=caret[0], head=caret[1])))

    def carets(self) -> dict[str, tuple[int, int]]:
        """The others' carets as (anchor, head) character indexes in the current text."""
        current = str(self.text)
        found: dict[str, tuple[int, int]] = {}
        for user, (anchor, head) in self._carets.items():
            head_at = self._resolve(current, head or anchor)
            anchor_at = self._resolve(current, anchor or head)
            if head_at is not None and anchor_at is not None:
                found[user] = (anchor_at, head_at)
        return found

    async def wait_synced(self) -> None:
        """Return once the replica and the server have exchanged what each lacked."""
        if self.synced:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        await future

    async def close(self) -> None:
        """Stop syncing: the server forgets this subscription and this user's caret."""
        if self.closed:
            return
        self.closed = True
        if self._send is not None:
            self._send(encode(NotesClose(board=self.board)))
        self._send = None
        self.doc.unobserve(self._subscription)
        if self._replica is not None:
            self._replica.close()
        if self._on_close is not None:
            self._on_close(self)
        self._settle_waiting(ConnectionError("notes closed"))

    # --- the connection comes and goes -------------------------------------------------

    def attached(self, send: Send) -> None:
        """Connected (the board rejoined just before): ask for what the replica lacks."""
        self._send = send
        self._inflight.clear()
        self.synced = False
        self._open_id = f"n:{self.board}:o{next(self._ids)}"
        send(encode(NotesOpen(id=self._open_id, board=self.board, sv=_b64(self.doc.get_state()))))

    def detached(self) -> None:
        """Offline: what was in flight is sent again by the next sync."""
        self._send = None
        self._inflight.clear()
        self.synced = False

    def handle(self, message: NotesMessage) -> None:
        if isinstance(message, NotesState):
            self._on_state(message)
        elif isinstance(message, NotesUpdated):
            self._apply(base64.b64decode(message.update))
            self._bus.emit(NotesChanged(self.board, message.by, remote=True))
        elif isinstance(message, NotesCarets):
            for entry in message.carets:
                if entry.user == self.user:
                    continue
                if entry.anchor is None and entry.head is None:
                    self._carets.pop(entry.user, None)
                else:
                    self._carets[entry.user] = (entry.anchor, entry.head)
            self._bus.emit(NotesCaretsChanged(self.board))
        else:
            self._on_reply(message)

    # --- inside ------------------------------------------------------------------------

    def _on_state(self, state: NotesState) -> None:
        if state.re != self._open_id:
            return  # the answer to an earlier connection's open
        before = str(self.text)
        self._apply(base64.b64decode(state.update))
        if str(self.text) != before:
            self._bus.emit(NotesChanged(self.board, "", remote=True))
        missing = self.doc.get_update(base64.b64decode(state.sv))
        if not _is_empty(missing):
            self._send_update(missing)
        self._carets = {c.user: (c.anchor, c.head) for c in state.carets if c.user != self.user}
        self._bus.emit(NotesCaretsChanged(self.board))
        if self._own_caret != (None, None) and self._send is not None:
            anchor, head = self._own_caret
            self._send(encode(NotesCaret(board=self.board, anchor=anchor, head=head)))
        self.synced = True
        self._settle_waiting(None)

    def _on_reply(self, message: Ack | ErrorMessage) -> None:
        re = message.re or ""
        if re == self._open_id and isinstance(message, ErrorMessage):
            self._refused(message)
            self._settle_waiting(ConnectionRefusedError(f"{message.code}: {message.message}"))
            return
        update = self._inflight.pop(re, None)
        if update is None:
            return
        if isinstance(message, Ack):
            if self.on_acked is not None:
                self.on_acked(update)
            return
        if message.code in _RETRYABLE:
            self._later(RETRY_S, lambda: self._resend(update))
            return
        self._refused(message)

    def _refused(self, error: ErrorMessage) -> None:
        logger.warning("notes of %s refused: %s %s", self.board, error.code, error.message)
        self._bus.emit(NotesRefused(self.board, error.code, error.message))

    def _resend(self, update: bytes) -> None:
        if self._send is not None and not self.closed:
            self._send_update(update)

    def _settle_waiting(self, exc: Exception | None) -> None:
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if future.done():
                continue
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)

    def _load_replica(self, replica: NotesReplica) -> None:
        kept = self._replica_call(lambda r: r.load(self.board))
        if not kept or not kept[1]:
            return
        upto, updates = kept
        for update in updates:
            self._apply(update, persist=False)
        if len(updates) > 1:
            state = self.doc.get_update()
            self._replica_call(lambda r: r.replace(self.board, upto, state))

    def _apply(self, update: bytes, persist: bool = True) -> None:
        """Apply someone else's update (or a kept one) without sending it back: once
        what it builds on is here (`yupdate.CausalQueue`), so maybe later."""
        try:
            ready = self._queue.offer(update, None, self.doc.get_state())
        except UpdateError as exc:
            logger.warning("ignoring a notes update of %s Yjs cannot read: %s", self.board, exc)
            return
        for piece, _ in ready:
            self._remote = True
            try:
                with self.doc.transaction(origin=self.REMOTE):
                    self.doc.apply_update(piece)
            except BaseException as exc:
                if not is_panic(exc) and not isinstance(exc, ValueError):
                    raise
                logger.warning("notes of %s: Yrs failed on an update: %s", self.board, exc)
                continue
            finally:
                self._remote = False
            if persist and self._replica is not None:
                self._keep(piece)

    def _keep(self, update: bytes) -> None:
        self._replica_call(lambda r: r.add(self.board, update))

    def _on_transaction(self, event: TransactionEvent) -> None:
        if self._remote:
            return
        update: bytes = event.update
        if _is_empty(update):
            return
        if self._replica is not None:
            self._keep(update)
        if self._send is not None:
            self._send_update(update)
        self._bus.emit(NotesChanged(self.board, self.user, remote=False))

    def _send_update(self, update: bytes) -> None:
        assert self._send is not None
        for piece in split_update(update, self.update_max_bytes):
            update_id = f"n:{self.board}:u{next(self._ids)}"
            self._inflight[update_id] = piece
            self._send(encode(NotesUpdate(id=update_id, board=self.board, update=_b64(piece))))

    def _sticky(self, current: str, index: int | None) -> str | None:
        """A relative position for a character index, or None where Yrs cannot make one.

        Yrs (pycrdt 0.14) panics for a position at the end of the text when asked to
        stick after it, and for some offsets inside multi-byte characters: the end sticks
        before instead, and a panic means no caret rather than a dead client. Exact for
        ASCII text; a caret after other characters may land a few characters off
        (y-crdt/pycrdt#382)."""
        if index is None:
            return None
        at = min(max(0, index), len(current))
        assoc = Assoc.AFTER if at < len(current) else Assoc.BEFORE
        try:
            return _b64(self.text.sticky_index(char_to_byte(current, at), assoc).encode())
        except BaseException as exc:
            if not is_panic(exc):
                raise
            logger.debug("no relative position for index %d of %d", at, len(current))
            return None

    def _resolve(self, current: str, encoded: str | None) -> int | None:
        """Where another user's relative position is now; None if it cannot be placed
        (not yet known here, malformed, or a Yrs panic: their caret, never our crash)."""
        if encoded is None:
            return None
        try:
            sticky = StickyIndex.decode(base64.b64decode(encoded), self.text)
            return byte_to_char(current, sticky.get_index())
        except BaseException as exc:
            if not (is_panic(exc) or isinstance(exc, Exception)):
                raise
            return None

    def _replica_call(self, call: Callable[[NotesReplica], Any]) -> Any:
        assert self._replica is not None
        try:
            return call(self._replica)
        except sqlite3.Error as exc:
            message = f"cannot keep the notes of {self.board} on disk: {exc}"
            logger.warning("%s", message)
            self._bus.emit(OutboxFailed(message))
            return None

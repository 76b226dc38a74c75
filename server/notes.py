"""Each board's live notes: one pycrdt document per board, its subscribers and carets.

A board's document is loaded on the first `notes.open` (after watching the board's
notes channel, so an update stored meanwhile is in the load or arrives after it) and
dropped when its last subscriber leaves. An update is checked whole before anything is
done with it (`tui_collab.yupdate`: well-formed, plain text under the root "notes", no
control characters; then decoded by Yrs itself into an empty scratch document, which
costs what the update's size costs, not the document's), stored, then applied to the
shared document and sent to the other subscribers, then acked. Carets are relayed, never
read: they go out in the same leading-edge windows as grid cursors (`hub.Window`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, cast

from pycrdt import Doc, Text

from server.cluster import Cluster
from server.hub import Session, Window
from server.join_stream import cost_tokens
from server.peer import Peer, Sender
from server.store.notes_base import COMPACT_AFTER, NotesStore
from tui_collab.protocol import (
    Ack,
    ErrorCode,
    NoteCaret,
    NotesCaret,
    NotesCarets,
    NotesOpen,
    NotesState,
    NotesUpdate,
    NotesUpdated,
    ProtocolError,
    encode,
)
from tui_collab.yupdate import (
    NOTES_ROOT,
    CausalQueue,
    ParsedUpdate,
    UpdateError,
    check_notes_update,
    is_panic,
    state_vector,
)

logger = logging.getLogger(__name__)

Key = tuple[str, str]
Caret = tuple[str | None, str | None]
Spawn = Callable[[Coroutine[Any, Any, Any]], None]

NO_CARET: Final[Caret] = (None, None)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, field: str, re: str | None) -> bytes:
    """Strict base64 (the alphabet is checked by the protocol, padding here)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: not valid base64", re) from None


@dataclass(frozen=True, slots=True)
class NotesLimits:
    max_bytes: int
    """The text, in UTF-8 bytes."""
    update_max_bytes: int
    """One update, decoded."""


class BoardNotes:
    """One loaded document: who reads it, and the carets in it."""

    def __init__(
        self,
        team: str,
        board: str,
        interval_s: float,
        outbound: Sender,
        cluster: Cluster,
        doc: Doc[Any] | None = None,
        queue: CausalQueue | None = None,
    ) -> None:
        self.team = team
        self.board = board
        self.doc: Doc[Any] = Doc() if doc is None else doc
        self.text = self.doc.get(NOTES_ROOT, type=Text)
        self.queue = CausalQueue() if queue is None else queue
        """Updates that arrived before one they build on, held until it comes."""
        self.subscribers: dict[Peer, Session] = {}
        self.carets: dict[str, Caret] = {}
        """This node's users' carets (a cleared one until the window sends it)."""
        self.remote_carets: dict[str, tuple[str, Caret]] = {}
        """Other nodes' users: user -> (node, caret)."""
        self._moved: dict[str, Caret] = {}
        self._moved_remote: dict[str, Caret] = {}
        self._outbound = outbound
        self._cluster = cluster
        self._window = Window(interval_s, self._flush)
        self.compacting = False

    def receive(
        self, update: bytes, by: str, sender: Peer | None, parsed: ParsedUpdate | None = None
    ) -> None:
        """Apply an update, or hold it until what it builds on is here; send the others
        each update as it is applied, so every subscriber gets them in causal order."""
        for ready, tag in self.queue.offer(update, (by, sender), self.doc.get_state(), parsed):
            author, origin = cast("tuple[str, Peer | None]", tag)
            try:
                self.doc.apply_update(ready)
            except BaseException as exc:
                if not is_panic(exc) and not isinstance(exc, ValueError):
                    raise
                logger.error("notes %s/%s: Yrs failed on an update: %s", self.team, self.board, exc)
                continue
            frame = encode(NotesUpdated(board=self.board, update=b64(ready), by=author))
            self.broadcast(frame, exclude=origin)

    def broadcast(self, frame: str, exclude: Peer | None = None) -> None:
        targets = [peer for peer in self.subscribers if peer is not exclude]
        if targets:
            self._outbound.send(targets, frame)

    def users(self) -> set[str]:
        return {session.user for session in self.subscribers.values()}

    def caret_list(self, exclude: str) -> list[NoteCaret]:
        """Every current caret but `exclude`'s, for `notes.state`."""
        current = {user: caret for user, (_, caret) in self.remote_carets.items()}
        current.update(self.carets)
        return [
            NoteCaret(user=user, anchor=anchor, head=head)
            for user, (anchor, head) in current.items()
            if user != exclude and (anchor is not None or head is not None)
        ]

    def move_caret(self, user: str, caret: Caret) -> None:
        self.carets[user] = caret
        self._moved[user] = caret
        self._window.poke()

    def remote_moves(self, node: str, carets: list[NoteCaret]) -> None:
        for entry in carets:
            caret = (entry.anchor, entry.head)
            if caret == NO_CARET:
                self.remote_carets.pop(entry.user, None)
            else:
                self.remote_carets[entry.user] = (node, caret)
            self._moved_remote[entry.user] = caret
        self._window.poke()

    def node_down(self, node: str) -> None:
        for user, (owner, _) in list(self.remote_carets.items()):
            if owner == node:
                del self.remote_carets[user]
                self._moved_remote[user] = NO_CARET
        self._window.poke()

    def _flush(self) -> bool:
        """One `notes.carets` per window; nobody is sent their own caret back."""
        if not self._moved and not self._moved_remote:
            return False
        local, remote = self._moved, self._moved_remote
        self._moved, self._moved_remote = {}, {}
        moved = {**remote, **local}
        for user, caret in local.items():
            if caret == NO_CARET:
                self.carets.pop(user, None)
        by_user: dict[str, list[Peer]] = {}
        for peer, session in self.subscribers.items():
            by_user.setdefault(session.user, []).append(peer)
        shared: str | None = None
        for user, peers in by_user.items():
            entries = [_caret(u, c) for u, c in moved.items() if u != user]
            if not entries:
                continue
            if user in moved:
                frame = encode(NotesCarets(board=self.board, carets=entries))
            else:
                shared = shared or encode(NotesCarets(board=self.board, carets=entries))
                frame = shared
            self._outbound.send(peers, frame, coalescible=True)
        if local:
            carets = [_caret(u, c).model_dump() for u, c in local.items()]
            self._cluster.publish_notes(
                self.team, self.board, {"node": self._cluster.node, "carets": carets}
            )
        return True

    def flush(self) -> None:
        """Send the window's caret changes now."""
        self._window.fire()

    def close(self) -> None:
        self._window.close()


def _caret(user: str, caret: Caret) -> NoteCaret:
    return NoteCaret(user=user, anchor=caret[0], head=caret[1])


class NotesHub:
    """The loaded notes of every board, and which sessions opened which."""

    def __init__(
        self,
        store: NotesStore,
        outbound: Sender,
        cluster: Cluster,
        spawn: Spawn,
        interval_s: float,
        limits: NotesLimits,
    ) -> None:
        self._store = store
        self._outbound = outbound
        self._cluster = cluster
        self._spawn = spawn
        self._interval = interval_s
        self.limits = limits
        self._boards: dict[Key, BoardNotes] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._opened: dict[Session, set[str]] = {}

    def get(self, team: str, board: str) -> BoardNotes | None:
        return self._boards.get((team, board))

    async def _load(self, team: str, board: str) -> BoardNotes:
        key = (team, board)
        notes = self._boards.get(key)
        if notes is not None:
            return notes
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            notes = self._boards.get(key)
            if notes is None:
                await self._cluster.watch_notes(team, board)
                stored = await self._store.load_notes(team, board)
                doc, queue = stored.rebuild()
                notes = BoardNotes(
                    team, board, self._interval, self._outbound, self._cluster, doc, queue
                )
                self._boards[key] = notes
                logger.debug(
                    "loaded notes %s/%s: %d bytes, %d logged updates",
                    team,
                    board,
                    len(notes.text),
                    len(stored.updates),
                )
        self._locks.pop(key, None)
        return notes

    # --- client messages --------------------------------------------------------------

    async def open(self, session: Session, message: NotesOpen) -> None:
        sv = unb64(message.sv, "sv", message.id)
        try:
            Doc().get_update(sv)  # checks the state vector against an empty document
        except ValueError:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "sv: not a Yjs state vector", message.id
            ) from None
        notes = await self._load(session.team, message.board)
        if session.ending or message.board not in session.boards:
            self._unload_if_idle(notes)  # gone, or left the board, while it loaded
            if session.ending:
                return
            raise ProtocolError(
                ErrorCode.FORBIDDEN, f"join board {message.board!r} first", message.id
            )
        notes.subscribers[session.ws] = session
        self._opened.setdefault(session, set()).add(message.board)
        frame = encode(
            NotesState(
                re=message.id,
                board=message.board,
                update=b64(notes.doc.get_update(sv)),
                sv=b64(notes.doc.get_state()),
                carets=notes.caret_list(exclude=session.user),
            )
        )
        session.send(frame)
        if session.bucket is not None:
            session.bucket.charge(cost_tokens(len(frame)))  # a big document costs more

    async def update(self, session: Session, message: NotesUpdate) -> None:
        notes = self._subscribed(session, message.board, message.id)
        data = unb64(message.update, "update", message.id)
        limit = self.limits.update_max_bytes
        if len(data) > limit:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"update: {len(data)} bytes, at most {limit}: split it (docs/protocol.md)",
                message.id,
            )
        try:
            parsed = check_notes_update(data)
            Doc().apply_update(data)  # Yrs' own decoder, on nothing of ours
        except (UpdateError, ValueError) as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"update: {exc}", message.id) from None
        except BaseException as exc:
            if not is_panic(exc):
                raise
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "update: Yjs cannot apply it", message.id
            ) from None
        cap = self.limits.max_bytes
        adds = parsed.new_bytes(state_vector(notes.doc.get_state()))
        if adds and len(notes.text) + notes.queue.held_bytes + adds > cap:
            raise ProtocolError(
                ErrorCode.QUOTA_EXCEEDED,
                f"the notes of board {message.board!r} would pass {cap} bytes; "
                "delete some text first",
                message.id,
            )
        if session.bucket is not None:
            session.bucket.charge(cost_tokens(len(message.update)))
        logged = await self._store.append_notes(session.team, message.board, data, session.user)
        live = self._boards.get((session.team, message.board))
        if live is not None:
            live.receive(data, session.user, session.ws, parsed)
            if logged >= COMPACT_AFTER:
                self._compact(live)
        session.send(encode(Ack(re=message.id)))

    def caret(self, session: Session, message: NotesCaret) -> None:
        notes = self._subscribed(session, message.board, message.id)
        notes.move_caret(session.user, (message.anchor, message.head))

    def close(self, session: Session, board: str) -> None:
        """Unsubscribe; clear the user's caret unless another of their sessions reads on."""
        opened = self._opened.get(session)
        if opened is None or board not in opened:
            return
        opened.discard(board)
        if not opened:
            del self._opened[session]
        notes = self._boards.get((session.team, board))
        if notes is None:
            return
        notes.subscribers.pop(session.ws, None)
        if session.user not in notes.users() and session.user in notes.carets:
            notes.move_caret(session.user, NO_CARET)
        self._unload_if_idle(notes)

    def forget(self, session: Session) -> None:
        for board in list(self._opened.get(session, ())):
            self.close(session, board)

    def _subscribed(self, session: Session, board: str, re: str | None) -> BoardNotes:
        notes = self._boards.get((session.team, board))
        if notes is None or session.ws not in notes.subscribers:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, f"open the notes of board {board!r} first (notes.open)", re
            )
        return notes

    def _unload_if_idle(self, notes: BoardNotes) -> None:
        if notes.subscribers:
            return
        notes.flush()  # cleared carets still reach the other nodes
        notes.close()
        self._boards.pop((notes.team, notes.board), None)
        self._cluster.unwatch_notes(notes.team, notes.board)

    def _compact(self, notes: BoardNotes) -> None:
        if notes.compacting:
            return
        notes.compacting = True

        async def compact() -> None:
            try:
                if await self._store.compact_notes(notes.team, notes.board):
                    logger.info("compacted the notes of %s/%s", notes.team, notes.board)
            finally:
                notes.compacting = False

        self._spawn(compact())

    # --- other nodes ------------------------------------------------------------------

    def remote(self, team: str, board: str, node: str, message: dict[str, Any]) -> None:
        """An update another node stored, or its users' carets."""
        notes = self._boards.get((team, board))
        if notes is None:
            return
        if "u" in message:
            notes.receive(base64.b64decode(message["u"]), message["by"], None)
        elif "carets" in message:
            notes.remote_moves(node, [NoteCaret.model_validate(c) for c in message["carets"]])

    def node_down(self, node: str) -> None:
        for notes in self._boards.values():
            notes.node_down(node)

    async def resync(self) -> None:
        """After a broken subscription: read each loaded document's store again and send
        the subscribers whatever this node missed."""
        for notes in list(self._boards.values()):
            stored = await self._store.load_notes(notes.team, notes.board)
            scratch, _ = stored.rebuild()
            before = (notes.doc.get_state(), str(notes.text))
            missing = scratch.get_update(notes.doc.get_state())
            notes.receive(missing, self._cluster.node, None)
            if (notes.doc.get_state(), str(notes.text)) != before:
                logger.info("notes %s/%s: refilled after a lost message", notes.team, notes.board)

    def close_all(self) -> None:
        for notes in self._boards.values():
            notes.close()

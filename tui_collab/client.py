"""CollabClient: one long-lived connection to a tui-collab server, for apps, bots and scripts.

The client survives what real networks do. It reconnects with jittered exponential
backoff (never after the server said the token or protocol version is wrong), and after
each reconnect it says hello again, restores its status, rejoins its boards asking only
for what changed, and re-sends every edit the server has not acknowledged, unchanged and
in order. Edits made while offline queue the same way. The application reads state from
the client's mirrors and listens to typed events; it never touches the socket.

This module is the asyncio layer: the socket, the reconnect loop, token renewal, write
pacing (`tui_collab.ratelimit`) and the timers of the cursor and typing throttles
(`tui_collab.throttle`). What the client knows and owes (mirrors,
pending edits and the durable outbox, requests waiting for a reply, the handling of
each server message) is `tui_collab.client_state`, with no I/O; when to reconnect and
when to give up is `tui_collab.retry`.

    async with CollabClient("ws://127.0.0.1:9001/ws", token=token) as client:
        board = await client.join("plan")
        await client.set_cell("plan", 0, 0, "hello")
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import sqlite3
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from tui_collab import __version__
from tui_collab.backoff import Backoff
from tui_collab.client_state import (
    RATE_LIMITED_RETRY_S,
    ClientError,
    ClientState,
    NotConnected,
)
from tui_collab.events import (
    Closed,
    Connected,
    Connecting,
    ConnectionState,
    EventBus,
    OutboxFailed,
    PendingChanged,
    Reconnecting,
    Restored,
    StateChanged,
)
from tui_collab.mirror import BoardMirror
from tui_collab.notes import NotesReplica, SharedNotes
from tui_collab.outbox import Outbox
from tui_collab.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Activity,
    AuthRefresh,
    BoardCreate,
    BoardJoin,
    BoardLeave,
    BoardMeta,
    BoardState,
    BoardUpdate,
    CellHistory,
    CellHistoryQuery,
    CellSet,
    ColumnWidth,
    CursorMove,
    ErrorCode,
    ErrorMessage,
    Hello,
    HistoryEntry,
    Presence,
    PresenceQuery,
    PresenceSet,
    PresenceSnapshot,
    ProtocolError,
    ServerMessage,
    Status,
    TypingSet,
    Welcome,
    decode_server,
    encode,
    printable,
)
from tui_collab.ratelimit import TokenBucket
from tui_collab.retry import (
    FinalReason,
    GiveUp,
    RenewToken,
    RetryPolicy,
    close_reason,
    tls_failure,
)
from tui_collab.throttle import Throttle
from tui_collab.tokens import token_expiry, token_lifetime

__all__ = [
    "ClientError",
    "CollabClient",
    "NotConnected",
    "TokenProvider",
]

logger = logging.getLogger(__name__)

E = TypeVar("E")
Sleep = Callable[[float], Awaitable[None]]
TokenProvider = Callable[[], Awaitable[str]]
"""Returns a fresh token; called before the current one expires and after a 401."""
REFRESH_MARGIN_S: Final = 60.0
"""Ask for a new token this long before `exp` (or a fifth of its life, if shorter)."""

CURSOR_INTERVAL_S: Final = 1 / 30
"""At most ~30 cursor moves a second go out; the last position always does."""
TYPING_REPEAT_S: Final = 2.0
"""While a person types, `typing active:true` goes out at most this often; other
clients drop a mark that has not been repeated for 5 s, so a vanished typer's mark goes."""
JOIN_ATTEMPTS: Final = 5
"""How often `join` asks for a board the server refused with `rate_limited`."""


class CollabClient:
    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        token: str | None = None,
        user: str | None = None,
        team: str | None = None,
        name: str | None = None,
        client_id: str | None = None,
        backoff: Backoff | None = None,
        max_attempts: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        open_timeout_s: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        token_provider: TokenProvider | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise ValueError("at least one server URL is needed")
        if token is None and token_provider is None and (user is None or team is None):
            raise ValueError(
                "pass a token or a token_provider, or user and team for an open-mode server"
            )
        self._token = token
        self._token_provider = token_provider
        self._user, self._team, self._name = user, team, name
        self._outbox_file = outbox
        if client_id is None and outbox is not None:
            client_id = outbox.client_id()  # re-sent edits then carry their first client id
        self.client_id = client_id or f"c-{secrets.token_hex(8)}"
        self.backoff = backoff or Backoff()
        self.max_attempts = max_attempts
        self._ssl = ssl_context
        self._open_timeout = open_timeout_s
        self._sleep = sleep

        self.state: ConnectionState = Closed("not started")
        self.attempts = 0
        """Connection attempts made so far, successful or not."""

        self._bus = EventBus()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._cursors = Throttle(CURSOR_INTERVAL_S)
        self._cursor_timer: dict[str, asyncio.TimerHandle] = {}
        self._typing = Throttle(TYPING_REPEAT_S)
        self._typing_timer: dict[str, asyncio.TimerHandle] = {}
        self._state = ClientState(self._bus, _call_later, outbox)

    @property
    def welcome(self) -> Welcome | None:
        """The server's last `welcome` (its limits, members and boards)."""
        return self._state.welcome

    @property
    def presence(self) -> dict[str, Presence]:
        """The team's presence, by user."""
        return self._state.presence

    @property
    def boards(self) -> dict[str, BoardMeta]:
        """Every board of the team, by id."""
        return self._state.boards

    @property
    def joined(self) -> dict[str, BoardMirror]:
        """The mirror of every joined board, by id."""
        return self._state.joined

    @property
    def restored(self) -> int:
        """How many edits kept from an earlier run this client will send."""
        return self._state.restored

    # --- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> CollabClient:
        self.start()
        await self.wait_connected()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._task is None:
            self._closing = False
            self.state = Connecting(self.urls[0])
            self._task = asyncio.create_task(self._run(), name="collab-client")
            if self.restored:
                self._bus.emit(Restored(self.restored))
                for board in self.joined:
                    self._bus.emit(PendingChanged(board))

    async def wait_connected(self) -> None:
        """Wait until connected; raise `ConnectionError` if the client closed for good."""
        changed = asyncio.Event()
        unsubscribe = self.on(StateChanged, lambda _: changed.set())
        try:
            while not isinstance(self.state, Connected):
                if isinstance(self.state, Closed):
                    state = self.state
                    detail = f" ({state.detail})" if state.detail else ""
                    raise ConnectionError(f"client closed: {state.reason}{detail}")
                changed.clear()
                await changed.wait()
        finally:
            unsubscribe()

    async def close(self) -> None:
        """Close for good: unacknowledged ops stay unacknowledged, and their futures fail.
        Open notes are closed too (their replicas stay on disk)."""
        for notes in list(self._state.notes.values()):
            if isinstance(notes, SharedNotes):
                await notes.close()
        self._closing = True
        self._wake.set()
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await self._task
            self._task = None
        self._state.fail_ops(ConnectionError("client closed before the ack"))

    def reconnect_now(self) -> None:
        """Skip the rest of the current backoff wait, or start again after giving up."""
        if self._task is not None and self._task.done() and not self._closing:
            self._task = None
            self.start()
        self._wake.set()

    # --- events ---------------------------------------------------------------------

    def on(self, kind: type[E], handler: Callable[[E], Any]) -> Callable[[], None]:
        """Call `handler` for every event of `kind`; returns a function that unsubscribes."""
        return self._bus.on(kind, handler)

    def events(self) -> AsyncIterator[Any]:
        """Every event, in order: server messages, `StateChanged`, `PendingChanged`."""
        return self._bus.stream()

    # --- requests -------------------------------------------------------------------

    async def refresh_token(self, token: str) -> None:
        """Swap in a new token; on a live connection the server checks it at once.

        Raises `ClientError` (`unauthorized`) if the server refuses it; the server then
        closes the connection.
        """
        self._token = token
        if self._state.send is not None:
            await self._request(AuthRefresh(token=token))

    async def join(self, board: str) -> BoardMirror:
        """Join a board; returns its mirror once the server's whole `board.state` (every
        part of it) arrived.

        A join costs the server's rate limit by its size: one refused with
        `rate_limited` is asked again a second later, a few times.
        """
        self._state.restore_only.discard(board)
        future: asyncio.Future[BoardMirror] = asyncio.get_running_loop().create_future()
        self._state.joins.setdefault(board, []).append(future)
        try:
            for attempt in itertools.count(1):
                mirror = self.joined.get(board)
                since, epoch = (mirror.version, mirror.epoch) if mirror else (None, None)
                try:
                    reply = await self._request(BoardJoin(board=board, since=since, epoch=epoch))
                except ClientError as exc:
                    if exc.code != ErrorCode.RATE_LIMITED or attempt >= JOIN_ATTEMPTS:
                        raise
                    await self._sleep(RATE_LIMITED_RETRY_S)
                    continue
                break
        except BaseException:
            if future in self._state.joins.get(board, []):
                self._state.joins[board].remove(future)
            raise
        assert isinstance(reply, BoardState)
        return await future

    async def open_notes(self, board: str) -> SharedNotes:
        """Open a board's notes (joining the board first if needed): the replica kept on
        disk is loaded, and once connected, synced with the server; returns after that
        first sync, or at once while offline (it syncs on reconnect).

        Raises `ClientError` when the server refuses to open them.
        """
        notes = self._state.notes.get(board)
        if notes is None:
            if board not in self.joined and self._state.send is not None:
                await self.join(board)
            elif board not in self.joined:
                self._state.stand_in(board)  # offline: joined on connect, then synced
            replica = None
            if self._outbox_file is not None:
                try:
                    replica = NotesReplica.beside(self._outbox_file.path, self._outbox_file.key)
                except (OSError, sqlite3.Error) as exc:
                    # Synced all the same; only quitting while offline would lose edits.
                    self._bus.emit(OutboxFailed(f"cannot keep the notes on disk: {exc}"))
            limits = self.welcome.limits if self.welcome else None
            user = self.welcome.user.id if self.welcome else (self._user or "")
            notes = SharedNotes(
                board,
                user,
                self._bus,
                _call_later,
                replica,
                update_max_bytes=limits.notes_update_max_bytes if limits else 32 * 1024,
                on_close=lambda closed: self._forget_notes(board, closed),
            )
            self._state.notes[board] = notes
            if self._state.send is not None:
                notes.attached(self._state.send)
        if not isinstance(notes, SharedNotes):
            raise TypeError(f"notes of {board!r} are not SharedNotes")
        if self._state.send is not None:
            try:
                await notes.wait_synced()
            except ConnectionRefusedError as exc:
                await notes.close()
                code, _, message = str(exc).partition(": ")
                raise ClientError(code, message) from None
        return notes

    def _forget_notes(self, board: str, notes: SharedNotes) -> None:
        if self._state.notes.get(board) is notes:
            del self._state.notes[board]

    async def leave(self, board: str) -> None:
        await self._request(BoardLeave(board=board))
        self.joined.pop(board, None)

    async def create_board(
        self, title: str, width: int, height: int, board: str | None = None
    ) -> Ack:
        reply = await self._request(
            BoardCreate(board=board, title=title, width=width, height=height)
        )
        assert isinstance(reply, Ack)
        return reply

    async def set_status(
        self, status: Status | None = None, activity: Activity | None = None
    ) -> None:
        """Set this user's status and activity; restored after every reconnect."""
        if status is not None:
            self._state.status = status
        if activity is not None:
            self._state.activity = activity
        if self._state.send is not None:  # otherwise restored once connected
            await self._request(PresenceSet(status=status, activity=activity))

    async def query_presence(self, user: str | None = None) -> list[Presence]:
        reply = await self._request(PresenceQuery(user=user))
        assert isinstance(reply, PresenceSnapshot)
        return reply.members

    async def set_cell(self, board: str, x: int, y: int, value: str) -> Ack:
        """Write a cell; resolves once the server made the op durable (or found it beaten).

        Works while disconnected too: the op waits in order and goes out on reconnect.
        With an outbox it is on disk before this returns control, and survives the
        process. A value or position the protocol refuses raises `ClientError`
        (`bad_request`) at once, and nothing is queued.
        """
        mirror = self.joined.get(board)
        if mirror is None:
            raise NotConnected(f"join board {board!r} before editing it")
        if isinstance(self.state, Closed) and (self._task is None or self._task.done()):
            raise NotConnected(f"the client is closed ({self.state.reason})")
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._state.add_edit(board, x, y, value, future)
        return await future

    async def set_cells(self, board: str, edits: Iterable[tuple[int, int, str]]) -> list[Ack]:
        """Write a block of cells (a paste, an import): one ack per edit, in order.

        Each `(x, y, value)` becomes a pending op exactly as with `set_cell` (the
        outbox, `PendingChanged`, an `OpRefused` per op), but they travel as `cells.set`
        frames of up to `MAX_BATCH_OPS` ops and under the server's frame size: a
        thousand cells cost a frame or two, not a thousand. Every edit is checked
        first; one the protocol refuses raises `ClientError` (`bad_request`) naming its
        cell, and nothing is queued. A refused batch refuses each of its edits: the
        first refusal is raised, after every op has settled.
        """
        mirror = self.joined.get(board)
        if mirror is None:
            raise NotConnected(f"join board {board!r} before editing it")
        if isinstance(self.state, Closed) and (self._task is None or self._task.done()):
            raise NotConnected(f"the client is closed ({self.state.reason})")
        edits = list(edits)
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Ack]] = [loop.create_future() for _ in edits]
        self._state.add_edits(board, edits, futures)
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [result for result in results if isinstance(result, Ack)]

    async def cell_history(self, board: str, x: int, y: int) -> list[HistoryEntry]:
        """The ops that won this cell, newest first (the server keeps `HISTORY_PER_CELL`)."""
        try:
            query = CellHistoryQuery(board=board, x=x, y=y)
        except ValidationError as exc:
            raise _bad_request(exc) from None
        reply = await self._request(query)
        assert isinstance(reply, CellHistory)
        return reply.entries

    async def set_column_widths(self, board: str, widths: Mapping[int, int]) -> None:
        """Set some columns' widths (merged; `DEFAULT_COLUMN_WIDTH` resets a column).

        Every client sees the change as `board.updated` (and in `mirror.meta.widths`);
        a width out of range or an unknown board raises `ClientError`.
        """
        try:
            update = BoardUpdate(
                board=board,
                widths=[ColumnWidth(x=x, width=width) for x, width in sorted(widths.items())],
            )
        except ValidationError as exc:
            raise _bad_request(exc) from None
        await self._request(update)

    @property
    def unsaved_count(self) -> int:
        """Edits the server has not acknowledged yet, on every board."""
        return self._state.unsaved_count

    @property
    def has_outbox(self) -> bool:
        """Whether unacknowledged edits outlive this process (a durable outbox is set)."""
        return self._outbox_file is not None

    async def flush(self) -> None:
        """Return once every edit is acknowledged or refused (bound it with `asyncio.timeout`)."""
        done = asyncio.Event()

        def check(_: object) -> None:
            if not self._state.unsaved_count:
                done.set()

        unsubscribe = self.on(PendingChanged, check)
        try:
            check(None)
            await done.wait()
        finally:
            unsubscribe()

    def discard_unsaved(self) -> int:
        """Forget every unacknowledged edit, here and in the outbox; returns how many.

        An edit already on the wire may still land; nothing is sent again. Callers
        awaiting one of them see it cancelled.
        """
        return self._state.discard_unsaved()

    @property
    def token_expires_at(self) -> float | None:
        """When the current token runs out (Unix time); None without a token or `exp`."""
        return None if self._token is None else token_expiry(self._token)

    def move_cursor(self, board: str, x: int, y: int) -> None:
        """Never blocks; sends at most ~30 moves a second and always the last position."""
        self._cursors.due[board] = (x, y)
        if board in self._cursor_timer:
            return
        self._flush_when_due(self._cursors, self._cursor_timer, board, self._flush_cursor)

    def set_typing(self, board: str, x: int, y: int, active: bool) -> None:
        """Say this user is (still) typing at a cell; call on every keystroke.

        Never blocks. `active=True` goes out at most every `TYPING_REPEAT_S` (the last
        position always does); `active=False` goes out at once. Teammates drop a mark
        that is not repeated, so a typer who stops (or vanishes) loses it by itself.
        """
        timer = self._typing_timer.pop(board, None)
        if timer is not None:
            timer.cancel()
        if not active:
            if self._typing.stop(board):
                self._send_typing(board, x, y, False)
            return
        self._typing.due[board] = (x, y)
        self._flush_when_due(self._typing, self._typing_timer, board, self._flush_typing)

    def pending(self, board: str) -> list[CellSet]:
        """This client's ops on `board` not yet acknowledged, oldest first."""
        mirror = self.joined.get(board)
        return [] if mirror is None else list(mirror.pending.values())

    # --- internals ------------------------------------------------------------------

    @staticmethod
    def _flush_when_due(
        throttle: Throttle,
        timers: dict[str, asyncio.TimerHandle],
        board: str,
        flush: Callable[[str], None],
    ) -> None:
        """Call `flush(board)` now if `throttle` allows it, else once it does."""
        loop = asyncio.get_running_loop()
        wait = throttle.wait_s(board, loop.time())
        if wait <= 0:
            flush(board)
        else:
            timers[board] = loop.call_later(wait, flush, board)

    def _flush_typing(self, board: str) -> None:
        self._typing_timer.pop(board, None)
        position = self._typing.take(board, asyncio.get_running_loop().time())
        if position is not None:
            self._send_typing(board, *position, True)

    def _send_typing(self, board: str, x: int, y: int, active: bool) -> None:
        if self._state.send is not None:  # offline: a stale mark is worse than none
            self._state.send(encode(TypingSet(board=board, x=x, y=y, active=active)))

    def _flush_cursor(self, board: str) -> None:
        self._cursor_timer.pop(board, None)
        send = self._state.send
        if send is None:
            return  # kept due: sent on reconnect
        position = self._cursors.take(board, asyncio.get_running_loop().time())
        if position is None:
            return
        send(encode(CursorMove(board=board, x=position[0], y=position[1])))

    async def _request(self, message: Any) -> ServerMessage:
        future: asyncio.Future[ServerMessage] = asyncio.get_running_loop().create_future()
        request_id = self._state.open_request(message, future)
        try:
            return await future
        finally:
            self._state.requests.pop(request_id, None)

    def _set_state(self, state: ConnectionState) -> None:
        self.state = state
        logger.debug("connection state: %s", state)
        self._bus.emit(StateChanged(state))

    async def _run(self) -> None:
        final: FinalReason = FinalReason.CLOSED
        detail = ""
        try:
            final, detail = await self._connect_until_final()
        except Exception as exc:
            logger.exception("client stopped by an unexpected error")
            final, detail = FinalReason.ERROR, f"unexpected error: {type(exc).__name__}: {exc}"
        finally:
            self._state.fail_requests(ConnectionError("client closed"))
            if final != FinalReason.CLOSED or not self._closing:
                self._state.fail_ops(ConnectionError(f"client closed: {detail or final}"))
            self._set_state(Closed(final.value, detail))
            self._bus.close()

    async def _connect_until_final(self) -> tuple[FinalReason, str]:
        """Connect and reconnect until something final happens; return why it ended.

        Returns the `Closed` reason and a line for a person. A refused token, a
        certificate that does not verify, a bad URL or another protocol version are
        final at once: retrying cannot change them.
        """
        policy = RetryPolicy(self.urls, self.backoff, self.max_attempts)
        stale_token = self._token is None
        while not self._closing:
            url = policy.url
            self._set_state(Connecting(url))
            if self._token_provider is not None and (stale_token or self._token_expiring()):
                try:
                    self._token = await self._token_provider()
                except Exception as exc:
                    logger.warning("the token provider failed: %s", exc)
                    return FinalReason.UNAUTHORIZED, f"could not get a token: {exc}"
            self.attempts += 1
            welcomed, code, reason = await self._attempt(url)
            if self._closing:
                break
            decision = policy.after(
                welcomed,
                code,
                reason,
                may_renew_token=self._token_provider is not None and not stale_token,
            )
            if isinstance(decision, RenewToken):
                logger.info("token refused (%s); asking for a new one", reason)
                stale_token = True
                continue
            stale_token = False
            if isinstance(decision, GiveUp):
                if decision.fatal:
                    logger.warning("giving up on the server (%s): %s", decision.reason, reason)
                return decision.reason, decision.detail
            self._set_state(Reconnecting(decision.failures, decision.delay_s, reason))
            await self._wait(decision.delay_s)
        return FinalReason.CLOSED, ""

    async def _wait(self, delay: float) -> None:
        self._wake.clear()
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    async def _attempt(self, url: str) -> tuple[bool, int | None, str]:
        """One connection's life; returns (got a welcome, close code, reason)."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                user_agent_header=f"tui-collab/{__version__}",
                compression=None,
                max_size=None,  # board snapshots can be large; the server is trusted
                # Reading pauses past 256 frames not yet handled and resumes at 64: with
                # websockets' 16 and 4, a client a burst had put behind (a team's
                # reconnect, a window of edits) stopped and restarted reading every 12
                # frames, a tenth of its time in a 500-client restart storm.
                max_queue=(256, 64),
                open_timeout=self._open_timeout,
                ping_interval=10,
                ping_timeout=10,
                close_timeout=2,
                ssl=self._tls_for(url),
            )
        except InvalidStatus as exc:
            return False, None, f"HTTP {exc.response.status_code}"
        except ssl.SSLCertVerificationError as exc:
            return False, None, tls_failure(urlsplit(url).netloc, exc)
        except (OSError, TimeoutError, WebSocketException) as exc:
            return False, None, f"{type(exc).__name__}: {exc}"
        self._ws = ws  # from now on close() can reach it
        welcomed = False
        try:
            welcomed = await self._handshake(ws)
            if welcomed and self._closing:
                await ws.close()
            elif welcomed:
                await self._serve(ws, url)
        except ConnectionClosed:
            pass
        except (ProtocolError, TimeoutError) as exc:
            logger.warning("dropping connection: %s", exc)
            await ws.close()
        finally:
            self._ws = None
            self._state.detach()
        code = ws.close_code
        return welcomed, code, close_reason(code, ws.close_reason)

    def _tls_for(self, url: str) -> ssl.SSLContext | None:
        """wss:// verifies against the system's trust store unless given a context.

        `ssl.create_default_context()` honours `SSL_CERT_FILE` and `SSL_CERT_DIR`.
        """
        if self._ssl is None and url.startswith("wss:"):
            self._ssl = ssl.create_default_context()
        return self._ssl if url.startswith("wss:") else None

    async def _handshake(self, ws: ClientConnection) -> bool:
        hello = Hello(
            v=PROTOCOL_VERSION, client=f"tui-collab/{__version__}", client_id=self.client_id
        )
        if self._token is None:
            hello.user, hello.team, hello.name = self._user, self._team, self._name
        await ws.send(encode(hello))
        first = decode_server(await asyncio.wait_for(ws.recv(), self._open_timeout))
        if isinstance(first, ErrorMessage):
            logger.warning("server refused hello: %s %s", first.code, first.message)
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                await asyncio.wait_for(ws.wait_closed(), 3)
            return False
        if not isinstance(first, Welcome):
            raise ProtocolError(first.type, "expected welcome")  # type: ignore[arg-type]
        self.client_id = first.client_id
        self._state.welcomed(first)
        return True

    async def _serve(self, ws: ClientConnection, url: str) -> None:
        outbox: asyncio.Queue[str] = asyncio.Queue()
        self._state.attach(outbox.put_nowait)  # restores status, boards and pending ops
        for board in list(self._cursors.due):
            self._flush_cursor(board)
        assert self.welcome is not None
        self._set_state(Connected(url, self.welcome.session))
        limits = self.welcome.limits
        # Stay a little under the advertised limit: the server's clock is not ours.
        writer = asyncio.create_task(
            self._write(ws, outbox, limits.rate_per_s * 0.9, max(1.0, limits.burst * 0.9))
        )
        refresher = asyncio.create_task(self._keep_token_fresh()) if self._token_provider else None
        try:
            async for frame in ws:
                try:
                    message = decode_server(frame)
                except ProtocolError as exc:
                    logger.warning("ignoring a frame the client cannot read: %s", exc.message)
                    continue
                self._state.handle(message)
        finally:
            for task in (writer, refresher):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await task

    def _refresh_at(self) -> float | None:
        """The Unix time at which to ask for the next token, if the current one expires."""
        lifetime = None if self._token is None else token_lifetime(self._token)
        if lifetime is None:
            return None
        issued, expiry = lifetime
        return expiry - min(REFRESH_MARGIN_S, max(0.0, expiry - issued) / 5)

    def _token_expiring(self) -> bool:
        refresh_at = self._refresh_at()
        return refresh_at is not None and time.time() >= refresh_at

    async def _keep_token_fresh(self) -> None:
        """Swap in a new token shortly before each one expires, for as long as connected."""
        assert self._token_provider is not None
        while True:
            refresh_at = self._refresh_at()
            if refresh_at is None:
                return
            await asyncio.sleep(max(0.0, refresh_at - time.time()))
            try:
                await self.refresh_token(await self._token_provider())
            except (ClientError, NotConnected):
                logger.warning("token refresh refused; reconnecting with a new one")
                return
            except Exception:
                logger.exception("token refresh failed; retrying in 5 s")
                await asyncio.sleep(5)

    @staticmethod
    async def _write(
        ws: ClientConnection, outbox: asyncio.Queue[str], rate: float, burst: float
    ) -> None:
        """Send in order, paced under the server's limit so nothing is dropped for rate."""
        bucket = TokenBucket(rate, burst, asyncio.get_running_loop().time)
        while True:
            frame = await outbox.get()
            wait = bucket.wait_s()
            if wait > 0:
                await asyncio.sleep(wait)
            bucket.charge(1.0)
            await ws.send(frame)


def _bad_request(exc: ValidationError) -> ClientError:
    """A request the protocol refuses, said before sending it."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "request"
    return ClientError(ErrorCode.BAD_REQUEST, printable(f"{where}: {first['msg']}"))


def _call_later(delay_s: float, callback: Callable[[], None]) -> object:
    return asyncio.get_running_loop().call_later(delay_s, callback)

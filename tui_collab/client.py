"""CollabClient: one long-lived connection to a tui-collab server, for apps, bots and scripts.

The client survives what real networks do. It reconnects with jittered exponential
backoff (never after the server said the token or protocol version is wrong), and after
each reconnect it says hello again, restores its status, rejoins its boards asking only
for what changed, and re-sends every edit the server has not acknowledged, unchanged and
in order. Edits made while offline queue the same way. The application reads state from
the client's mirrors and listens to typed events; it never touches the socket.

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
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from tui_collab import __version__
from tui_collab.backoff import Backoff
from tui_collab.events import (
    Closed,
    Connected,
    Connecting,
    ConnectionState,
    EventBus,
    PendingChanged,
    Reconnecting,
    StateChanged,
)
from tui_collab.mirror import BoardMirror
from tui_collab.protocol import (
    Ack,
    Activity,
    AuthRefresh,
    BoardCreate,
    BoardCreated,
    BoardJoin,
    BoardLeave,
    BoardMeta,
    BoardState,
    BoardUpdated,
    CellChanged,
    CellSet,
    CloseCode,
    CursorMove,
    Cursors,
    ErrorMessage,
    Hello,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
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
)
from tui_collab.tokens import token_lifetime

logger = logging.getLogger(__name__)

E = TypeVar("E")
Sleep = Callable[[float], Awaitable[None]]
TokenProvider = Callable[[], Awaitable[str]]
"""Returns a fresh token; called before the current one expires and after a 401."""
REFRESH_MARGIN_S: Final = 60.0
"""Ask for a new token this long before `exp` (or a fifth of its life, if shorter)."""

CURSOR_INTERVAL_S: Final = 1 / 30
"""At most ~30 cursor moves a second go out; the last position always does."""
_FATAL_CLOSES: Final = {
    CloseCode.AUTH_FAILED: "unauthorized",
    CloseCode.UNSUPPORTED_VERSION: "unsupported_version",
}
_CLOSE_REASONS: Final = {
    1000: "closed by the server",
    1001: "server went away",
    1006: "connection lost",
    1008: "refused by the server",
    1009: "message too big",
    1011: "server error or missed keepalive",
    CloseCode.TRY_AGAIN_LATER: "server busy",
    CloseCode.RATE_LIMITED: "rate limited",
}
_SLOW_DOWN_CLOSES: Final = {CloseCode.RATE_LIMITED}
"""Closes that mean "you sent too much": wait the longest backoff. A 1013 (this client
fell behind, or was over a cap at hello) backs off like any failure, so a terminal
that was suspended for a while catches up as soon as it resumes."""


class ClientError(Exception):
    """The server answered a request with an `error`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NotConnected(Exception):
    """The request needs a live connection and there is none right now."""


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
        self.client_id = client_id or f"c-{secrets.token_hex(8)}"
        self.backoff = backoff or Backoff()
        self.max_attempts = max_attempts
        self._ssl = ssl_context
        self._open_timeout = open_timeout_s
        self._sleep = sleep

        self.state: ConnectionState = Closed("not started")
        self.welcome: Welcome | None = None
        self.presence: dict[str, Presence] = {}
        self.boards: dict[str, BoardMeta] = {}
        self.joined: dict[str, BoardMirror] = {}
        self.attempts = 0
        """Connection attempts made so far, successful or not."""

        self._bus = EventBus()
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._ids = itertools.count(1)
        self._op_prefix = f"o{secrets.token_hex(4)}-"  # op ids: unique for this client
        self._op_numbers = itertools.count(1)
        self._rejoins: dict[str, str] = {}
        self._requests: dict[str, asyncio.Future[ServerMessage]] = {}
        self._joins: dict[str, list[asyncio.Future[BoardMirror]]] = {}
        self._op_futures: dict[str, asyncio.Future[Ack]] = {}
        self._op_boards: dict[str, str] = {}
        self._status: Status | None = None
        self._activity: Activity | None = None
        self._cursor_due: dict[str, tuple[int, int]] = {}
        self._cursor_sent_at: dict[str, float] = {}
        self._cursor_timer: dict[str, asyncio.TimerHandle] = {}

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

    async def wait_connected(self) -> None:
        """Wait until connected; raise `ConnectionError` if the client closed for good."""
        changed = asyncio.Event()
        unsubscribe = self.on(StateChanged, lambda _: changed.set())
        try:
            while not isinstance(self.state, Connected):
                if isinstance(self.state, Closed):
                    raise ConnectionError(f"client closed: {self.state.reason}")
                changed.clear()
                await changed.wait()
        finally:
            unsubscribe()

    async def close(self) -> None:
        """Close for good: unacknowledged ops stay unacknowledged, and their futures fail."""
        self._closing = True
        self._wake.set()
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await self._task
            self._task = None
        self._fail_ops(ConnectionError("client closed before the ack"))

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
        if self._outbox is not None:
            await self._request(AuthRefresh(token=token))

    async def join(self, board: str) -> BoardMirror:
        """Join a board; returns its mirror once the server's `board.state` arrived."""
        mirror = self.joined.get(board)
        since, epoch = (mirror.version, mirror.epoch) if mirror else (None, None)
        future: asyncio.Future[BoardMirror] = asyncio.get_running_loop().create_future()
        self._joins.setdefault(board, []).append(future)
        try:
            reply = await self._request(BoardJoin(board=board, since=since, epoch=epoch))
        except BaseException:
            if future in self._joins.get(board, []):
                self._joins[board].remove(future)
            raise
        assert isinstance(reply, BoardState)
        return await future

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
            self._status = status
        if activity is not None:
            self._activity = activity
        if self._outbox is not None:  # otherwise restored once connected
            await self._request(PresenceSet(status=status, activity=activity))

    async def query_presence(self, user: str | None = None) -> list[Presence]:
        reply = await self._request(PresenceQuery(user=user))
        assert isinstance(reply, PresenceSnapshot)
        return reply.members

    async def set_cell(self, board: str, x: int, y: int, value: str) -> Ack:
        """Write a cell; resolves once the server made the op durable (or found it beaten).

        Works while disconnected too: the op waits in order and goes out on reconnect.
        """
        mirror = self.joined.get(board)
        if mirror is None:
            raise NotConnected(f"join board {board!r} before editing it")
        if isinstance(self.state, Closed) and (self._task is None or self._task.done()):
            raise NotConnected(f"the client is closed ({self.state.reason})")
        op_id = f"{self._op_prefix}{next(self._op_numbers)}"
        op = CellSet(
            board=board, x=x, y=y, value=value, op=op_id, clock=mirror.next_clock(), id=op_id
        )
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        mirror.pending[op_id] = op
        self._op_futures[op_id] = future
        self._op_boards[op_id] = board
        self._bus.emit(PendingChanged(board))
        if self._outbox is not None:
            self._outbox.put_nowait(encode(op))
        return await future

    def move_cursor(self, board: str, x: int, y: int) -> None:
        """Never blocks; sends at most ~30 moves a second and always the last position."""
        self._cursor_due[board] = (x, y)
        if board in self._cursor_timer:
            return
        loop = asyncio.get_running_loop()
        wait = self._cursor_sent_at.get(board, float("-inf")) + CURSOR_INTERVAL_S - loop.time()
        if wait <= 0:
            self._flush_cursor(board)
        else:
            self._cursor_timer[board] = loop.call_later(wait, self._flush_cursor, board)

    def set_typing(self, board: str, x: int, y: int, active: bool) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(encode(TypingSet(board=board, x=x, y=y, active=active)))

    def pending(self, board: str) -> list[CellSet]:
        """This client's ops on `board` not yet acknowledged, oldest first."""
        mirror = self.joined.get(board)
        return [] if mirror is None else list(mirror.pending.values())

    # --- internals ------------------------------------------------------------------

    def _flush_cursor(self, board: str) -> None:
        self._cursor_timer.pop(board, None)
        if self._outbox is None:
            return  # kept in _cursor_due: sent on reconnect
        position = self._cursor_due.pop(board, None)
        if position is None:
            return
        self._cursor_sent_at[board] = asyncio.get_running_loop().time()
        self._outbox.put_nowait(encode(CursorMove(board=board, x=position[0], y=position[1])))

    async def _request(self, message: Any) -> ServerMessage:
        if self._outbox is None:
            raise NotConnected("not connected to the server")
        request_id = f"r{next(self._ids)}"
        message.id = request_id
        future: asyncio.Future[ServerMessage] = asyncio.get_running_loop().create_future()
        self._requests[request_id] = future
        self._outbox.put_nowait(encode(message))
        try:
            return await future
        finally:
            self._requests.pop(request_id, None)

    def _set_state(self, state: ConnectionState) -> None:
        self.state = state
        logger.debug("connection state: %s", state)
        self._bus.emit(StateChanged(state))

    async def _run(self) -> None:
        final = "closed"
        try:
            final = await self._connect_until_final()
        except Exception:
            logger.exception("client stopped by an unexpected error")
            final = "error"
        finally:
            self._fail_requests(ConnectionError("client closed"))
            if final != "closed" or not self._closing:
                self._fail_ops(ConnectionError(f"client closed: {final}"))
            self._set_state(Closed(final))
            self._bus.close()

    async def _connect_until_final(self) -> str:
        """Connect and reconnect until something final happens; return why it ended."""
        failures = 0
        url_index = 0
        stale_token = self._token is None
        while not self._closing:
            url = self.urls[url_index % len(self.urls)]
            self._set_state(Connecting(url))
            if self._token_provider is not None and (stale_token or self._token_expiring()):
                try:
                    self._token = await self._token_provider()
                except Exception:
                    logger.exception("the token provider failed")
                    return "unauthorized"
            self.attempts += 1
            welcomed, code, reason = await self._attempt(url)
            if self._closing:
                break
            fatal = _FATAL_CLOSES.get(code or 0)
            if fatal is None and reason.startswith("HTTP 401"):
                fatal = "unauthorized"
            if fatal is None and reason.startswith("InvalidURI"):
                fatal = "invalid_url"
            if fatal == "unauthorized" and self._token_provider is not None and not stale_token:
                # The token may just have run out: one more try with a fresh one.
                logger.info("token refused (%s); asking for a new one", reason)
                stale_token = True
                continue
            stale_token = False
            if fatal is not None:
                logger.warning("giving up on the server (%s): %s", fatal, reason)
                return fatal
            failures = 1 if welcomed else failures + 1
            if self.max_attempts is not None and failures > self.max_attempts:
                return "gave_up"
            if not welcomed:
                url_index += 1  # a server that cannot be reached: try the next one
            slow_down = code in _SLOW_DOWN_CLOSES or reason.startswith("HTTP 503")
            delay = self.backoff.delay(failures, self.backoff.cap_s if slow_down else 0.0)
            self._set_state(Reconnecting(failures, delay, reason))
            await self._wait(delay)
        return "closed"

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
                open_timeout=self._open_timeout,
                ping_interval=10,
                ping_timeout=10,
                close_timeout=2,
                ssl=self._ssl,
            )
        except InvalidStatus as exc:
            return False, None, f"HTTP {exc.response.status_code}"
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
            self._detach()
        code = ws.close_code
        reason = ws.close_reason or _CLOSE_REASONS.get(code or 1006, f"closed with {code}")
        return welcomed, code, reason

    async def _handshake(self, ws: ClientConnection) -> bool:
        hello = Hello(v=1, client=f"tui-collab/{__version__}", client_id=self.client_id)
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
        self.welcome = first
        self.client_id = first.client_id
        self.presence = {m.user: m for m in first.members}
        self.boards = {b.id: b for b in first.boards}
        self._bus.emit(first)
        return True

    async def _serve(self, ws: ClientConnection, url: str) -> None:
        outbox: asyncio.Queue[str] = asyncio.Queue()
        # Restore, in the order the server must see it: status, boards, then every
        # unacknowledged op, oldest first (the server handles a connection's frames in order).
        if self._status is not None or self._activity is not None:
            outbox.put_nowait(encode(PresenceSet(status=self._status, activity=self._activity)))
        self._rejoins.clear()
        for board, mirror in self.joined.items():
            rejoin_id = f"rejoin-{next(self._ids)}"
            self._rejoins[rejoin_id] = board
            outbox.put_nowait(
                encode(
                    BoardJoin(
                        board=board, since=mirror.version, epoch=mirror.epoch or None, id=rejoin_id
                    )
                )
            )
        for op_id, board in self._op_boards.items():
            waiting = self.joined.get(board)
            if waiting is not None and op_id in waiting.pending:
                outbox.put_nowait(encode(waiting.pending[op_id]))
        self._ws, self._outbox = ws, outbox
        for board in list(self._cursor_due):
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
                self._handle(message)
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
        loop = asyncio.get_running_loop()
        tokens, updated = burst, loop.time()
        while True:
            frame = await outbox.get()
            now = loop.time()
            tokens = min(burst, tokens + (now - updated) * rate)
            updated = now
            if tokens < 1.0:
                await asyncio.sleep((1.0 - tokens) / rate)
                tokens, updated = 1.0, loop.time()
            tokens -= 1.0
            await ws.send(frame)

    def _detach(self) -> None:
        self._ws = None
        self._outbox = None
        self._fail_requests(NotConnected("connection lost before the reply"))

    def _fail_requests(self, exc: Exception) -> None:
        for future in self._requests.values():
            if not future.done():
                future.set_exception(exc)
        self._requests.clear()

    def _handle(self, message: ServerMessage) -> None:
        if isinstance(message, Presence):
            self.presence[message.user] = message
        elif isinstance(message, BoardState):
            self._on_board_state(message)
        elif isinstance(message, CellChanged):
            mirror = self.joined.get(message.board)
            if mirror is not None:
                mirror.apply_change(message)
        elif isinstance(message, Cursors):
            mirror = self.joined.get(message.board)
            if mirror is not None:
                mirror.apply_cursors(message)
        elif isinstance(message, ParticipantJoined):
            mirror = self.joined.get(message.board)
            if mirror is not None:
                mirror.participants[message.user] = Participant(
                    user=message.user, name=message.name, color=message.color
                )
        elif isinstance(message, ParticipantLeft):
            mirror = self.joined.get(message.board)
            if mirror is not None:
                mirror.participants.pop(message.user, None)
                mirror.cursors.pop(message.user, None)
        elif isinstance(message, BoardCreated | BoardUpdated):
            self.boards[message.board.id] = message.board
            mirror = self.joined.get(message.board.id)
            if mirror is not None:
                mirror.meta = message.board
        elif isinstance(message, PresenceSnapshot):
            request = self._requests.get(message.re or "")
            if request is not None and not request.done():
                request.set_result(message)
        elif isinstance(message, Ack | ErrorMessage):
            self._on_reply(message)
            if isinstance(message, ErrorMessage) and message.re is None:
                logger.warning("server error: %s %s", message.code, message.message)
        if not isinstance(message, Ack):
            self._bus.emit(message)

    def _on_board_state(self, state: BoardState) -> None:
        mirror = self.joined.get(state.board.id)
        if mirror is None:
            mirror = self.joined[state.board.id] = BoardMirror(meta=state.board)
        mirror.apply_state(state)
        self.boards[state.board.id] = state.board
        for future in self._joins.pop(state.board.id, []):
            if not future.done():
                future.set_result(mirror)
        self._rejoins.pop(state.re or "", None)
        request = self._requests.get(state.re or "")
        if request is not None and not request.done():
            request.set_result(state)

    def _rejoin_failed(self, board: str, error: ErrorMessage) -> None:
        """The board is gone or closed to us: drop its mirror and fail its queued edits."""
        logger.warning("could not rejoin %s: %s %s", board, error.code, error.message)
        self.joined.pop(board, None)
        for op_id in [op for op, b in self._op_boards.items() if b == board]:
            self._op_boards.pop(op_id)
            future = self._op_futures.pop(op_id, None)
            if future is not None and not future.done():
                future.set_exception(ClientError(error.code, error.message))
        self._bus.emit(PendingChanged(board))

    def _retry_op_later(self, op_id: str, delay_s: float = 1.0) -> None:
        """A server-side failure: the op stays pending and goes out again (resending is safe)."""

        def resend() -> None:
            board = self._op_boards.get(op_id)
            mirror = self.joined.get(board or "")
            if mirror is not None and op_id in mirror.pending and self._outbox is not None:
                self._outbox.put_nowait(encode(mirror.pending[op_id]))

        asyncio.get_running_loop().call_later(delay_s, resend)

    def _fail_ops(self, exc: Exception) -> None:
        for future in self._op_futures.values():
            if not future.done():
                future.set_exception(exc)

    def _on_reply(self, message: Ack | ErrorMessage) -> None:
        re = message.re
        if re is None:
            return
        if re in self._rejoins and isinstance(message, ErrorMessage):
            self._rejoin_failed(self._rejoins.pop(re), message)
            return
        if (
            re in self._op_futures
            and isinstance(message, ErrorMessage)
            and message.code in ("internal", "rate_limited")
        ):
            self._retry_op_later(re)
            return
        if re in self._op_futures:
            future = self._op_futures.pop(re)
            board = self._op_boards.pop(re)
            mirror = self.joined.get(board)
            if mirror is not None:
                mirror.pending.pop(re, None)
            if not future.done():
                if isinstance(message, Ack):
                    future.set_result(message)
                else:
                    future.set_exception(ClientError(message.code, message.message))
            self._bus.emit(PendingChanged(board))
            return
        request = self._requests.get(re)
        if request is None or request.done():
            return
        if isinstance(message, ErrorMessage):
            request.set_exception(ClientError(message.code, message.message))
        else:
            request.set_result(message)

"""Who is connected, grouped by team; each event is serialized once for all of them."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from server.audit import TOKEN_EXPIRED, audit
from server.auth import Identity
from server.limits import FloodGuard, TokenBucket
from server.metrics import Metrics
from server.peer import Peer, Sender
from tui_collab.protocol import CloseCode, ErrorCode, ErrorMessage, encode

logger = logging.getLogger(__name__)


BASE_AUDIENCE = 200
"""Recipients a window's own interval is for; it grows in proportion beyond them."""


def grows_with(interval_s: float, audience: Callable[[], int]) -> Callable[[], float]:
    """A window's interval that grows in proportion with `audience` (how many sockets a
    flush goes to) beyond `BASE_AUDIENCE` recipients: a 50 ms window is 250 ms at 1,000.

    A flush costs a send per recipient (14 µs each when measured, 9 since `Outbound`
    serializes a frame once: `python -m bench.fanout`), so during a crowd's arrival 50 ms
    windows of presence news to 1,200 sockets took a third of a core, and the news is no
    less timely to a person at a quarter of a second. A fixed window suits what people
    watch move (cursors)."""
    return lambda: interval_s * max(1.0, audience() / BASE_AUDIENCE)


class Window:
    """Leading-edge coalescing of one stream of events (a board's cursors, a team's
    presence): after a quiet `interval_s` an event goes out at once; events during the
    window wait for its end, where one call of `flush` sends them all.

    `interval_s` may be a function, asked at each event, for a window whose length
    follows its audience (`grows_with`; cell_news.py). `flush` returns whether it sent
    anything; only a send starts a window.
    """

    def __init__(
        self,
        interval_s: float | Callable[[], float],
        flush: Callable[[], bool],
    ) -> None:
        self._interval = interval_s
        self._flush = flush
        self._last = float("-inf")
        self._handle: asyncio.TimerHandle | None = None

    @property
    def interval_s(self) -> float:
        return self._interval() if callable(self._interval) else self._interval

    @property
    def waiting(self) -> bool:
        """Whether events wait for the end of the window."""
        return self._handle is not None

    def poke(self) -> None:
        """Something is pending: send now if the window is quiet, else at its end."""
        if self._handle is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last + self.interval_s - loop.time()
        if wait <= 0:
            self.fire()
        else:
            self._handle = loop.call_later(wait, self.fire)

    def fire(self) -> None:
        """Send what is pending now (the end of the window, or a send that must not wait)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._flush():
            self._last = asyncio.get_running_loop().time()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def close_reason(text: str) -> str:
    """Fit a close reason into the 123 bytes a close frame allows."""
    return text.encode()[:120].decode(errors="ignore")


@dataclass(eq=False, slots=True)
class Session:
    """One authenticated connection: its identity, client id and the boards it joined."""

    ws: Peer
    identity: Identity
    client_id: str
    outbound: Sender
    id: str = field(default_factory=lambda: f"s-{secrets.token_hex(8)}")
    boards: set[str] = field(default_factory=set)
    bad_frames: int = 0
    metrics: Metrics | None = None
    bucket: TokenBucket | None = None
    cell_bucket: TokenBucket | None = None
    """`cells.set` ops: a batch's writes, which `bucket` counts as one message."""
    flood: FloodGuard | None = None
    expiry: asyncio.TimerHandle | None = None
    closing: bool = False

    def watch_expiry(self) -> None:
        """Close the connection (4001) the moment its token expires; a refresh moves it."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        expires_at = self.identity.expires_at
        if expires_at is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, expires_at - time.time())
        self.expiry = loop.call_later(delay, self._expired)

    def _expired(self) -> None:
        self.expiry = None
        logger.info("closing %s user=%s team=%s: token expired", self.id, self.user, self.team)
        audit(TOKEN_EXPIRED, ip=self.ws.address, user=self.user, team=self.team)
        self.send_error(ErrorCode.UNAUTHORIZED, "token expired")
        self.close(CloseCode.AUTH_FAILED, "token expired")

    def close(self, code: int, reason: str) -> None:
        """Start the close handshake without waiting for it.

        The handler keeps reading meanwhile and drops what arrives: frames the peer
        pipelined before it saw our close would otherwise fill the receive queue, stop
        websockets from reading, and hide the peer's close frame until the timeout.
        """
        if self.closing:
            return
        self.closing = True
        self.ws.end(code, close_reason(reason))

    @property
    def ending(self) -> bool:
        """Whether this session is being closed, by `close` or by the sender (a slow
        consumer): work for it is moot."""
        return self.closing or self.outbound.is_closing(self.ws)

    def forget(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None

    @property
    def team(self) -> str:
        return self.identity.team

    @property
    def user(self) -> str:
        return self.identity.user

    def send(self, frame: str | bytes) -> None:
        self.outbound.send((self.ws,), frame)

    def send_error(self, code: ErrorCode, message: str, re: str | None = None) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(code.value).inc()
        self.send(encode(ErrorMessage(code=code, message=message, re=re)))


class Hub:
    """Sessions by team; a frame for a team never reaches another team's sockets."""

    def __init__(self, outbound: Sender) -> None:
        self._teams: dict[str, dict[Peer, Session]] = {}
        self.outbound = outbound

    def add(self, session: Session) -> None:
        self._teams.setdefault(session.team, {})[session.ws] = session

    def remove(self, session: Session) -> None:
        members = self._teams.get(session.team)
        if members is None:
            return
        members.pop(session.ws, None)
        if not members:
            del self._teams[session.team]

    def sessions(self, team: str) -> Iterable[Session]:
        return tuple(self._teams.get(team, {}).values())

    def user_sessions(self, team: str, user: str) -> list[Session]:
        return [s for s in self._teams.get(team, {}).values() if s.user == user]

    def to_team(self, team: str, frame: str) -> None:
        members = self._teams.get(team)
        if members:
            self.outbound.send(list(members.keys()), frame)

    def team_size(self, team: str) -> int:
        """The team's open sessions."""
        return len(self._teams.get(team, ()))

    @property
    def connection_count(self) -> int:
        return sum(len(members) for members in self._teams.values())

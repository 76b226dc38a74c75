"""What a client tells the application: connection states and typed events."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Connecting:
    url: str


@dataclass(frozen=True)
class Connected:
    url: str
    session: str


@dataclass(frozen=True)
class Reconnecting:
    attempt: int
    next_delay: float
    reason: str


@dataclass(frozen=True)
class Closed:
    reason: str
    """`closed` (by the application), `unauthorized`, `unsupported_version`, `tls`,
    `invalid_url`, `error` or `gave_up`."""
    detail: str = ""
    """One line for a person: what failed and what to do (empty when closed on purpose)."""


ConnectionState = Connecting | Connected | Reconnecting | Closed


@dataclass(frozen=True)
class StateChanged:
    state: ConnectionState


@dataclass(frozen=True)
class PendingChanged:
    """The set of unacknowledged ops of a board changed (for "not yet saved" marks)."""

    board: str


@dataclass(frozen=True)
class OpRefused:
    """The server refused one of this client's edits for good; the cell keeps its value.

    Retryable failures (`internal`, `rate_limited`) are re-sent and never reach this.
    """

    board: str
    op: str
    x: int
    y: int
    value: str
    code: str
    message: str


@dataclass(frozen=True)
class Restored:
    """Edits kept from an earlier run were loaded from the outbox and will be re-sent."""

    count: int


@dataclass(frozen=True)
class OutboxFailed:
    """The durable outbox could not be written: edits still go out, but would not
    survive this process (a full or read-only disk)."""

    message: str


@dataclass(frozen=True)
class NotesChanged:
    """A board's notes text changed: by this client (`remote` False) or another."""

    board: str
    by: str
    """The user whose edit it was; the server's node name for text it filled in."""
    remote: bool


@dataclass(frozen=True)
class NotesCaretsChanged:
    """Other people's carets in a board's notes moved, came or went."""

    board: str


@dataclass(frozen=True)
class NotesRefused:
    """The server refused a notes request for good (the `error`'s code and message)."""

    board: str
    code: str
    message: str


E = TypeVar("E")
Handler = Callable[[Any], Any]


class EventBus:
    """Handlers by event type, plus any number of `async for` listeners."""

    def __init__(self) -> None:
        self._handlers: dict[type[Any], list[Handler]] = defaultdict(list)
        self._queues: list[asyncio.Queue[Any]] = []

    def on(self, kind: type[E], handler: Callable[[E], Any]) -> Callable[[], None]:
        self._handlers[kind].append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers[kind]:
                self._handlers[kind].remove(handler)

        return unsubscribe

    def emit(self, event: Any) -> None:
        for handler in tuple(self._handlers.get(type(event), ())):
            try:
                handler(event)
            except Exception:
                logger.exception("event handler failed for %s", type(event).__name__)
        for queue in self._queues:
            queue.put_nowait(event)

    def stream(self) -> AsyncIterator[Any]:
        """Events from this call on (subscribed now, not at the first `async for` step).

        The iterator ends when the client closes for good; one that is never iterated
        keeps collecting events, so close it (`aclose()`) if you stop reading.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues.append(queue)

        async def drain() -> AsyncIterator[Any]:
            try:
                while (event := await queue.get()) is not _END:
                    yield event
            finally:
                if queue in self._queues:
                    self._queues.remove(queue)

        return drain()

    def close(self) -> None:
        """End every `stream()` iterator once it has delivered what it already holds."""
        for queue in self._queues:
            queue.put_nowait(_END)
        self._queues.clear()


_END: Final = object()

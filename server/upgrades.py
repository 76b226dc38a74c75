"""The HTTP phase of a connection: accepted, but not yet upgraded or answered.

Such a socket costs a descriptor and a task before anything is known about who sent it,
so it is bounded three ways: per IP and in total (`server.admission.UpgradeGuard`: over
a cap the socket is dropped at once, unread), and in time (websockets' `open_timeout`,
which the server sets to its short upgrade deadline). When descriptors still run out,
asyncio reports every failed `accept()`, with a traceback, up to a thousand times a
wakeup; `AcceptFailures` turns that into one line per interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

from server.logs import RateLimitedLog

ACCEPT_FAILED: Final = "socket.accept() out of system resource"
"""The message asyncio's selector loops give a failed accept (EMFILE, ENFILE, ENOBUFS)."""


class AcceptFailures:
    """A loop exception handler that summarizes failed accepts, one line per interval.

    Everything else goes on to the handler that was there before (or the default one).
    `install` and `uninstall` bracket the server's life.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self.count = 0
        self._log = RateLimitedLog(logger, interval_s)
        self._interval_s = interval_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None = None
        self._flush: asyncio.TimerHandle | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        loop.set_exception_handler(self._handle)

    def uninstall(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._log.flush()
        if self._loop is not None and self._loop.get_exception_handler() == self._handle:
            self._loop.set_exception_handler(self._previous)
        self._loop = None

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_FAILED:
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        self.count += 1
        exc = context.get("exception")
        shown = self._log.log(
            logging.ERROR,
            "accept",
            "cannot accept connections: %s; accepting again in 1 s",
            exc if exc is not None else "out of resources",
        )
        if not shown and self._flush is None:
            # The count of those held back is said within one interval even if none
            # follows to carry it.
            self._flush = loop.call_later(self._interval_s, self._flush_now)

    def _flush_now(self) -> None:
        self._flush = None
        self._log.flush()

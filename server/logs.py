"""Logging set-up for the server process, with tokens scrubbed from every record.

Our own code never logs a token, but libraries may: websockets logs request headers
and frames at debug level, and those carry `Authorization` headers and `hello` tokens.
The filter sits on the handler, so it covers every logger that reaches it.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Literal

LogFormat = Literal["text", "json"]

_SECRETS: Final = re.compile(
    r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*"  # anything shaped like a JWT
    r"|(?<=Bearer )\S+"  # whatever follows "Bearer "
    r'|(?<="token":")[^"]*',  # the token field of a JSON frame
    re.IGNORECASE,
)
REDACTED: Final = "[redacted]"


def redact(text: str) -> str:
    return _SECRETS.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """Rewrite each record's final message with tokens replaced by `[redacted]`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


_RECORD_ATTRIBUTES: Final = frozenset(
    {*vars(logging.LogRecord("", 0, "", 0, "", None, None)), "message", "asctime", "taskName"}
)
"""What every `LogRecord` has; anything else on a record came from `extra=`."""

AUDIT_LOGGER: Final = "tui_collab.audit"
_AUDIT_FIELD: Final = re.compile(r"(\w+)=(\S+)")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the
    record's `extra=` fields; an audit line's `key=value` pairs also as `audit`.

    Tokens are scrubbed from every string, the traceback included: `RedactTokens` sees
    only the message.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_") and key not in entry:
                entry[key] = _plain(value)
        if record.name == AUDIT_LOGGER:
            # Audit values are single words by construction (server.audit): pairs parse.
            entry["audit"] = dict(_AUDIT_FIELD.findall(str(entry["message"])))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def _plain(value: object) -> object:
    """A JSON value for an `extra=` field: numbers and booleans as they are, the rest as
    scrubbed text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return redact(str(value))


def configure(level: str, log_format: LogFormat = "text") -> logging.Handler:
    """Log to stderr at `level`, tokens scrubbed; returns the handler for `hold`."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if level.lower() != "debug":
        # One line per HTTP request is noise at info level; our own logs cover connections.
        logging.getLogger("websockets").setLevel(logging.WARNING)
    return handler


class HeldLogs:
    """Hold log records back while the server starts.

    A start that fails then prints its one-line reason and nothing else (the migration
    and secret lines before it would only bury it); a start that succeeds prints them
    all, in order, before it goes on logging directly.
    """

    def __init__(self, target: logging.Handler) -> None:
        self._target = target
        # Never flushes by itself: only `release` lets the records out.
        self._buffer = logging.handlers.MemoryHandler(
            capacity=1_000_000, flushLevel=logging.CRITICAL + 1, target=target, flushOnClose=False
        )
        logging.getLogger().handlers[:] = [self._buffer]

    def release(self) -> None:
        """Print what was held and log directly from now on."""
        self._buffer.flush()
        self._end()

    def drop(self) -> None:
        """Forget what was held (the start failed and says why in one line)."""
        self._end()

    def _end(self) -> None:
        root = logging.getLogger()
        if self._buffer in root.handlers:
            root.handlers[:] = [self._target]
        self._buffer.close()


class RateLimitedLog:
    """At most one line per kind of event per interval, with a count of those not shown.

    For failures that repeat once per request: a full disk refuses every edit, and one
    line each (with a traceback) would flood the log and fill the disk further. The first
    of a kind is logged at once; later ones within `interval_s` are counted, and the next
    line of that kind after the interval says how many there were (`flush` says it at
    shutdown, when no next line may come).
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 256,
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._max_kinds = max_kinds
        self._last: dict[str, float] = {}
        self._held: dict[str, tuple[int, str, tuple[object, ...], int]] = {}
        """kind -> (level, message, args) of the latest line not shown, and how many."""

    def log(self, level: int, kind: str, message: str, *args: object) -> bool:
        """Log `message % args` unless `kind` was logged less than the interval ago."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval_s:
            count = self._held[kind][3] if kind in self._held else 0
            self._held[kind] = (level, message, args, count + 1)
            return False
        if last is None and len(self._last) >= self._max_kinds:
            # Kinds come from error texts; never let them grow without bound.
            self.flush()
            self._last.clear()
        self._last[kind] = now
        held = self._held.pop(kind, None)
        if held is not None and last is not None:
            message += " (%d more like this in the last %.0f s)"
            args = (*args, held[3], now - last)
        self._logger.log(level, message, *args)
        return True

    def flush(self) -> None:
        """Log the count of every kind still held back (one line each)."""
        now = self._clock()
        for kind, (level, message, args, count) in self._held.items():
            since = now - self._last.get(kind, now)
            self._logger.log(
                level, message + " (%d like this in the last %.0f s)", *args, count, since
            )
        self._held.clear()

"""When the client reconnects, and when it gives up: a pure policy, no sockets, no clock.

The connection loop (`tui_collab.client`) reports how each attempt ended: whether the
server said welcome, the close code, and a reason. `RetryPolicy.after` answers with
one of three decisions: ask for a fresh token and try again at once, wait this long
(and which server to try next), or give up for good with the reason and a line for a
person. A refused token, a certificate that does not verify, a bad URL or another
protocol version are final at once: retrying cannot change them.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from tui_collab.backoff import Backoff
from tui_collab.protocol import CloseCode, ErrorCode


class FinalReason(StrEnum):
    """Every `Closed.reason` the client reports."""

    CLOSED = "closed"
    """Closed by the application."""
    UNAUTHORIZED = ErrorCode.UNAUTHORIZED.value
    UNSUPPORTED_VERSION = ErrorCode.UNSUPPORTED_VERSION.value
    TLS = "tls"
    INVALID_URL = "invalid_url"
    ERROR = "error"
    """An unexpected error inside the client."""
    GAVE_UP = "gave_up"
    """`max_attempts` failed in a row."""


FATAL_REASONS: Final[frozenset[str]] = frozenset(
    reason.value
    for reason in (
        FinalReason.UNAUTHORIZED,
        FinalReason.UNSUPPORTED_VERSION,
        FinalReason.TLS,
        FinalReason.INVALID_URL,
    )
)
"""The reasons no retry can fix: the person has to change something first."""

TLS_FAILURE: Final = "cannot verify the certificate of"
"""How a failure reason for a certificate that does not verify starts."""


def tls_failure(host: str, error: ssl.SSLCertVerificationError) -> str:
    """The failure reason for a certificate of `host` that does not verify."""
    why = error.verify_message or error.reason or str(error)
    return f"{TLS_FAILURE} {host}: {why}"


_FATAL_CLOSES: Final = {
    CloseCode.AUTH_FAILED: FinalReason.UNAUTHORIZED,
    CloseCode.UNSUPPORTED_VERSION: FinalReason.UNSUPPORTED_VERSION,
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


def close_reason(code: int | None, reason: str | None) -> str:
    """The server's close reason, or words for its close code when it gave none."""
    return reason or _CLOSE_REASONS.get(code or 1006, f"closed with {code}")


def fatal_reason(code: int | None, reason: str) -> FinalReason | None:
    """The final reason for a failure that retrying will not fix; None if it may."""
    fatal = _FATAL_CLOSES.get(code or 0)
    if fatal is None and reason.startswith("HTTP 401"):
        fatal = FinalReason.UNAUTHORIZED
    if fatal is None and reason.startswith("InvalidURI"):
        fatal = FinalReason.INVALID_URL
    if fatal is None and reason.startswith(TLS_FAILURE):
        fatal = FinalReason.TLS
    return fatal


def final_detail(fatal: FinalReason, url: str, reason: str) -> str:
    """One line for a person about a failure that retrying will not fix."""
    if fatal == FinalReason.UNAUTHORIZED:
        return f"{urlsplit(url).netloc} refused the token ({reason})"
    if fatal == FinalReason.TLS:
        return f"{reason} (trust the server's CA with --cafile or SSL_CERT_FILE)"
    if fatal == FinalReason.INVALID_URL:
        return f"{url} is not a valid ws:// or wss:// URL ({reason})"
    if fatal == FinalReason.UNSUPPORTED_VERSION:
        return f"{urlsplit(url).netloc} speaks another protocol version: update tui-collab"
    return reason


@dataclass(frozen=True)
class RenewToken:
    """The token may just have run out: get a fresh one and try again at once."""


@dataclass(frozen=True)
class Wait:
    """Try again after `delay_s`; `failures` in a row so far."""

    delay_s: float
    failures: int


@dataclass(frozen=True)
class GiveUp:
    """Stop for good: `reason` becomes `Closed.reason`, `detail` its line for a person."""

    reason: FinalReason
    detail: str

    @property
    def fatal(self) -> bool:
        """Whether it is a failure no retry can fix (rather than too many attempts)."""
        return self.reason in FATAL_REASONS


Decision = RenewToken | Wait | GiveUp


class RetryPolicy:
    """Counts failures in a row and picks the server to try next; see the module doc."""

    def __init__(self, urls: list[str], backoff: Backoff, max_attempts: int | None) -> None:
        self.urls = urls
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.failures = 0
        """Attempts that failed in a row (a welcome starts the count again at 1)."""
        self._url_index = 0

    @property
    def url(self) -> str:
        """The server to try next."""
        return self.urls[self._url_index % len(self.urls)]

    def after(
        self, welcomed: bool, code: int | None, reason: str, *, may_renew_token: bool = False
    ) -> Decision:
        """Decide what follows an attempt on `self.url` that ended with `code` and `reason`.

        `may_renew_token`: a token provider is set and the token just refused was not
        fresh from it, so a refused token is worth one more try with a new one.
        """
        url = self.url
        fatal = fatal_reason(code, reason)
        if fatal == FinalReason.UNAUTHORIZED and may_renew_token:
            return RenewToken()
        if fatal is not None:
            return GiveUp(fatal, final_detail(fatal, url, reason))
        self.failures = 1 if welcomed else self.failures + 1
        if self.max_attempts is not None and self.failures > self.max_attempts:
            return GiveUp(
                FinalReason.GAVE_UP, f"gave up on {url} after {self.failures} attempts: {reason}"
            )
        if not welcomed:
            self._url_index += 1  # a server that cannot be reached: try the next one
        slow_down = code in _SLOW_DOWN_CLOSES or reason.startswith("HTTP 503")
        delay = self.backoff.delay(self.failures, self.backoff.cap_s if slow_down else 0.0)
        return Wait(delay, self.failures)

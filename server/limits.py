"""Rate limiting: the flood rule that ends a connection, and how often one user may
open a new connection; the token bucket itself is `tui_collab.ratelimit`'s, shared
with the client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from tui_collab.ratelimit import TokenBucket

__all__ = ["ConnectRate", "FloodGuard", "InFlight", "TokenBucket", "count_down"]

K = TypeVar("K")


def count_down(counts: dict[K, int], key: K) -> None:
    """Take one from `counts[key]`, dropping the key when none is left."""
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


@dataclass(slots=True)
class FloodGuard:
    """Decides what a dropped message costs: a `rate_limited` error at most once a second,
    and the connection itself once the client has been over its limit for `close_after_s`
    without a one-second pause."""

    close_after_s: float
    clock: Callable[[], float] = time.monotonic
    flood_started: float | None = None
    last_drop: float = float("-inf")
    last_error: float = float("-inf")

    def dropped(self) -> tuple[bool, bool]:
        """Record a dropped message; return (send an error now, close the connection)."""
        now = self.clock()
        if self.flood_started is None or now - self.last_drop > 1.0:
            self.flood_started = now
        self.last_drop = now
        send_error = now - self.last_error >= 1.0
        if send_error:
            self.last_error = now
        return send_error, now - self.flood_started >= self.close_after_s


class ConnectRate:
    """A token bucket per user for opening connections.

    Every connection costs the server a handshake, a snapshot and presence events for
    the whole team; a client that reconnects in a tight loop must not be able to buy
    that as often as it likes. Buckets that have filled up again are forgotten, so the
    map holds only users who connected recently.
    """

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def allow(self, team: str, user: str) -> bool:
        key = (team, user)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= 10_000:
                self._forget_full()
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
        return bucket.take()

    def _forget_full(self) -> None:
        now = self._clock()
        self._buckets = {
            key: bucket
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * bucket.rate < bucket.burst
        }


class InFlight(Generic[K]):
    """Keys with a request in flight (a board being created, a cell being filled).

    A quota checked before an await and counted after it would let every request that
    arrives meanwhile pass the same check. Requests that would use up quota are held
    here from the check to the moment their result is counted: the check counts them
    too. A key is counted once however many requests for it are in flight.
    """

    def __init__(self) -> None:
        self._count: dict[K, int] = {}

    def __len__(self) -> int:
        return len(self._count)

    def __iter__(self) -> Iterator[K]:
        return iter(self._count)

    @contextmanager
    def holding(self, key: K) -> Iterator[None]:
        """Hold `key` for the duration of the block, whichever way it ends."""
        self._count[key] = self._count.get(key, 0) + 1
        try:
            yield
        finally:
            count_down(self._count, key)

"""The token bucket both ends use: the server to limit each connection, the client to
stay under that limit (so nothing it sends is dropped for rate).

Pure: the clock is injected, nothing here sleeps. The server imports it from here
(`server.limits`), never the other way round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens a second, holding at most `burst`; one message costs one token, a
    large reply more (`charge`)."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.updated = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, cost: float = 1.0) -> bool:
        self._refill()
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def wait_s(self, cost: float = 1.0) -> float:
        """How long until `take(cost)` would succeed (0 if it would now)."""
        self._refill()
        return max(0.0, (cost - self.tokens) / self.rate)

    def charge(self, cost: float) -> None:
        """Draw `cost` for work already done (a large reply): the bucket may go into
        debt, down to `-burst`, and later messages wait until it is paid back."""
        self._refill()
        self.tokens = max(-self.burst, self.tokens - cost)

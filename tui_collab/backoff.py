"""Reconnect delays: exponential backoff with full jitter.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads a crowd of
clients that lost the same server over the whole window, so a restart is not met by a
synchronised stampede.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    def ceiling(self, attempt: int) -> float:
        """The largest delay before retry number `attempt` (1-based)."""
        return min(self.cap_s, self.base_s * self.factor ** max(0, attempt - 1))

    def delay(self, attempt: int, at_least: float = 0.0) -> float:
        """A delay for retry `attempt`: uniform in [0, ceiling], raised to `at_least`."""
        return max(at_least, self.rng.uniform(0.0, self.ceiling(attempt)))

"""How often cursor moves and typing marks go out, per board: pure, on the caller's clock.

A throttle remembers the last position asked for on each board (`due`) and when one
last went out (`sent_at`). The connection layer asks how long to wait, sets a timer
for that long, and takes the due position when it fires: at most one send per
interval, and the last position always goes out.
"""

from __future__ import annotations


class Throttle:
    """At most one send per `interval_s` on each board; see the module doc."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.due: dict[str, tuple[int, int]] = {}
        """The position waiting to go out, by board."""
        self.sent_at: dict[str, float] = {}
        """When a position last went out, by board."""

    def wait_s(self, board: str, now: float) -> float:
        """How long until a position on `board` may go out; zero or less: at once."""
        return self.sent_at.get(board, float("-inf")) + self.interval_s - now

    def take(self, board: str, now: float) -> tuple[int, int] | None:
        """The position due on `board`, counted as sent at `now`; None if none is due."""
        position = self.due.pop(board, None)
        if position is not None:
            self.sent_at[board] = now
        return position

    def stop(self, board: str) -> bool:
        """Forget `board`; True if a position went out there since the last stop."""
        self.due.pop(board, None)
        return self.sent_at.pop(board, None) is not None

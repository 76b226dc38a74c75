"""A share of each event-loop turn for the costly first steps of a connection.

asyncio runs every callback that is ready before it looks at its timers again, so a
turn in which 500 clients arrive at once (their upgrades, `welcome`s and `board.state`s)
lasted 100-400 ms, and every board's cursor window, due meanwhile, waited for the end
of it. People already at work saw each other's cursors freeze while a crowd joined.

`TurnGate` lets those steps start only in the first `budget_s` of a turn (and at least
`min_per_turn` of them in any turn, so a crowd always gets in); the rest wait in arrival
order for the turns after, with the timers, moves and edits of people already at work
in between. The crowd's work is the same; it takes a little longer to get in (more
turns, and cursor frames to more of it meanwhile), and nobody else waits behind it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

BUDGET_S = 0.025
"""How far into a turn arrivals may still start, in CPU time of the loop's thread (on a
busy machine the process is not always running, and wall time would count the time
other processes had as this turn's work). Measured with 500 arriving among 200 people
moving (docs/benchmarks.md): without the gate the movers' p99 was 370 ms, with it under
250; 10 ms made the arrival twice as long for no better latency. With 1,000 arriving,
25 ms against 40 (three runs each, alternating): the movers' p99 200 against 238 ms,
the crowd in 2.74 against 2.54 s."""
MIN_PER_TURN = 8
"""Arrivals that start in any turn, however long it already is."""
MAX_WOKEN = 256
"""Waiters woken per turn to try for a pass; the rest sleep, so a long queue costs
nothing per turn. High enough that the budget, not this, bounds a turn: at 64 (some
20 ms of arrivals) a crowd of 1,000 took 3.0 s to get in, at 256 2.5 s."""


class TurnGate:
    """Passes to start a costly step, within each loop turn's budget, first come first served."""

    def __init__(
        self,
        budget_s: float = BUDGET_S,
        min_per_turn: int = MIN_PER_TURN,
        max_woken: int = MAX_WOKEN,
        clock: Callable[[], float] = time.thread_time,
    ) -> None:
        if min_per_turn < 1 or max_woken < min_per_turn:
            raise ValueError("min_per_turn must be at least 1 and at most max_woken")
        self.budget_s = budget_s
        self.min_per_turn = min_per_turn
        self.max_woken = max_woken
        self._clock = clock
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._turn_started = 0.0
        self._passes = 0
        """Passes given in the current turn."""
        self._put_back = 0
        """Woken waiters that found the turn's budget spent and went back to the head of
        the queue this turn, in their order."""
        self._next_turn_scheduled = False
        self._woken = 0
        """Waiters woken that have not run yet."""
        self._last_passes = 0
        """Passes given in the last turn that gave any."""

    @property
    def waiting(self) -> int:
        """Steps waiting for a later turn."""
        return len(self._waiting) + self._woken

    async def turn(self) -> None:
        """Return when this step may run: at once while the turn has room and nobody
        waits, else in a later turn, after those who came before."""
        if not self._next_turn_scheduled:
            self._start_turn()
        if not self._waiting and not self._woken and self._take_pass():
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        while True:
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._woken -= 1  # woken, then cancelled before it ran
                raise
            self._woken -= 1
            if self._take_pass():
                return
            # The turn's budget is spent: back to the head of the queue, behind those
            # woken with it that were put back before it.
            future = asyncio.get_running_loop().create_future()
            self._waiting.insert(self._put_back, future)
            self._put_back += 1

    def _take_pass(self) -> bool:
        if self._passes < self.min_per_turn or self._clock() - self._turn_started < self.budget_s:
            self._passes += 1
            return True
        return False

    def _start_turn(self) -> None:
        if self._passes:
            self._last_passes = self._passes
        self._turn_started = self._clock()
        self._passes = 0
        self._put_back = 0
        self._next_turn_scheduled = True
        # A callback scheduled in this turn runs early in the next one: the turn boundary,
        # with the loop's timers and I/O in between.
        asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._next_turn_scheduled = False
        if not self._waiting and not self._woken:
            return  # idle: the next arrival starts a turn of its own
        self._start_turn()
        if not self._woken:
            # Woken now, they run in the next turn. Nobody is woken while others woken
            # before still have to run: those are ahead of everyone in the queue. As
            # many are woken as got a pass the last time, and a few more: enough to use
            # the budget without waking many only to put them back.
            self._wake(min(self.max_woken, max(self.min_per_turn, 2 * self._last_passes)))

    def _wake(self, count: int) -> None:
        while count and self._waiting:
            future = self._waiting.popleft()
            if future.done():  # its task was cancelled while it waited
                continue
            future.set_result(None)
            self._woken += 1
            count -= 1

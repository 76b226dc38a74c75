"""Wait for a condition, not for a time: the one poller the tests share."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

INTERVAL_S = 0.01


async def eventually(
    predicate: Callable[[], object],
    timeout: float = 5.0,
    what: str = "the condition",
    *,
    step: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Return as soon as `predicate()` is true; fail the test if it is not within `timeout`.

    `predicate` may be a coroutine function (a check that asks Redis, say): what it
    returns is awaited. `what` names the condition in the failure. `step` is how time
    passes between two checks (a TUI test passes its pilot's pause, which also lets the
    app repaint); by default a short sleep.
    """
    deadline = time.monotonic() + timeout
    while not await _holds(predicate):
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        if step is None:
            await asyncio.sleep(INTERVAL_S)
        else:
            await step()


async def _holds(predicate: Callable[[], object]) -> bool:
    result = predicate()
    if inspect.isawaitable(result):
        result = await result
    return bool(result)

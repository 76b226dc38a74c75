"""The shared poller: returns once the condition holds, fails naming it otherwise."""

from __future__ import annotations

import pytest

from tests.support.waiting import eventually


async def test_returns_as_soon_as_the_predicate_holds() -> None:
    calls: list[None] = []

    def third_time() -> bool:
        calls.append(None)
        return len(calls) == 3

    await eventually(third_time, 1.0, "the third call")
    assert len(calls) == 3


async def test_awaits_a_coroutine_predicate() -> None:
    async def ready() -> bool:
        return True

    await eventually(ready, 0.1, "ready")


async def test_fails_naming_the_condition() -> None:
    with pytest.raises(AssertionError, match=r"not within 0\.05 s: the moon"):
        await eventually(lambda: False, 0.05, "the moon")


async def test_steps_with_the_given_pause() -> None:
    steps: list[None] = []

    async def step() -> None:
        steps.append(None)

    await eventually(lambda: len(steps) == 2, 1.0, "two steps", step=step)
    assert len(steps) == 2

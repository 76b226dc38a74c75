"""The arrivals gate: a crowd's costly first steps are spread over loop turns, in order,
and the loop's timers run between them. A real event loop and real time; turns are
counted by a callback that schedules itself once per turn, and what is asserted is
counts and order, never durations."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from server.turns import TurnGate

STEP_S = 0.003
"""What one step of the crowd costs: CPU-bound work the loop cannot interleave."""


class TurnCounter:
    """The number of the loop turn now running (a callback that reschedules itself is
    run once per turn)."""

    def __init__(self) -> None:
        self.turn = 0
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.turn += 1
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


def busy(seconds: float) -> None:
    """Hold the loop for `seconds` of its thread's CPU, as an expensive step does (the
    gate counts CPU: on a busy machine wall time would also count other processes)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def crowd(gate: TurnGate, size: int, turns: TurnCounter) -> list[tuple[int, int]]:
    """`size` steps arriving in one turn: (who, the turn it ran in), in the order run."""
    ran: list[tuple[int, int]] = []

    async def step(who: int) -> None:
        await gate.turn()
        ran.append((who, turns.turn))
        busy(STEP_S)

    await asyncio.gather(*(step(n) for n in range(size)))
    return ran


async def test_steps_start_only_in_the_first_part_of_a_turn_first_come_first_served() -> None:
    turns = TurnCounter()
    gate = TurnGate(budget_s=0.01, min_per_turn=2, max_woken=8)
    ran = await crowd(gate, 40, turns)
    turns.stop()
    assert [who for who, _ in ran] == list(range(40))
    per_turn = Counter(turn for _, turn in ran)
    # A step starts only while the turn has used under 10 ms of CPU: with 3 ms steps, at
    # most 4 of them.
    assert max(per_turn.values()) <= 4
    assert min(per_turn.values()) >= 1
    assert len(per_turn) >= 10
    assert gate.waiting == 0


async def test_a_timer_due_during_a_crowd_runs_before_the_crowd_is_through() -> None:
    gate = TurnGate(budget_s=0.01, min_per_turn=2, max_woken=8)
    ran: list[str] = []

    async def step(who: int) -> None:
        await gate.turn()
        ran.append(f"step {who}")
        busy(STEP_S)

    steps = [asyncio.ensure_future(step(n)) for n in range(40)]
    asyncio.get_running_loop().call_later(0, lambda: ran.append("timer"))
    await asyncio.gather(*steps)
    # Without the gate all 40 steps run in one turn, before the timer's.
    assert ran.index("timer") <= 8


async def test_every_turn_lets_some_in_however_long_it_already_is() -> None:
    gate = TurnGate(budget_s=0.0, min_per_turn=3, max_woken=8)
    turns = TurnCounter()
    ran = await crowd(gate, 12, turns)
    turns.stop()
    assert [who for who, _ in ran] == list(range(12))
    assert set(Counter(turn for _, turn in ran).values()) == {3}


async def test_an_uncrowded_step_passes_without_waiting_for_a_turn() -> None:
    gate = TurnGate()
    turns = TurnCounter()
    await asyncio.sleep(0)
    before = turns.turn
    await gate.turn()
    await gate.turn()
    assert turns.turn == before  # still the same turn: no await was needed
    turns.stop()


async def test_steps_cancelled_while_waiting_or_once_woken_leave_the_rest_in_order() -> None:
    gate = TurnGate(budget_s=0.0, min_per_turn=1, max_woken=2)
    ran: list[int] = []

    async def step(who: int) -> None:
        await gate.turn()
        ran.append(who)

    tasks = [asyncio.ensure_future(step(n)) for n in range(7)]
    await asyncio.sleep(0)  # 0 took the turn's one pass; the other six wait
    assert ran == [0]
    assert gate.waiting == 6
    tasks[1].cancel()  # waiting
    await asyncio.sleep(0)  # the next turn: 2 and 3 are woken, to run in the one after
    tasks[2].cancel()  # woken, not run yet
    await asyncio.gather(*tasks, return_exceptions=True)
    assert ran == [0, 3, 4, 5, 6]
    assert gate.waiting == 0


def test_a_gate_needs_room_for_one_step() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TurnGate(min_per_turn=0)

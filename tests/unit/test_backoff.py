"""Reconnect delays: bounded, jittered, reproducible from a seed."""

import random

import pytest

from tui_collab.backoff import Backoff


def test_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base_s=1.0, factor=2.0, cap_s=10.0)
    assert [backoff.ceiling(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


@pytest.mark.parametrize("seed", range(20))
def test_delays_stay_within_zero_and_the_ceiling(seed: int) -> None:
    backoff = Backoff(rng=random.Random(seed))
    for attempt in range(1, 50):
        delay = backoff.delay(attempt)
        assert 0.0 <= delay <= backoff.ceiling(attempt)


def test_same_seed_same_delays_and_jitter_spreads_them() -> None:
    first = [Backoff(rng=random.Random(3)).delay(5) for _ in range(1)]
    again = [Backoff(rng=random.Random(3)).delay(5) for _ in range(1)]
    assert first == again
    crowd = [Backoff(rng=random.Random(n)).delay(5) for n in range(200)]
    assert min(crowd) < 2.0  # full jitter covers the whole window
    assert max(crowd) > 8.0


def test_slow_down_raises_the_floor() -> None:
    backoff = Backoff(rng=random.Random(1))
    assert all(backoff.delay(1, at_least=10.0) == 10.0 for _ in range(10))

"""The token bucket shared by server and client, on a manual clock."""

import pytest

from server.limits import TokenBucket as ServerBucket
from tui_collab.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_server_uses_the_same_bucket() -> None:
    assert ServerBucket is TokenBucket


def test_a_full_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3.0, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back
    assert bucket.take()
    assert not bucket.take()
    clock.now += 100.0  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_wait_s_says_when_the_next_take_succeeds() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=4.0, burst=1.0, clock=clock)
    assert bucket.wait_s() == 0.0
    assert bucket.take()
    assert bucket.wait_s() == pytest.approx(0.25)
    clock.now += 0.1
    assert bucket.wait_s() == pytest.approx(0.15)
    clock.now += 0.15
    assert bucket.take()


def test_charge_goes_into_debt_no_deeper_than_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=5.0, clock=clock)
    bucket.charge(12.0)
    assert bucket.tokens == -5.0
    clock.now += 5.5
    assert not bucket.take()  # 0.5 tokens: still paying back
    assert bucket.wait_s() == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.take()

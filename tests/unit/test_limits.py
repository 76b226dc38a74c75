"""The rate limiters with a clock moved by hand: no sleeps, no sockets."""

from __future__ import annotations

import pytest

from server.limits import ConnectRate, FloodGuard, InFlight, TokenBucket
from tests.unit.doubles import ManualClock


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.1)  # one token back
    assert bucket.take()
    assert not bucket.take()
    clock.advance(60)  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_a_dear_message_needs_all_its_tokens_and_takes_none_otherwise() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1, burst=20, clock=clock)
    assert bucket.take(10)
    assert not bucket.take(11)
    assert bucket.tokens == 10
    assert bucket.take(10)


def test_charge_goes_into_debt_down_to_minus_burst_and_is_paid_back() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=4, burst=5, clock=clock)
    bucket.charge(100)
    assert bucket.tokens == -5
    clock.advance(1.375)  # 5.5 tokens back: 0.5 in hand
    assert not bucket.take()
    clock.advance(0.125)
    assert bucket.take()


def test_the_flood_guard_errors_once_a_second_and_closes_after_its_time() -> None:
    clock = ManualClock()
    flood = FloodGuard(close_after_s=3, clock=clock)
    assert flood.dropped() == (True, False)
    clock.advance(0.5)
    assert flood.dropped() == (False, False)
    clock.advance(0.5)
    assert flood.dropped() == (True, False)
    for _ in range(4):
        clock.advance(0.5)
        flood.dropped()
    assert flood.dropped()[1]  # 3 s of drops without a one-second pause


def test_a_pause_of_over_a_second_starts_the_flood_again() -> None:
    clock = ManualClock()
    flood = FloodGuard(close_after_s=2, clock=clock)
    flood.dropped()
    clock.advance(1.5)
    assert flood.dropped() == (True, False)
    clock.advance(1.0)
    assert flood.dropped() == (True, False)  # 1.0 s since the new start
    clock.advance(1.0)
    assert flood.dropped() == (True, True)


def test_connect_rate_is_per_user_and_refills() -> None:
    clock = ManualClock()
    rate = ConnectRate(rate=1, burst=2, clock=clock)
    assert [rate.allow("core", "ada") for _ in range(3)] == [True, True, False]
    assert rate.allow("core", "bob")
    assert rate.allow("rivals", "ada")  # another team's ada is another user
    clock.advance(1)
    assert rate.allow("core", "ada")
    assert not rate.allow("core", "ada")


def test_connect_rate_forgets_only_full_buckets_when_the_map_is_large() -> None:
    clock = ManualClock()
    rate = ConnectRate(rate=1, burst=2, clock=clock)
    for n in range(10_000):
        rate.allow("core", f"u{n}")
    clock.advance(0.5)  # every bucket has 1.5 of 2 tokens: none is full, none forgotten
    rate.allow("core", "late")
    assert len(rate._buckets) == 10_001
    clock.advance(1)  # now all are full again
    rate.allow("core", "later")
    assert set(rate._buckets) == {("core", "later")}


def test_in_flight_counts_a_key_once_and_lets_go_however_the_block_ends() -> None:
    held: InFlight[str] = InFlight()
    with held.holding("a"), held.holding("a"), held.holding("b"):
        assert sorted(held) == ["a", "b"]
        assert len(held) == 2
    assert not held

    def fail_while_holding() -> None:
        with held.holding("c"):
            raise RuntimeError("store failed")

    with pytest.raises(RuntimeError):
        fail_while_holding()
    assert len(held) == 0

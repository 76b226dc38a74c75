"""Moments in words: each step of `ago`, its edges, time zones and clock skew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tui_collab.when import ago, credit, from_ms

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before", "words"),
    [
        (timedelta(0), "just now"),
        (timedelta(seconds=4.9), "just now"),
        (timedelta(seconds=5), "5 s ago"),
        (timedelta(seconds=12), "12 s ago"),
        (timedelta(seconds=59.9), "59 s ago"),
        (timedelta(seconds=60), "1 min ago"),
        (timedelta(minutes=2, seconds=59), "2 min ago"),
        (timedelta(minutes=59, seconds=59), "59 min ago"),
        (timedelta(hours=1), "1 h ago"),
        (timedelta(hours=3, minutes=10), "3 h ago"),
        (timedelta(hours=15, minutes=30), "15 h ago"),  # 00:00 today
        (timedelta(hours=15, minutes=31), "yesterday 23:59"),
        (timedelta(days=1, hours=1, minutes=25), "yesterday 14:05"),
        (timedelta(days=2), "24 Nov 15:30"),
        (timedelta(days=259, hours=1, minutes=25), "12 Mar 14:05"),
        (timedelta(days=400), "22 Oct 2025 15:30"),
    ],
)
def test_steps(before: timedelta, words: str) -> None:
    assert ago(NOW - before, NOW) == words


def test_an_hour_that_crossed_midnight_says_minutes_then_yesterday() -> None:
    just_after = datetime(2026, 11, 27, 0, 20, tzinfo=UTC)
    assert ago(datetime(2026, 11, 26, 23, 50, tzinfo=UTC), just_after) == "30 min ago"
    assert ago(datetime(2026, 11, 26, 22, 0, tzinfo=UTC), just_after) == "yesterday 22:00"


def test_calendar_words_follow_nows_time_zone() -> None:
    tokyo = timezone(timedelta(hours=9))  # NOW is 00:30 on 27 Nov there
    moment = datetime(2026, 11, 26, 14, 5, tzinfo=UTC)  # 23:05 on 26 Nov in Tokyo
    assert ago(moment, NOW) == "1 h ago"
    assert ago(moment, NOW.astimezone(tokyo)) == "yesterday 23:05"
    two_days = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 05:00 on 25 Nov in Tokyo
    assert ago(two_days, NOW.astimezone(tokyo)) == "25 Nov 05:00"


def test_naive_moments_are_taken_as_utc() -> None:
    assert ago(datetime(2026, 11, 26, 15, 28), NOW) == "2 min ago"
    assert ago(NOW - timedelta(minutes=3), NOW.replace(tzinfo=None)) == "3 min ago"


def test_a_server_clock_a_little_ahead_is_just_now_far_ahead_is_a_date() -> None:
    assert ago(NOW + timedelta(seconds=90), NOW) == "just now"
    assert ago(NOW + timedelta(hours=2), NOW) == "26 Nov 17:30"
    assert ago(NOW + timedelta(days=1), NOW) == "27 Nov 15:30"


def test_from_ms() -> None:
    assert from_ms(0) is None
    assert from_ms(-5) is None
    assert from_ms(int(NOW.timestamp() * 1000)) == NOW


def test_credit_leaves_out_what_is_not_known() -> None:
    two_min = NOW - timedelta(minutes=2)
    assert credit("Ada", two_min, NOW) == "by Ada · 2 min ago"
    assert credit("Ada", None, NOW) == "by Ada"
    assert credit(None, two_min, NOW) == "2 min ago"
    assert credit("", None, NOW) == ""

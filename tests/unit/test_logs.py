"""The rate-limited log and the logs held back during start-up, on a fake clock."""

from __future__ import annotations

import logging

import pytest

from server.logs import HeldLogs, RateLimitedLog


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limited(clock: FakeClock) -> RateLimitedLog:
    return RateLimitedLog(logging.getLogger("test.limited"), interval_s=10.0, clock=clock)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.limited"]


def test_one_line_per_kind_per_interval_with_a_count(
    limited: RateLimitedLog, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(30):
        limited.log(logging.ERROR, "full", "write failed: %s", "disk full")
        clock.now += 0.1  # 30 failures in 3 s
    assert messages(caplog) == ["write failed: disk full"]
    clock.now += 10
    assert limited.log(logging.ERROR, "full", "write failed: %s", "disk full")
    assert messages(caplog)[-1] == "write failed: disk full (29 more like this in the last 13 s)"
    assert not limited.log(logging.ERROR, "full", "write failed: %s", "disk full")
    assert len(messages(caplog)) == 2


def test_kinds_are_limited_apart(
    limited: RateLimitedLog, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(5):
        limited.log(logging.ERROR, "full", "disk full")
        limited.log(logging.ERROR, "io", "i/o error")
    assert messages(caplog) == ["disk full", "i/o error"]


def test_flush_reports_what_was_held(
    limited: RateLimitedLog, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    limited.log(logging.ERROR, "full", "disk full on %s", "a")
    limited.flush()  # nothing held: nothing to say
    assert len(messages(caplog)) == 1
    clock.now += 2
    limited.log(logging.ERROR, "full", "disk full on %s", "b")
    limited.log(logging.ERROR, "full", "disk full on %s", "c")
    limited.flush()
    assert messages(caplog)[-1] == "disk full on c (2 like this in the last 2 s)"
    limited.flush()
    assert len(messages(caplog)) == 2


def test_kinds_do_not_grow_without_bound(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    limited = RateLimitedLog(logging.getLogger("test.limited"), clock=clock, max_kinds=3)
    for n in range(10):
        limited.log(logging.ERROR, f"kind {n}", "error %d", n)
    assert len(limited._last) <= 3
    assert len(messages(caplog)) == 10


def test_held_logs_come_out_in_order_or_not_at_all(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        for release, expected in ((True, "held one\nheld two\nafter\n"), (False, "after\n")):
            target = logging.StreamHandler()  # stderr, as the server logs
            root.handlers[:] = [target]
            root.setLevel(logging.INFO)
            held = HeldLogs(target)
            logging.getLogger("test.held").info("held one")
            logging.getLogger("test.held").info("held two")
            assert capsys.readouterr().err == ""
            if release:
                held.release()
            else:
                held.drop()
            logging.getLogger("test.held").info("after")
            assert capsys.readouterr().err == expected
            assert root.handlers == [target]
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)

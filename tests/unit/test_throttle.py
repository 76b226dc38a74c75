"""The cursor and typing throttle on a manual clock."""

import pytest

from tui_collab.throttle import Throttle


def test_the_first_position_goes_at_once_then_one_per_interval() -> None:
    throttle = Throttle(0.5)
    throttle.due["plan"] = (1, 1)
    assert throttle.wait_s("plan", 10.0) <= 0
    assert throttle.take("plan", 10.0) == (1, 1)
    throttle.due["plan"] = (2, 1)
    assert throttle.wait_s("plan", 10.2) == pytest.approx(0.3)
    assert throttle.wait_s("other", 10.2) <= 0  # each board on its own


def test_only_the_last_position_asked_for_goes_out() -> None:
    throttle = Throttle(1.0)
    for x in range(5):
        throttle.due["plan"] = (x, 0)
    assert throttle.take("plan", 3.0) == (4, 0)
    assert throttle.take("plan", 3.5) is None  # nothing new is due
    assert throttle.sent_at["plan"] == 3.0


def test_stop_says_whether_anything_went_out() -> None:
    throttle = Throttle(2.0)
    assert not throttle.stop("plan")
    throttle.due["plan"] = (0, 0)
    throttle.take("plan", 1.0)
    throttle.due["plan"] = (1, 0)
    assert throttle.stop("plan")
    assert throttle.due == {}
    assert throttle.wait_s("plan", 1.5) <= 0  # forgotten: the next goes at once

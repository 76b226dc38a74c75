"""The server's garbage-collector settings (made in this test's own process, then undone)."""

from __future__ import annotations

import gc
import weakref

from server.collector import OLDER_THRESHOLDS, YOUNG_THRESHOLD, settle


class _Node:
    peer: object


def test_settle_freezes_what_exists_and_still_collects_later_cycles() -> None:
    before = gc.get_threshold()
    try:
        settle()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
        made_later = _Node()
        made_later.peer = made_later  # a cycle: only the collector frees it
        gone = weakref.ref(made_later)
        del made_later
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

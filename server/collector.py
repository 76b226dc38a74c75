"""The garbage collector, set for a process that holds thousands of connections.

CPython collects cycles in three generations; a collection of the oldest walks every
object the process tracks. A server with 1,200 connections tracks some hundreds of
thousands, and while a crowd of 1,000 joined a board the collector ran 358 times,
twice over everything: its pauses added up to 0.46 s and the longest was 77 ms. A
pause stops the whole loop, so every board's cursor window due meanwhile waits for it.

Two settings, made once the server is listening:

- what start-up made (modules, the protocol's schemas, the store) is frozen: it is never
  garbage, and no collection walks it again;
- the youngest generation is collected after `YOUNG_THRESHOLD` allocations, not 700.
  The same crowd then saw 8 or 9 collections, at most one of them full: 75-125 ms in
  all, 15-33 ms at the longest. Cycles still go, a little later: a connection's
  objects live for minutes, and most of a request's die without a cycle, by reference
  count.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG_THRESHOLD: Final = 20_000
"""Allocations (less deallocations) between collections of the youngest generation."""
OLDER_THRESHOLDS: Final = (20, 10)
"""Collections of each generation between collections of the next one."""


def settle() -> None:
    """Freeze what exists now and collect less often from here on; call once, when
    start-up is done."""
    gc.collect()  # start-up's own cycles are garbage: collect them, do not freeze them
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)

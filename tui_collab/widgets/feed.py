"""The activity feed: joins, leaves, status changes and board events, newest last."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual.widgets import Log


class ActivityFeed(Log):
    """A plain-text log (no markup), stamped with the injected clock's local time."""

    DEFAULT_CSS = """
    ActivityFeed { height: 7; border-top: solid $panel-lighten-1; background: $surface; }
    """

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(max_lines=500, auto_scroll=True, id=id)
        self._clock = clock
        self.can_focus = False

    def add(self, text: str) -> None:
        self.write_line(f"{self._clock().strftime('%H:%M')}  {text}")

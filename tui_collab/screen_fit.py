"""Small terminals: a notice instead of an empty grid, and `z` to give the grid room.

Mixed into `CollabApp` (tui_collab.app), which composes `#main` (sidebar, grid, feed)
and a hidden `#too-small` label; app.tcss shows one or the other by the app's
`-too-small` and `-zoomed` classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeAlias

from textual import events
from textual.app import App
from textual.widgets import Label

from tui_collab.widgets.grid import BoardGrid

MIN_SIZE: Final = (60, 15)
"""The smallest terminal showing the sidebar, the feed and a grid of 2 columns by 3 rows."""
MIN_SIZE_ZOOMED: Final = (30, 8)
"""The same with the sidebar and the feed hidden (`z`)."""

# The mixin is typed as the App it is mixed into, so its calls to App methods are checked.
if TYPE_CHECKING:
    _Base: TypeAlias = App[None]
else:
    _Base = object


class ScreenFit(_Base):
    """`z` (zoom) and the too-small notice (see module doc)."""

    zoomed: bool = False
    """The sidebar and the feed are hidden."""

    if TYPE_CHECKING:

        @property
        def grid(self) -> BoardGrid: ...

    def action_zoom(self) -> None:
        """Hide (or show again) the sidebar and the feed: the grid gets their room."""
        self.zoomed = not self.zoomed
        self.set_class(self.zoomed, "-zoomed")
        self.fit_to(self.size.width, self.size.height)

    def on_resize(self, event: events.Resize) -> None:
        self.fit_to(event.size.width, event.size.height)

    def fit_to(self, width: int, height: int) -> None:
        """Below the smallest usable size, say so (and how much is needed) instead of
        showing an empty grid; above it, give the keys back to the grid."""
        need_w, need_h = MIN_SIZE_ZOOMED if self.zoomed else MIN_SIZE
        small = width < need_w or height < need_h
        if small:
            notice = f"terminal too small (need {need_w}×{need_h})"  # noqa: RUF001
            zoom_w, zoom_h = MIN_SIZE_ZOOMED
            if not self.zoomed and width >= zoom_w and height >= zoom_h:
                notice += "\nz hides the sidebar and the feed"
            self.query_one("#too-small", Label).update(notice)
        self.set_class(small, "-too-small")
        if not small and self.focused is None and self.screen is self.screen_stack[0]:
            self.grid.focus()

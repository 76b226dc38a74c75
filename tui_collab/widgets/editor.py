"""The cell editor: one line of text whose paste is made to fit a cell, visibly."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import Input

from tui_collab.editing import clean_paste


class CellEditor(Input):
    """An `Input` that keeps a whole paste, with tabs and line breaks turned to spaces.

    Textual's `Input` keeps only the first line of a paste and would let a tab through
    (which the server refuses). Here every change made to a paste is announced with
    `PasteCleaned`, so the app can tell the person what will be stored.
    """

    class PasteCleaned(Message):
        """A paste was changed to fit a cell; `notice` says how."""

        def __init__(self, notice: str) -> None:
            super().__init__()
            self.notice = notice

    def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # Input's own handler would paste the first line only
        event.stop()
        cleaned = clean_paste(event.text)
        if cleaned.text:
            selection = self.selection
            if selection.is_empty:
                self.insert_text_at_cursor(cleaned.text)
            else:
                self.replace(cleaned.text, *selection)
        if cleaned.notice is not None:
            self.post_message(self.PasteCleaned(cleaned.notice))

"""The board's notes pane: a TextArea bound to the shared text, with teammates' carets.

The widget knows nothing of the network: the app gives it a `NotesBinding` (which turns
its edits into CRDT operations and hands back everyone else's) and the teammates'
carets as locations. Its own undo history is not used: ctrl+z and ctrl+y undo and redo
this user's changes in the shared text, through the binding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, TextArea
from textual.widgets.text_area import Edit, EditResult, Selection

from tui_collab.notes_binding import Location, NotesBinding, ViewChange, cleaned
from tui_collab.widgets.grid import IDLE_AFTER_S, TYPING_EXPIRES_S, TYPING_MARK

RELOAD_OVER_EDITS = 64
"""A change of more pieces than this (a first sync, a big merge) reloads the whole text."""
SAVED = "saved"
"""The pane's title when the server has every change of this user's."""
SELECTION_TINT = 0.35
"""How much of a teammate's colour shows behind the text they selected."""


@dataclass
class RemoteCaret:
    """A teammate's caret (head) and selection (anchor..head) in the notes."""

    user: str
    name: str
    colour: str
    anchor: Location
    head: Location
    moved_at: float
    typed_at: float | None = None
    """When their last change to the text arrived (for the ✎ mark)."""


class NotesArea(TextArea, inherit_bindings=True):
    """The shared text. Edits go to the binding as they are made; others' come back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+z", "undo", "Undo", show=False),
        Binding("ctrl+y", "redo", "Redo", show=False),
    ]

    class LocalEdit(Message):
        """This user changed the text (typing marks, activity)."""

    class CaretMoved(Message):
        """This user's caret or selection moved (to send it to the others)."""

    class Cleaned(Message):
        """Pasted text held control characters the notes cannot hold: they were left out."""

        def __init__(self, removed: int) -> None:
            super().__init__()
            self.removed = removed

    class Full(Message):
        """An edit would take the notes past the server's cap; it was not made."""

        def __init__(self, max_bytes: int) -> None:
            super().__init__()
            self.max_bytes = max_bytes

    class NothingToUndo(Message):
        """ctrl+z (or ctrl+y) found none of this user's changes to take back (or redo)."""

        def __init__(self, redo: bool) -> None:
            super().__init__()
            self.redo = redo

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, id: str | None = None
    ) -> None:
        # Set first: the TextArea moves its selection while it starts.
        self.clock = clock
        self.binding: NotesBinding | None = None
        self.remote: dict[str, RemoteCaret] = {}
        self._applying = False
        super().__init__("", soft_wrap=True, tab_behavior="indent", id=id)
        self.cursor_blink = False  # still snapshots; a blinking caret is noise here
        # The cursor line's style would paint over teammates' carets and selections.
        self.highlight_cursor_line = False

    # --- the shared text --------------------------------------------------------------

    def attach(self, binding: NotesBinding | None) -> None:
        """Show the text `binding` follows (None: nothing, read-only) with the caret at
        its start."""
        self.binding = binding
        self.remote.clear()
        self._applying = True
        try:
            self.load_text(binding.shown_text if binding else "")
        finally:
            self._applying = False
        self.read_only = binding is None
        if binding is not None:
            binding.select((0, 0), (0, 0))

    def apply_change(self, change: ViewChange) -> None:
        """Show a change made elsewhere (a teammate, an undo), keeping the selection."""
        self._applying = True
        try:
            if len(change.edits) > RELOAD_OVER_EDITS and self.binding is not None:
                self.load_text(self.binding.shown_text)
            else:
                for edit in change.edits:
                    super().edit(Edit(edit.text, edit.start, edit.end, True))
            self.selection = Selection(change.anchor, change.head)
            self.history.clear()  # this widget's own undo is not used
        finally:
            self._applying = False
        self._line_cache.clear()  # the carets painted on the changed lines moved
        self.refresh()

    def edit(self, edit: Edit) -> EditResult:
        """Every change to the text passes here: this user's go to the binding too."""
        if self._applying or self.binding is None:
            return super().edit(edit)
        edit.text, removed = cleaned(edit.text)
        if removed:
            self.post_message(self.Cleaned(removed))
        top, bottom = sorted((edit.from_location, edit.to_location))
        top = self.clamp_visitable(top)
        bottom = self.clamp_visitable(bottom)
        if self.binding.too_big(top, bottom, edit.text):
            # Refused here, said at once, nothing changed: the server would refuse it.
            self.post_message(self.Full(self.binding.max_bytes or 0))
            return EditResult(end_location=self.selection.end, replaced_text="")
        result = super().edit(edit)
        # What the document holds now, which is what was typed or pasted with its line
        # breaks made "\n" (the editor splits "\r\n" and the rest into lines).
        inserted = self.document.get_text_range(top, result.end_location)
        self.binding.local_edit(top, bottom, inserted)
        self.history.clear()
        self.post_message(self.LocalEdit())
        return result

    def watch_selection(self, selection: Selection) -> None:
        if self._applying or self.binding is None:
            return
        self.binding.select(selection.start, selection.end)
        self.post_message(self.CaretMoved())

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "escape":  # the TextArea would move the focus on: leave instead
            event.stop()
            event.prevent_default()
            await self.run_action("app.close_notes")
            return
        await super()._on_key(event)

    def action_undo(self) -> None:
        if self.binding is not None and not self.binding.undo():
            self.post_message(self.NothingToUndo(redo=False))

    def action_redo(self) -> None:
        if self.binding is not None and not self.binding.redo():
            self.post_message(self.NothingToUndo(redo=True))

    # --- teammates --------------------------------------------------------------------

    def show_carets(self, carets: dict[str, RemoteCaret]) -> None:
        """Paint these teammates' carets and selections (replacing the ones shown)."""
        self.remote = carets
        self._line_cache.clear()
        self.refresh()

    def mark_typing(self, user: str) -> None:
        caret = self.remote.get(user)
        if caret is not None:
            caret.typed_at = self.clock()
            self._line_cache.clear()
            self.refresh()

    def get_line(self, line_index: int) -> Text:
        line = super().get_line(line_index)
        if not self.remote:
            return line
        length = len(line.plain)
        labels: list[tuple[RemoteCaret, bool]] = []
        for caret in sorted(self.remote.values(), key=lambda c: c.name.casefold()):
            colour = self._colour(caret)
            top, bottom = sorted((caret.anchor, caret.head))
            if top != bottom and top[0] <= line_index <= bottom[0]:
                start = top[1] if top[0] == line_index else 0
                end = bottom[1] if bottom[0] == line_index else length
                line.stylize(Style(bgcolor=self._tint(colour)), start, end)
            row, column = caret.head
            if row != line_index:
                continue
            if column < length:
                line.stylize(Style(bgcolor=colour, color="#000000"), column, column + 1)
            labels.append((caret, column >= length))
        for n, (caret, at_end) in enumerate(labels):
            colour = self._colour(caret)
            if at_end and n == 0:  # the caret itself, after the line's last character
                line.append(" ", Style(bgcolor=colour))
            else:
                line.append(" ")
            mark = f" {TYPING_MARK}" if self._typing(caret) else ""
            line.append(f"{caret.name}{mark}", Style(color=colour, bold=True))
        return line

    def _typing(self, caret: RemoteCaret) -> bool:
        return caret.typed_at is not None and self.clock() - caret.typed_at < TYPING_EXPIRES_S

    def _colour(self, caret: RemoteCaret) -> str:
        """Their colour; dimmed once they have not moved or typed for a while."""
        last = max(caret.moved_at, caret.typed_at or caret.moved_at)
        if self.clock() - last < IDLE_AFTER_S:
            return caret.colour
        return Color.parse(caret.colour).blend(Color.parse("#303030"), 0.6).hex

    def _tint(self, colour: str) -> str:
        background = self.styles.background
        base = background if background.a else Color.parse("#1e1e1e")
        return base.blend(Color.parse(colour), SELECTION_TINT).hex

    def tick(self) -> None:
        """Repaint when a ✎ mark or an idle colour is due to change (once a second)."""
        if self.remote:
            self._line_cache.clear()
            self.refresh()


class NotesPane(Vertical):
    """A title line over the notes: whose board, and whether every change is saved."""

    DEFAULT_CSS = """
    NotesPane { width: 1fr; border-left: solid $panel-lighten-1; }
    NotesPane > #notes-title { height: 1; width: 1fr; padding: 0 1; background: $panel; }
    NotesPane > NotesArea { height: 1fr; border: none; padding: 0 1; }
    NotesPane > NotesArea:focus { border: none; }
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, id: str | None = None):
        super().__init__(id=id)
        self.clock = clock
        self._title = Text()

    def compose(self) -> ComposeResult:
        yield Label("", id="notes-title")
        yield NotesArea(self.clock, id="notes")

    def on_mount(self) -> None:
        self.set_interval(1.0, self.area.tick)

    @property
    def area(self) -> NotesArea:
        return self.query_one(NotesArea)

    def show_title(self, board: str, state: str = "", problem: str = "") -> None:
        """'NOTES · Q3 plan', then how saving goes ('3 changes not saved yet'), then the
        last refusal in red."""
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append("NOTES", "bold")
        title.append(f" · {board}")
        if state:
            title.append(f"  {state}", "green" if state == SAVED else "yellow")
        if problem:
            title.append(f"  ! {problem}", "bold red")
        title.append("   esc grid · ctrl+z undo", "dim")
        if title != self._title:  # an update lays the screen out again: only a change
            self._title = title
            self.query_one("#notes-title", Label).update(title)

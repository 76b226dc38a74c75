"""A text editor's view bound to a board's shared notes (a pycrdt `Text`).

Pure code: no screen, no socket. The editor reports each local edit as a replaced range
of (row, column) locations; `NotesBinding` turns it into CRDT operations in one
transaction with this user's own origin. Every other change to the text (a teammate's
update, an undo or redo of this user's edits) comes back as `ViewChange`: edits to
apply to the editor in order, and where the local selection is after them.

Three index spaces meet here, and every conversion is in this module:
- the editor's locations: (row, column), the column a code point offset in its line;
- pycrdt 0.14 `Text.insert`/`del` and `TextEvent.delta`: UTF-8 byte offsets (an offset
  inside a character appends at the end, so it must never happen);
- pycrdt `sticky_index`: UTF-16 code units, as in Yjs (`SharedNotes` converts carets,
  which it takes and gives as character indexes).

The local selection is carried through a remote change by the change's own delta (each
insert and delete moves it, with an insert exactly at a collapsed caret landing after
it), rather than by resolving pycrdt `StickyIndex` objects: in pycrdt 0.14 a sticky
index resolves to a mix of byte and UTF-16 counts once the text holds non-ASCII
characters (y-crdt/pycrdt#382), while the delta is exact.

Text shown in the editor keeps one code point per code point of the shared text: line
separators other than "\\n" (which the editor would split lines on) show as U+FFFD.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pycrdt import Subscription, Text, TextEvent, UndoManager

from tui_collab.yupdate import NOTES_REFUSED

logger = logging.getLogger(__name__)

Location = tuple[int, int]
"""(row, column) in the editor: the column counts code points."""

FOREIGN_SEPARATORS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
"""What `str.splitlines` (and so the editor) breaks lines on, besides "\\n"."""
SHOWN_FOR_SEPARATOR = "\ufffd"
_SEPARATOR_TABLE = str.maketrans(dict.fromkeys(FOREIGN_SEPARATORS, SHOWN_FOR_SEPARATOR))

UNDO_CAPTURE_MS = 500
"""Edits this close together undo as one step (a burst of typing, not each key)."""


class LocalOrigin:
    """The transaction origin of this user's own typing (one per binding)."""

    def __repr__(self) -> str:
        return "<notes: local edit>"


def cleaned(text: str) -> tuple[str, int]:
    """`text` as the notes can hold it, and how many characters were taken out: line
    breaks become "\\n", other control characters (which the server refuses) go."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = NOTES_REFUSED.sub("", text)
    return kept, len(text) - len(kept)


def shown(text: str) -> str:
    """`text` as the editor shows it: same length, no line break but "\\n"."""
    return text.translate(_SEPARATOR_TABLE)


# --- index conversions ----------------------------------------------------------------


def utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def utf16_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def advance_bytes(text: str, start: int, nbytes: int) -> int:
    """The code point offset `nbytes` UTF-8 bytes after code point offset `start`.

    Raises ValueError when that falls inside a character or past the end."""
    chunk = text[start : start + nbytes]  # never fewer bytes than code points
    if chunk.isascii():
        if len(chunk) < nbytes:
            raise ValueError(f"{nbytes} bytes from {start} run past the end")
        return start + nbytes
    data = chunk.encode("utf-8")
    if len(data) < nbytes:
        raise ValueError(f"{nbytes} bytes from {start} run past the end")
    return start + len(data[:nbytes].decode("utf-8"))  # strict: a split character raises


def location_of(text: str, offset: int) -> Location:
    """The (row, column) of code point `offset` (clamped to the text)."""
    offset = max(0, min(offset, len(text)))
    row = text.count("\n", 0, offset)
    return row, offset - (text.rfind("\n", 0, offset) + 1)


def offset_of(text: str, location: Location) -> int:
    """The code point offset of (row, column), clamped to the text and to the row."""
    row, column = location
    start = 0
    for _ in range(max(0, row)):
        newline = text.find("\n", start)
        if newline < 0:
            return len(text)
        start = newline + 1
    end = text.find("\n", start)
    if end < 0:
        end = len(text)
    return start + max(0, min(column, end - start))


# --- changes for the editor -----------------------------------------------------------


@dataclass(frozen=True)
class TextEdit:
    """Replace `start`..`end` with `text` (locations in the text as it is before)."""

    start: Location
    end: Location
    text: str


@dataclass(frozen=True)
class ViewChange:
    """What the editor does to show a change that did not come from its own keys."""

    edits: tuple[TextEdit, ...]
    """Applied in order, each to the text the one before left."""
    anchor: Location
    head: Location
    """The local selection afterwards (equal when it is a caret)."""
    own: bool
    """An undo or redo of this user's edits: the caret went to the change."""


@dataclass(frozen=True)
class _Op:
    """One delta operation in code points: `delete` code points at `at`, then `insert`."""

    at: int
    delete: int
    insert: str


def _moved(position: int, op: _Op, *, stay_at_insert: bool) -> int:
    """Where a position goes when `op` is applied before it."""
    if op.delete:
        if position > op.at:
            position = max(op.at, position - op.delete)
        return position
    if position > op.at or (position == op.at and not stay_at_insert):
        return position + len(op.insert)
    return position


class NotesBinding:
    """Keeps an editor and the shared `Text` equal, and the local selection where it was.

    `on_change` is called with each `ViewChange` while the change's transaction
    commits: the editor must apply it at once, before any other edit is reported.
    """

    def __init__(
        self,
        text: Text,
        on_change: Callable[[ViewChange], None],
        *,
        capture_ms: int = UNDO_CAPTURE_MS,
        max_bytes: int | None = None,
    ) -> None:
        self.text = text
        self.max_bytes = max_bytes
        """The server's cap on the text (UTF-8 bytes); None: no cap known."""
        self.on_change = on_change
        self.origin = LocalOrigin()
        self.value = str(text)
        """The shared text as the editor holds it, character for character."""
        self.anchor = 0
        self.head = 0
        """The local selection, as code point offsets in `value`."""
        self.undo_manager = UndoManager(scopes=[text], capture_timeout_millis=capture_ms)
        self.undo_manager.include_origin(self.origin)
        self._undo_origin = self.undo_manager.origin
        """Undo and redo commit with this origin (read once: not while they run)."""
        self._subscription: Subscription | None = text.observe(self._observed)

    @property
    def shown_text(self) -> str:
        return shown(self.value)

    def close(self) -> None:
        """Stop following the shared text (the pane closed, or the board changed)."""
        if self._subscription is not None:
            self.text.unobserve(self._subscription)
            self._subscription = None

    # --- local ------------------------------------------------------------------------

    def local_edit(self, start: Location, end: Location, inserted: str) -> None:
        """This user replaced `start`..`end` (locations before the edit) with `inserted`."""
        value = self.value
        a, b = sorted((offset_of(value, start), offset_of(value, end)))
        if a == b and not inserted:
            return
        at = utf8_len(value[:a])
        with self.text.doc.transaction(origin=self.origin):
            if b > a:
                del self.text[at : at + utf8_len(value[a:b])]
            if inserted:
                self.text.insert(at, inserted)
        self.value = value[:a] + inserted + value[b:]
        self.anchor = self.head = a + len(inserted)

    def too_big(self, start: Location, end: Location, inserted: str) -> bool:
        """Whether replacing `start`..`end` with `inserted` would take the text past
        `max_bytes` (what the server would refuse; a deletion never does)."""
        if self.max_bytes is None or not inserted:
            return False
        value = self.value
        a, b = sorted((offset_of(value, start), offset_of(value, end)))
        size = utf8_len(value) - utf8_len(value[a:b]) + utf8_len(inserted)
        return size > self.max_bytes

    def select(self, anchor: Location, head: Location) -> None:
        """The editor's selection moved (by keys, the mouse, or an edit)."""
        self.anchor = offset_of(self.value, anchor)
        self.head = offset_of(self.value, head)

    def caret_indexes(self) -> tuple[int, int]:
        """The local selection as character indexes (anchor, head), as `SharedNotes`
        takes a caret."""
        return self.anchor, self.head

    def location_of_index(self, index: int) -> Location:
        """Where a teammate's caret (a character index) is in the editor."""
        return location_of(self.value, index)

    # --- undo -------------------------------------------------------------------------

    def undo(self) -> bool:
        """Take back this user's newest change still in the text; False if none."""
        return bool(self.undo_manager.undo())

    def redo(self) -> bool:
        return bool(self.undo_manager.redo())

    @property
    def can_undo(self) -> bool:
        return bool(self.undo_manager.can_undo())

    @property
    def can_redo(self) -> bool:
        return bool(self.undo_manager.can_redo())

    # --- everything else --------------------------------------------------------------

    def _observed(self, event: TextEvent) -> None:
        origin = event.transaction.origin
        if origin is self.origin:
            return  # this user's typing: the editor shows it already
        try:
            delta: list[dict[str, Any]] = getattr(event, "delta")  # noqa: B009  (a slot, untyped)
            self._follow(delta, own=origin == self._undo_origin)
        except ValueError:
            # A delta that does not fit the text as held: never expected, never fatal.
            # The editor is given the whole text again, the caret kept by offset.
            logger.exception("notes: a change did not fit; showing the whole text again")
            self._reload(str(self.text))

    def _reload(self, value: str) -> None:
        old = self.value
        self.value = value
        self.anchor = min(self.anchor, len(value))
        self.head = min(self.head, len(value))
        edit = TextEdit((0, 0), location_of(old, len(old)), shown(value))
        self.on_change(
            ViewChange(
                (edit,), location_of(value, self.anchor), location_of(value, self.head), False
            )
        )

    def _follow(self, delta: list[dict[str, Any]], *, own: bool) -> None:
        value = self.value
        ops = list(self._ops(value, delta))
        if not ops:
            return
        edits: list[TextEdit] = []
        anchor, head = self.anchor, self.head
        start, end = sorted((anchor, head))
        for op in ops:
            stop = op.at + op.delete
            edits.append(
                TextEdit(location_of(value, op.at), location_of(value, stop), shown(op.insert))
            )
            value = value[: op.at] + op.insert + value[stop:]
            if anchor == head:
                anchor = head = _moved(anchor, op, stay_at_insert=True)
            else:
                # A selection grows by what lands inside it, not at its edges.
                start = _moved(start, op, stay_at_insert=False)
                end = _moved(end, op, stay_at_insert=True)
            if own:
                start = end = anchor = head = op.at + len(op.insert)
        if anchor != head:
            anchor, head = (start, end) if self.anchor <= self.head else (end, start)
        self.value = value
        self.anchor, self.head = anchor, head
        self.on_change(
            ViewChange(tuple(edits), location_of(value, anchor), location_of(value, head), own)
        )

    @staticmethod
    def _ops(value: str, delta: list[dict[str, Any]]) -> Iterator[_Op]:
        """A text delta (UTF-8 byte counts) as operations in code points, each at its
        offset in the text the ones before it left."""
        at = 0
        for part in delta:
            if "retain" in part:
                at = advance_bytes(value, at, int(part["retain"]))
            elif "delete" in part:
                stop = advance_bytes(value, at, int(part["delete"]))
                yield _Op(at, stop - at, "")
                value = value[:at] + value[stop:]
            elif "insert" in part:
                inserted = part["insert"]
                if not isinstance(inserted, str):
                    logger.warning("notes: ignored a non-text insert %r", type(inserted))
                    continue
                yield _Op(at, 0, inserted)
                value = value[:at] + inserted + value[at:]
                at += len(inserted)

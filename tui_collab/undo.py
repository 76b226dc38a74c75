"""Undo and redo of this user's own edits on a shared board.

Pure code. On a board others edit at the same time, undo cannot rewind the board: it
writes the value a cell had before this user's edit back as a new edit, and only where
the cell still holds what this user wrote. A cell a teammate changed since is theirs
now and is left alone (the person is told who changed it). One step is whatever one
action wrote: a single cell, or every cell of a paste or a delete.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tui_collab.cells import cell_name

UNDO_LIMIT = 500
"""Steps kept each way; the oldest go first."""


@dataclass(frozen=True)
class Change:
    """One cell of a step: what it held before the edit, and what the edit wrote."""

    x: int
    y: int
    before: str
    after: str


@dataclass(frozen=True)
class Step:
    changes: tuple[Change, ...]

    @classmethod
    def of(cls, changes: Iterable[Change]) -> Step | None:
        """A step of the changes that change something; None when none does."""
        real = tuple(c for c in changes if c.before != c.after)
        return cls(real) if real else None


@dataclass(frozen=True)
class Skipped:
    """A cell left alone: `by` (a user id, "" if unknown) wrote `value` there since."""

    x: int
    y: int
    by: str


@dataclass(frozen=True)
class Plan:
    """What one undo or redo writes, and which cells it had to leave alone."""

    writes: list[tuple[int, int, str]]
    skipped: list[Skipped]


Current = Callable[[int, int], tuple[str, str]]
"""A cell's value now and who wrote it (user id): what the board shows this user."""


class UndoHistory:
    """One user's undo and redo stacks for one board, each at most `limit` steps."""

    def __init__(self, limit: int = UNDO_LIMIT) -> None:
        self._undo: deque[Step] = deque(maxlen=limit)
        self._redo: deque[Step] = deque(maxlen=limit)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def record(self, step: Step) -> None:
        """A new edit: it can be undone, and what was undone before can no longer be redone."""
        self._undo.append(step)
        self._redo.clear()

    def forget(self, step: Step) -> None:
        """Drop a step whose edit never happened (the server refused it)."""
        for stack in (self._undo, self._redo):
            if step in stack:
                stack.remove(step)

    def undo(self, current: Current) -> Plan | None:
        """Take back the newest step: its cells that still hold this user's value get
        their earlier value back. None when there is nothing to undo."""
        return self._move(self._undo, self._redo, current)

    def redo(self, current: Current) -> Plan | None:
        """Write again what the newest undo took back, where nobody changed it since."""
        return self._move(self._redo, self._undo, current)

    @staticmethod
    def _move(source: deque[Step], target: deque[Step], current: Current) -> Plan | None:
        if not source:
            return None
        step = source.pop()
        writes: list[tuple[int, int, str]] = []
        skipped: list[Skipped] = []
        done: list[Change] = []
        for change in step.changes:
            value, by = current(change.x, change.y)
            if value == change.after:
                writes.append((change.x, change.y, change.before))
                done.append(Change(change.x, change.y, change.after, change.before))
            else:
                skipped.append(Skipped(change.x, change.y, by))
        if done:
            target.append(Step(tuple(done)))
        return Plan(writes, skipped)


def skipped_notice(skipped: list[Skipped], name_of: Callable[[str], str], verb: str) -> str:
    """'B4 changed by Ada since — not undone', or '3 cells changed by others since — …'."""
    if len(skipped) == 1:
        cell = skipped[0]
        who = f" by {name_of(cell.by)}" if cell.by else ""
        return f"{cell_name(cell.x, cell.y)} changed{who} since — not {verb}"
    return f"{len(skipped)} cells changed by others since — not {verb}"

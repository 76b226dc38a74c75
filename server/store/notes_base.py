"""Where a board's notes are kept: an append-only log of Yjs updates and one snapshot.

Every accepted `notes.update` is appended as it came (acked once committed); a load
reads the snapshot and the log after it. Once a board's log holds `COMPACT_AFTER`
updates, `compact` folds the snapshot and the log read with it into one new snapshot
and drops exactly those log entries, so updates appended meanwhile stay (an entry still
waiting for one it builds on is logged again). Yjs updates
commute and are idempotent, so neither the order of the log nor a duplicate in it
matters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final, Protocol

from pycrdt import Doc, Text

from tui_collab.yupdate import NOTES_ROOT, CausalQueue, UpdateError, is_panic

logger = logging.getLogger(__name__)

COMPACT_AFTER: Final = 500
"""Log entries that trigger a compaction. A keystroke is one update of 25 to 40 bytes,
so the log stays under about 20 KB past the snapshot, and a load merges at most this many
small updates (under 5 ms) on top of one snapshot; a busy board compacts every couple of
minutes of typing, each time one read and one write of the snapshot."""


def notes_channel(prefix: str, team: str, board: str) -> str:
    """The Redis channel of a board's notes: updates (from the store) and carets."""
    return f"{prefix}t:{team}:b:{board}:notes"


@dataclass(frozen=True, slots=True)
class StoredNotes:
    snapshot: bytes | None
    updates: list[bytes]

    def rebuild(self) -> tuple[Doc[Any], CausalQueue]:
        """The document the snapshot and the log make, and the logged updates still
        waiting for one they build on (a client may send updates out of order).

        Each update goes through a `CausalQueue`, not `merge_updates`: Yrs may never
        integrate an update it was given before one it depends on.
        """
        doc: Doc[Any] = Doc()
        doc.get(NOTES_ROOT, type=Text)
        queue = CausalQueue()
        if self.snapshot:
            doc.apply_update(self.snapshot)
        for update in self.updates:
            try:
                ready = queue.offer(update, None, doc.get_state())
            except UpdateError:
                continue  # checked before it was stored; an older format stays unread
            for piece, _ in ready:
                try:
                    doc.apply_update(piece)
                except BaseException as exc:
                    if not is_panic(exc) and not isinstance(exc, ValueError):
                        raise
                    logger.error("a stored notes update Yrs cannot apply was skipped: %s", exc)
        return doc, queue

    def compacted(self) -> tuple[bytes, list[bytes]]:
        """The new snapshot, and the updates to keep logged (those still waiting)."""
        doc, queue = self.rebuild()
        return doc.get_update(), [update for update, _, _ in queue.held]


class NotesStore(Protocol):
    """Durable notes; every write returns only once committed."""

    async def load_notes(self, team: str, board: str) -> StoredNotes: ...

    async def append_notes(self, team: str, board: str, update: bytes, by: str) -> int:
        """Append one update; return how many the board's log holds now."""
        ...

    async def compact_notes(self, team: str, board: str) -> bool:
        """Fold the log into the snapshot; False if another writer got there first."""
        ...

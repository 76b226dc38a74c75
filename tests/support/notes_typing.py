"""Typing into shared notes, and checking that a document holds an update."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from pycrdt import Doc, Text

from tui_collab.backoff import Backoff
from tui_collab.notes import SharedNotes


def fast_backoff(seed: int) -> Backoff:
    return Backoff(base_s=0.05, factor=2.0, cap_s=0.2, rng=random.Random(seed))


async def type_into(notes: SharedNotes, rng: random.Random, stop: asyncio.Event) -> None:
    """A few hundred keys a second, at random places, some of them deletions."""
    while not stop.is_set():
        size = len(str(notes.text))
        if size and rng.random() < 0.2:
            at = rng.randrange(size)
            notes.delete(at, at + 1)
        else:
            notes.insert(rng.randrange(size + 1), rng.choice("abc \n"))
        await asyncio.sleep(0.003)


def holds(state: bytes, update: bytes) -> bool:
    """Whether a document with `state` (a whole update) already has all of `update`."""
    doc: Doc[Any] = Doc()
    text = doc.get("notes", type=Text)
    doc.apply_update(state)
    before = (doc.get_state(), str(text))
    doc.apply_update(update)
    return (doc.get_state(), str(text)) == before

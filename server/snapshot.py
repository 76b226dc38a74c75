"""A board's cells kept as encoded JSON, so a snapshot costs a join, not an encode.

Encoding 10,000 cells of 256 four-byte characters takes tens of milliseconds; doing it
on every `board.join` let one user stall the event loop for everyone. Here each cell is
encoded once after it changes (lazily, at the next join, a slice at a time) and kept in
a chunk of at most `PART_BYTES`; a snapshot is the list of chunk bodies, rebuilt only
for the chunks an op touched and shared by every joiner of the same version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from tui_collab.cells import CellMap, CellOp, Coord

PART_BYTES: Final = 64 * 1024
"""Cells of one `board.state` part: at most this many bytes of JSON (one cell is at most
about 1.2 KiB: 256 four-byte characters plus its ids)."""

_dumps = json.JSONEncoder(ensure_ascii=False).encode


def encode_cell(op: CellOp) -> bytes:
    """One `Cell` object as UTF-8 JSON, as `protocol.Cell` would encode it.

    Client and user ids are identifiers (ASCII letters, digits and `._@-`), so only the
    value needs escaping.
    """
    at = f',"at":"{_iso(op.at)}"' if op.at else ""
    return (
        f'{{"x":{op.x},"y":{op.y},"value":{_dumps(op.value)},"clock":{op.clock},'
        f'"client":"{op.client}","by":"{op.by}"{at}}}'
    ).encode()


def _iso(at_ms: int) -> str:
    """Unix milliseconds as pydantic writes a UTC datetime ("2026-11-28T11:30:00.123000Z")."""
    moment = datetime.fromtimestamp(at_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(eq=False, slots=True)
class _Chunk:
    cells: dict[Coord, bytes] = field(default_factory=dict)
    size: int = 0
    """Bytes of the cells' JSON plus one comma each."""
    body: bytes | None = None
    """The cells joined with commas; None until asked for after a change."""

    def joined(self) -> bytes:
        if self.body is None:
            self.body = b",".join(self.cells.values())
        return self.body


def pack(fragments: Iterable[bytes], limit: int = PART_BYTES) -> list[bytes]:
    """Comma-joined runs of `fragments`, in order, each at most `limit` bytes (one
    fragment alone may be longer)."""
    return _pack(((fragment, len(fragment) + 1) for fragment in fragments), limit)


def _pack(pieces: Iterable[tuple[bytes, int]], limit: int) -> list[bytes]:
    """Comma-joined runs of `pieces` (each a body and its size counting one comma), in
    order, each run's sizes summing to at most `limit` (one piece alone may be more)."""
    parts: list[bytes] = []
    run: list[bytes] = []
    size = 0
    for body, body_size in pieces:
        if run and size + body_size > limit:
            parts.append(run[0] if len(run) == 1 else b",".join(run))
            run, size = [], 0
        run.append(body)
        size += body_size
    if run:
        parts.append(run[0] if len(run) == 1 else b",".join(run))
    return parts


class EncodedCells(CellMap):
    """A `CellMap` that also holds each cell's JSON, in chunks of at most `PART_BYTES`.

    `apply` only marks a cell stale (a write costs no encoding); `refresh` encodes stale
    cells and joins the chunks they changed, a bounded number per call, so the caller
    can yield to the loop between slices; `parts` then returns the snapshot, cached
    until the next winning op.
    """

    __slots__ = ("_chunk_of", "_chunks", "_dirty", "_limit", "_parts", "_stale", "_tail")

    def __init__(self, ops: Iterable[CellOp] = (), limit: int = PART_BYTES) -> None:
        self._limit = limit
        self._stale: dict[Coord, None] = {}
        self._chunk_of: dict[Coord, _Chunk] = {}
        self._tail = _Chunk()
        self._chunks: list[_Chunk] = [self._tail]
        self._parts: list[bytes] | None = None
        self._dirty: dict[int, _Chunk] = {}
        """Chunks whose body must be joined again, by id."""
        super().__init__(ops)

    def apply(self, op: CellOp) -> bool:
        if not super().apply(op):
            return False
        self._stale[(op.x, op.y)] = None
        self._parts = None
        return True

    @property
    def stale(self) -> int:
        """Cells changed since they were last encoded."""
        return len(self._stale)

    @property
    def unjoined(self) -> int:
        """Chunks whose body must be joined again before the next snapshot."""
        return len(self._dirty)

    def refresh(self, limit: int | None = None, chunks: int | None = None) -> int:
        """Encode up to `limit` stale cells, then join up to `chunks` chunk bodies (all
        if None); return how many cells were encoded."""
        done = 0
        while self._stale and (limit is None or done < limit):
            key = next(iter(self._stale))
            del self._stale[key]
            op = self.get(*key)
            assert op is not None
            self._store(key, encode_cell(op))
            done += 1
        joined = 0
        while self._dirty and (chunks is None or joined < chunks):
            self._dirty.popitem()[1].joined()
            joined += 1
        return done

    def _store(self, key: Coord, fragment: bytes) -> None:
        chunk = self._chunk_of.get(key)
        if chunk is not None:
            old = chunk.cells[key]
            chunk.body = None
            self._dirty[id(chunk)] = chunk
            if chunk.size - len(old) + len(fragment) <= self._limit:
                chunk.cells[key] = fragment
                chunk.size += len(fragment) - len(old)
                return
            # Grown past its chunk's room: move it to the tail (order is free).
            del chunk.cells[key]
            chunk.size -= len(old) + 1
        tail = self._tail
        if tail.cells and tail.size + len(fragment) + 1 > self._limit:
            tail = self._tail = _Chunk()
            self._chunks.append(tail)
        tail.cells[key] = fragment
        tail.size += len(fragment) + 1
        tail.body = None
        self._dirty[id(tail)] = tail
        self._chunk_of[key] = tail

    def fragment(self, x: int, y: int) -> bytes:
        """The encoded cell (after `refresh`)."""
        return self._chunk_of[(x, y)].cells[(x, y)]

    def parts(self) -> list[bytes]:
        """Every cell, as comma-joined JSON bodies of at most the part limit (after
        `refresh`); small neighbouring chunks are packed together."""
        assert not self._stale, "refresh() first"
        if self._parts is None:
            self._chunks = [c for c in self._chunks if c.cells or c is self._tail]
            self._parts = _pack(
                ((chunk.joined(), chunk.size) for chunk in self._chunks if chunk.cells),
                self._limit,
            )
        return self._parts

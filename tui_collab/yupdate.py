"""Reading, checking and splitting Yjs v1 updates, without applying them.

The notes document travels as Yjs updates (the binary format of `Y.encodeStateAsUpdate`,
"update format v1"). The server refuses a bad update *before* it touches the shared
document, so it reads the update here: every struct's id, parent and content, and the
delete set. What the notes accept is plain text under the root `Text` named "notes":
string and deleted content only (no embeds, formats, maps or nested types), and no
control characters other than newline and tab. A client splits an update larger than
the per-update limit into several valid updates with `split_update`: whole structs are
copied byte for byte, and one string item too long for a piece is cut in two, as Yjs
itself splits items (the right half's left origin is the left half's last character).

Nothing here does I/O; the server and the client library share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

NOTES_ROOT: Final = "notes"
"""The name of the root `Text` that holds a board's notes."""

EMPTY_UPDATE: Final = b"\x00\x00"
"""An update with no structs and an empty delete set."""

_CONTENT_GC: Final = 0
_CONTENT_DELETED: Final = 1
_CONTENT_STRING: Final = 4
_CONTENT_SKIP: Final = 10
_CONTENT_NAMES: Final = {
    2: "JSON",
    3: "binary",
    5: "an embed",
    6: "formatting",
    7: "a nested type",
    8: "an Any value",
    9: "a sub-document",
}
_BIT8: Final = 0x80  # the item has a left origin
_BIT7: Final = 0x40  # the item has a right origin
_BIT6: Final = 0x20  # the item has a parent sub key (a map entry)
_BITS5: Final = 0x1F

NOTES_REFUSED: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Characters the notes may not hold: C0 controls but tab and newline, DEL and C1."""


class UpdateError(ValueError):
    """The bytes are not a Yjs v1 update the notes accept; the message says why."""


@dataclass(slots=True)
class Struct:
    """One struct of an update: its place in the bytes and what it holds."""

    clock: int
    length: int
    """In clock units (UTF-16 code units for strings)."""
    start: int
    end: int
    """The struct's bytes are `update[start:end]`."""
    kind: int
    origin: tuple[int, int] | None = None
    right_origin: tuple[int, int] | None = None
    text: str | None = None
    """The inserted text, for string content."""
    root: str | None = None
    """The root type's name, when the struct names its parent."""


@dataclass(slots=True)
class ParsedUpdate:
    clients: list[tuple[int, list[Struct]]] = field(default_factory=list)
    delete_set: list[tuple[int, list[tuple[int, int]]]] = field(default_factory=list)
    ds_start: int = 0
    """Where the delete set begins in the bytes."""

    @property
    def inserted_bytes(self) -> int:
        """UTF-8 bytes of text the update inserts (duplicates of known text included)."""
        return self.new_bytes({})

    def new_bytes(self, have: dict[int, int]) -> int:
        """UTF-8 bytes of text a document at state vector `have` does not hold yet (a
        string only partly known counts whole)."""
        return sum(
            len(s.text.encode("utf-8", "surrogatepass"))
            for client, structs in self.clients
            for s in structs
            if s.text is not None and s.clock + s.length > have.get(client, 0)
        )


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise UpdateError("update ends in the middle of a struct")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uint(self) -> int:
        value = 0
        shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise UpdateError("update holds a number longer than 64 bits")

    def raw(self, size: int) -> bytes:
        if size > len(self.data) - self.pos:
            raise UpdateError("update ends in the middle of a string")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def string(self) -> str:
        try:
            return self.raw(self.uint()).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise UpdateError("update holds text that is not UTF-8") from None

    def ident(self) -> tuple[int, int]:
        return self.uint(), self.uint()


def utf16_length(text: str) -> int:
    """A string's length as Yjs counts it (and as clocks advance): UTF-16 code units."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def parse_update(data: bytes) -> ParsedUpdate:
    """Read a whole v1 update; `UpdateError` if it is not one or holds what notes refuse."""
    reader = _Reader(data)
    parsed = ParsedUpdate()
    for _ in range(reader.uint()):
        count = reader.uint()
        client = reader.uint()
        clock = reader.uint()
        structs: list[Struct] = []
        for _ in range(count):
            struct = _read_struct(reader, clock)
            structs.append(struct)
            clock += struct.length
        parsed.clients.append((client, structs))
    parsed.ds_start = reader.pos
    for _ in range(reader.uint()):
        client = reader.uint()
        ranges = [(reader.uint(), reader.uint()) for _ in range(reader.uint())]
        parsed.delete_set.append((client, ranges))
    if reader.pos != len(data):
        raise UpdateError(f"update has {len(data) - reader.pos} bytes after its end")
    return parsed


def _read_struct(reader: _Reader, clock: int) -> Struct:
    start = reader.pos
    info = reader.byte()
    kind = info & _BITS5
    if kind in (_CONTENT_GC, _CONTENT_SKIP):
        return Struct(clock, reader.uint(), start, reader.pos, kind)
    struct = Struct(clock, 0, start, 0, kind)
    if info & _BIT8:
        struct.origin = reader.ident()
    if info & _BIT7:
        struct.right_origin = reader.ident()
    if not info & (_BIT8 | _BIT7):
        if reader.uint() == 1:
            struct.root = reader.string()
            if struct.root != NOTES_ROOT:
                raise UpdateError(f"notes hold only the root text {NOTES_ROOT!r}")
        else:
            raise UpdateError("notes hold no nested types")
        if info & _BIT6:
            raise UpdateError("notes hold no map entries")
    if kind == _CONTENT_DELETED:
        struct.length = reader.uint()
    elif kind == _CONTENT_STRING:
        struct.text = reader.string()
        struct.length = utf16_length(struct.text)
    else:
        what = _CONTENT_NAMES.get(kind, f"content of kind {kind}")
        raise UpdateError(f"notes hold plain text only, not {what}")
    if struct.length == 0:
        raise UpdateError("update holds an empty struct")
    struct.end = reader.pos
    return struct


def is_panic(exc: BaseException) -> bool:
    """Whether `exc` is a Rust panic inside Yrs, which pyo3 raises as a `BaseException`
    (`pyo3_runtime.PanicException`, not importable): callers catch it around Yrs calls
    on untrusted updates, as they catch `ValueError`, and re-raise everything else."""
    return type(exc).__name__ == "PanicException"


def text_problem(text: str) -> str | None:
    """Why the notes would refuse `text`, in words; None when it is fine."""
    found = NOTES_REFUSED.search(text)
    if found is None:
        return None
    return f"contains the control character U+{ord(found.group()):04X}, which notes cannot hold"


def check_notes_update(data: bytes) -> ParsedUpdate:
    """Parse and check an update for the notes; `UpdateError` says what is wrong."""
    parsed = parse_update(data)
    for _, structs in parsed.clients:
        for struct in structs:
            if struct.text is not None:
                problem = text_problem(struct.text)
                if problem is not None:
                    raise UpdateError(f"inserted text {problem}")
    return parsed


# --- splitting ----------------------------------------------------------------------


def _uint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(text: str) -> bytes:
    encoded = text.encode("utf-8", "surrogatepass")
    return _uint(len(encoded)) + encoded


def _string_item(
    text: str, origin: tuple[int, int] | None, right: tuple[int, int] | None, root: str | None
) -> bytes:
    info = _CONTENT_STRING | (_BIT8 if origin else 0) | (_BIT7 if right else 0)
    out = bytes([info])
    if origin:
        out += _uint(origin[0]) + _uint(origin[1])
    if right:
        out += _uint(right[0]) + _uint(right[1])
    if not origin and not right:
        out += _uint(1) + _string(root or NOTES_ROOT)
    return out + _string(text)


def _cut(text: str, units: int) -> int:
    """The index in `text` of at most `units` UTF-16 units, never inside a surrogate pair;
    at least one character."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return max(1, index)
    return len(text)


def _pieces_of(client: int, struct: Struct, data: bytes, budget: int) -> list[tuple[int, bytes]]:
    """The struct as (clock, bytes) pieces of at most about `budget` bytes each."""
    raw = data[struct.start : struct.end]
    if len(raw) <= budget or struct.text is None:
        return [(struct.clock, raw)]
    pieces = []
    text, clock = struct.text, struct.clock
    origin, first = struct.origin, True
    while text:
        # UTF-8 takes at most 4 bytes a character; leave room for ids and lengths.
        take = _cut(text, max(1, (budget - 40) // 4))
        head, text = text[:take], text[take:]
        root = struct.root if first else None
        pieces.append((clock, _string_item(head, origin, struct.right_origin, root)))
        clock += utf16_length(head)
        origin, first = (client, clock - 1), False
    return pieces


def _encode_section(runs: list[tuple[int, int, list[bytes]]]) -> bytes:
    out = _uint(len(runs))
    for client, clock, structs in runs:
        out += _uint(len(structs)) + _uint(client) + _uint(clock) + b"".join(structs)
    return out


def _encode_delete_set(entries: list[tuple[int, list[tuple[int, int]]]]) -> bytes:
    out = _uint(len(entries))
    for client, ranges in entries:
        out += _uint(client) + _uint(len(ranges))
        for clock, length in ranges:
            out += _uint(clock) + _uint(length)
    return out


def split_update(data: bytes, max_bytes: int) -> list[bytes]:
    """Cut an update into updates of at most `max_bytes` each that, applied in order,
    do what it does; an update that fits is returned as it is.

    Pieces carry consecutive structs of one client at a time; the delete set follows in
    pieces of its own. Raises `UpdateError` for bytes that are not an update.
    """
    if len(data) <= max_bytes:
        return [data]
    if max_bytes < 128:
        raise ValueError("pieces need at least 128 bytes")
    parsed = parse_update(data)
    budget = max_bytes - 64  # headers: counts, client ids and clocks
    updates: list[bytes] = []
    runs: list[tuple[int, int, list[bytes]]] = []
    size = 0

    def flush() -> None:
        nonlocal runs, size
        if runs:
            updates.append(_encode_section(runs) + EMPTY_UPDATE[1:])
        runs, size = [], 0

    for client, structs in parsed.clients:
        for struct in structs:
            for clock, raw in _pieces_of(client, struct, data, budget):
                if size + len(raw) > budget:
                    flush()
                if runs and runs[-1][0] == client:
                    runs[-1][2].append(raw)
                else:
                    runs.append((client, clock, [raw]))
                    size += 32  # the run's count, client id and clock
                size += len(raw)
    flush()
    entries: list[tuple[int, list[tuple[int, int]]]] = []
    size = 0
    for client, ranges in parsed.delete_set:
        for clock, length in ranges:
            if size + 24 > budget and entries:
                updates.append(b"\x00" + _encode_delete_set(entries))
                entries, size = [], 0
            if entries and entries[-1][0] == client:
                entries[-1][1].append((clock, length))
            else:
                entries.append((client, [(clock, length)]))
                size += 12
            size += 24
    if entries:
        updates.append(b"\x00" + _encode_delete_set(entries))
    return updates or [EMPTY_UPDATE]


# --- causal order -------------------------------------------------------------------


def state_vector(data: bytes) -> dict[int, int]:
    """A Yjs state vector (`encodeStateVector`) as client id -> next clock."""
    reader = _Reader(data)
    vector = {}
    for _ in range(reader.uint()):
        client = reader.uint()
        vector[client] = reader.uint()
    if reader.pos != len(data):
        raise UpdateError("state vector has bytes after its end")
    return vector


def ready(parsed: ParsedUpdate, have: dict[int, int]) -> bool:
    """Whether a document at state vector `have` holds everything `parsed` builds on.

    Yjs keeps an update that arrives before one it depends on "pending" until that one
    comes; Yrs does not always integrate such pending updates later, so replicas apply
    an update only once this holds, and hold it back until then (`CausalQueue`).
    """
    after = dict(have)
    for client, structs in parsed.clients:
        if not structs:
            continue
        if structs[0].clock > have.get(client, 0):
            return False  # a gap before the first struct
        for struct in structs:
            if struct.kind == _CONTENT_SKIP and struct.clock + struct.length > have.get(client, 0):
                return False
        last = structs[-1]
        after[client] = max(after.get(client, 0), last.clock + last.length)
    for _, structs in parsed.clients:
        for struct in structs:
            for dependency in (struct.origin, struct.right_origin):
                if dependency is not None and dependency[1] >= after.get(dependency[0], 0):
                    return False
    for client, ranges in parsed.delete_set:
        for clock, length in ranges:
            if clock + length > after.get(client, 0):
                return False
    return True


@dataclass(slots=True)
class CausalQueue:
    """Updates held back until what they build on has been applied (see `ready`)."""

    held: list[tuple[bytes, ParsedUpdate, object]] = field(default_factory=list)

    @property
    def held_bytes(self) -> int:
        """The size of what is held: a cap on a document must count it too, or updates
        that never become ready would escape it."""
        return sum(len(update) for update, _, _ in self.held)

    def offer(
        self, update: bytes, tag: object, state: bytes, parsed: ParsedUpdate | None = None
    ) -> list[tuple[bytes, object]]:
        """Take `update` (with a caller's `tag`); return what can be applied now, in order:
        it and every held update it made ready. `state` is the document's state vector;
        the caller applies every returned update before its next call."""
        self.held.append((update, parse_update(update) if parsed is None else parsed, tag))
        return self.release(state_vector(state))

    def release(self, have: dict[int, int]) -> list[tuple[bytes, object]]:
        out: list[tuple[bytes, object]] = []
        progress = True
        while progress and self.held:
            progress = False
            for entry in list(self.held):
                update, parsed, tag = entry
                if ready(parsed, have):
                    self.held.remove(entry)
                    out.append((update, tag))
                    for client, structs in parsed.clients:
                        if structs:
                            last = structs[-1]
                            have[client] = max(have.get(client, 0), last.clock + last.length)
                    progress = True
        return out

"""The wire protocol, version 1: every message as a pydantic model.

This module is the single source of truth for what may cross the socket. The server and
every Python client decode with the same adapters, so a frame the server accepts is one a
client can build, and every bound of the protocol (coordinates, lengths, control
characters) is enforced here rather than scattered through handlers. Nothing here does
I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import from_json

PROTOCOL_VERSION: Final = 1

MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_CELL_CHARS: Final = 256
MAX_BOARD_WIDTH: Final = 256
MAX_BOARD_HEIGHT: Final = 4096
MAX_CLOCK: Final = 2**62
"""Clocks must fit a signed 64-bit SQLite integer with room for the per-board bound."""
CLOCK_AHEAD_LIMIT: Final = 100_000
"""A clock may run at most this far ahead of the board's highest clock (checked by the server)."""
MAX_TOKEN_CHARS: Final = 8192
MAX_BATCH_OPS: Final = 1_000
"""Ops one `cells.set` may carry: a pasted or imported block lands as one request."""
DEFAULT_COLUMN_WIDTH: Final = 10
MIN_COLUMN_WIDTH: Final = 3
MAX_COLUMN_WIDTH: Final = 64
"""Column widths a board may set, in terminal cells (the default is `DEFAULT_COLUMN_WIDTH`)."""
HISTORY_PER_CELL: Final = 50
"""Applied ops a store keeps per cell, newest first, for `cell.history`."""
NOTES_MAX_BYTES: Final = 256 * 1024
"""A board's notes text at most, in UTF-8 bytes: about 5,000 lines of markdown, far more
than people read together, and small enough that a cold open is one fast frame."""
NOTES_UPDATE_MAX_BYTES: Final = 32 * 1024
"""One `notes.update` at most, decoded: its base64 (43,692 characters) and the frame
around it stay within `MAX_MESSAGE_BYTES`. Clients split larger updates."""
MAX_STICKY_CHARS: Final = 256
"""A caret end's base64 relative position at most (a real one is under 40 characters)."""

_CONTROL = r"\x00-\x1f\x7f-\x9f"
"""C0, DEL and C1 characters: they could drive another user's terminal."""
_BIDI = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
"""Unicode's Bidi_Control characters: embeddings, overrides and isolates (U+202A-U+202E,
U+2066-U+2069) and the marks ALM, LRM, RLM. They reorder what is drawn after them, so
"txt.exe" can be shown for "exe.txt"."""
_INVISIBLE = r"\u200b\u2060\ufeff"
"""Zero-width space, word joiner and zero-width no-break space (BOM): nothing visible."""
_JOINERS = r"\u200c\u200d"
"""Zero-width non-joiner and joiner: invisible, but real text needs them (emoji
sequences such as woman + ZWJ + laptop, Persian and Indic spelling)."""
_SEPARATORS = r"\u2028\u2029"
"""Line and paragraph separators: a line break in all but name."""

_NO_CONTROL = rf"^[^{_CONTROL}]*$"
"""Text the server sends as it was stored: no control characters. Text stored before
the stricter rules below is still sent; anything new is held to those rules."""
_PLAIN = rf"^[^{_CONTROL}{_BIDI}{_INVISIBLE}{_JOINERS}{_SEPARATORS}]*$"
"""Names, titles, details and ids: nothing invisible or reordering, so what is shown
is what it is (no spoofed names)."""
_CELL_TEXT = rf"^[^{_CONTROL}{_BIDI}{_INVISIBLE}{_SEPARATORS}]*$"
"""Cell values: as plain text, but the two joiners are allowed (see `_JOINERS`)."""
_CONTROL_RE = re.compile(rf"[{_CONTROL}]")
_REFUSED_RE = re.compile(rf"[{_CONTROL}{_BIDI}{_INVISIBLE}{_JOINERS}{_SEPARATORS}]")
CELL_REFUSED: Final = re.compile(rf"[{_CONTROL}{_BIDI}{_INVISIBLE}{_SEPARATORS}]")
"""Every character a cell value may not hold (an editor strips them from a paste)."""

Identifier = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
]
"""User, team, board and client ids: safe to print, to log and to use as keys."""
OpId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")]
MessageId = Annotated[str, Field(min_length=1, max_length=64, pattern=_PLAIN)]
DisplayName = Annotated[str, Field(min_length=1, max_length=64, pattern=_PLAIN)]
Title = Annotated[str, Field(min_length=1, max_length=80, pattern=_PLAIN)]
Detail = Annotated[str, Field(max_length=80, pattern=_PLAIN)]
CellValue = Annotated[str, Field(max_length=MAX_CELL_CHARS, pattern=_CELL_TEXT)]
ClientName = Annotated[str, Field(max_length=64, pattern=_PLAIN)]
# What the server sends back from its store: text accepted before the rules above were
# tightened is still delivered (only control characters were ever refused).
StoredName = Annotated[str, Field(min_length=1, max_length=64, pattern=_NO_CONTROL)]
StoredTitle = Annotated[str, Field(min_length=1, max_length=80, pattern=_NO_CONTROL)]
StoredCellValue = Annotated[str, Field(max_length=MAX_CELL_CHARS, pattern=_NO_CONTROL)]
Token = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_CHARS)]
Base64 = Annotated[str, Field(max_length=MAX_MESSAGE_BYTES, pattern=r"^[A-Za-z0-9+/]*={0,2}$")]
"""Binary data (a Yjs update or state vector) as standard base64 with padding."""
StickyIndex = Annotated[str, Field(max_length=MAX_STICKY_CHARS, pattern=r"^[A-Za-z0-9+/]*={0,2}$")]
"""A Yjs relative position (`encodeRelativePosition`, pycrdt `StickyIndex.encode()`)."""
Column = Annotated[int, Field(ge=0, lt=MAX_BOARD_WIDTH)]
Row = Annotated[int, Field(ge=0, lt=MAX_BOARD_HEIGHT)]
Clock = Annotated[int, Field(ge=1, le=MAX_CLOCK)]
Version = Annotated[int, Field(ge=0, le=2**63 - 1)]

Status = Literal["online", "away", "busy"]
PresenceStatus = Literal["online", "away", "busy", "offline"]
ActivityKind = Literal["viewing", "editing", "idle", "running_automation", "reviewing"]


class ErrorCode(StrEnum):
    """Every error code a server may send; clients switch on these, never on messages."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    UNSUPPORTED_VERSION = "unsupported_version"
    BOARD_FULL = "board_full"
    QUOTA_EXCEEDED = "quota_exceeded"
    INTERNAL = "internal"


class CloseCode:
    """WebSocket close codes with a protocol meaning."""

    GOING_AWAY: Final = 1001
    POLICY_VIOLATION: Final = 1008
    MESSAGE_TOO_BIG: Final = 1009
    TRY_AGAIN_LATER: Final = 1013
    AUTH_FAILED: Final = 4001
    UNSUPPORTED_VERSION: Final = 4002
    RATE_LIMITED: Final = 4029


class ProtocolError(Exception):
    """A frame or request the protocol refuses; becomes one `error` message on the wire."""

    def __init__(self, code: ErrorCode, message: str, re: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.re = re


class _Message(BaseModel):
    # Unknown fields are ignored for forward compatibility; types are never coerced
    # ("1" is not 1), so a client bug shows up as an error instead of a surprise.
    model_config = ConfigDict(extra="ignore", strict=True)


class _Request(_Message):
    id: MessageId | None = None


class Activity(_Message):
    kind: ActivityKind
    board: Identifier | None = None
    detail: Detail | None = None


# --- client -> server ---------------------------------------------------------------


class Hello(_Request):
    type: Literal["hello"] = "hello"
    v: Annotated[int, Field(ge=0, le=2**31)]
    token: Token | None = None
    client: ClientName | None = None
    client_id: Identifier | None = None
    user: Identifier | None = None
    team: Identifier | None = None
    name: DisplayName | None = None


class PresenceSet(_Request):
    type: Literal["presence.set"] = "presence.set"
    status: Status | None = None
    activity: Activity | None = None


class PresenceQuery(_Request):
    type: Literal["presence.query"] = "presence.query"
    user: Identifier | None = None


class BoardCreate(_Request):
    type: Literal["board.create"] = "board.create"
    board: Identifier | None = None
    title: Title
    width: Annotated[int, Field(ge=1, le=MAX_BOARD_WIDTH)]
    height: Annotated[int, Field(ge=1, le=MAX_BOARD_HEIGHT)]


class ColumnWidth(_Message):
    """One column's width; a board lists only columns not at `DEFAULT_COLUMN_WIDTH`."""

    x: Column
    width: Annotated[int, Field(ge=MIN_COLUMN_WIDTH, le=MAX_COLUMN_WIDTH)]


class BoardUpdate(_Request):
    """Change a board's title and/or some column widths (merged: other columns keep theirs)."""

    type: Literal["board.update"] = "board.update"
    board: Identifier
    title: Title | None = None
    widths: Annotated[list[ColumnWidth], Field(max_length=MAX_BOARD_WIDTH)] | None = None


class BoardJoin(_Request):
    type: Literal["board.join"] = "board.join"
    board: Identifier
    since: Version | None = None
    epoch: Identifier | None = None


class BoardLeave(_Request):
    type: Literal["board.leave"] = "board.leave"
    board: Identifier


class CursorMove(_Request):
    type: Literal["cursor.move"] = "cursor.move"
    board: Identifier
    x: Column
    y: Row


class CellSet(_Request):
    type: Literal["cell.set"] = "cell.set"
    board: Identifier
    x: Column
    y: Row
    value: CellValue
    op: OpId
    clock: Clock


class CellEdit(_Message):
    """One op of a `cells.set`: a `cell.set` without its board."""

    x: Column
    y: Row
    value: CellValue
    op: OpId
    clock: Clock


class CellsSet(_Request):
    """Up to `MAX_BATCH_OPS` ops on one board: one request, one commit, one event.

    Checked whole before anything is applied: one bad op refuses the batch. Replies
    cite `id` (required here), and the ack carries one result per op, in order.
    """

    type: Literal["cells.set"] = "cells.set"
    id: MessageId
    board: Identifier
    ops: Annotated[list[CellEdit], Field(min_length=1, max_length=MAX_BATCH_OPS)]


class CellHistoryQuery(_Request):
    type: Literal["cell.history"] = "cell.history"
    board: Identifier
    x: Column
    y: Row


class TypingSet(_Request):
    type: Literal["typing"] = "typing"
    board: Identifier
    x: Column
    y: Row
    active: bool


class AuthRefresh(_Request):
    type: Literal["auth.refresh"] = "auth.refresh"
    token: Token


class NotesOpen(_Request):
    """Subscribe to a joined board's notes; `sv` is the client's Yjs state vector."""

    type: Literal["notes.open"] = "notes.open"
    board: Identifier
    sv: Base64


class NotesUpdate(_Request):
    """One Yjs v1 update to the board's notes; acked once stored."""

    type: Literal["notes.update"] = "notes.update"
    id: MessageId
    board: Identifier
    update: Base64


class NotesCaret(_Request):
    """The sender's caret (`head`) and selection start (`anchor`); null: no caret."""

    type: Literal["notes.caret"] = "notes.caret"
    board: Identifier
    anchor: StickyIndex | None = None
    head: StickyIndex | None = None


class NotesClose(_Request):
    type: Literal["notes.close"] = "notes.close"
    board: Identifier


ClientMessage: TypeAlias = Annotated[
    Hello
    | PresenceSet
    | PresenceQuery
    | BoardCreate
    | BoardUpdate
    | BoardJoin
    | BoardLeave
    | CursorMove
    | CellSet
    | CellsSet
    | CellHistoryQuery
    | TypingSet
    | AuthRefresh
    | NotesOpen
    | NotesUpdate
    | NotesCaret
    | NotesClose,
    Field(discriminator="type"),
]

# --- server -> client ---------------------------------------------------------------


class UserRef(_Message):
    id: Identifier
    name: StoredName


class ServerInfo(_Message):
    node: str
    version: str
    epoch: str


class Limits(_Message):
    max_message_bytes: int = MAX_MESSAGE_BYTES
    rate_per_s: int = 100
    burst: int = 200
    cell_ops_per_s: int = 2_000
    """Ops of `cells.set` one connection may send a second, on top of the message rate:
    a batch costs one message but its ops are the work."""
    cell_ops_burst: int = 5_000
    max_cell_chars: int = MAX_CELL_CHARS
    max_connections_per_user: int = 8
    max_board_participants: int = 256
    max_boards_per_team: int = 1_000
    max_cells_per_board: int = 10_000
    notes_max_bytes: int = NOTES_MAX_BYTES
    notes_update_max_bytes: int = NOTES_UPDATE_MAX_BYTES


class BoardMeta(_Message):
    id: Identifier
    title: StoredTitle
    width: int
    height: int
    created_by: Identifier
    version: Version = 0
    widths: list[ColumnWidth] | None = None
    """Columns not at `DEFAULT_COLUMN_WIDTH`, by `x`; absent when every column is."""


class Presence(_Message):
    type: Literal["presence"] = "presence"
    user: Identifier
    name: StoredName
    status: PresenceStatus
    activity: Activity | None = None
    last_seen: datetime | None = None
    connections: int = 0


class Welcome(_Message):
    type: Literal["welcome"] = "welcome"
    v: int = PROTOCOL_VERSION
    session: str
    client_id: Identifier
    user: UserRef
    team: Identifier
    server: ServerInfo
    limits: Limits
    members: list[Presence]
    boards: list[BoardMeta]


class PresenceBatch(_Message):
    """The presence changes of one 50 ms window of a team: each user's latest view, once.

    A lone change goes out as a plain `presence` frame; an entry may restate what a
    `welcome` already showed (a client applies each as a set).
    """

    type: Literal["presence.batch"] = "presence.batch"
    members: list[Presence]


class PresenceSnapshot(_Message):
    type: Literal["presence.snapshot"] = "presence.snapshot"
    re: MessageId | None = None
    members: list[Presence]


class BoardCreated(_Message):
    type: Literal["board.created"] = "board.created"
    board: BoardMeta


class BoardUpdated(_Message):
    type: Literal["board.updated"] = "board.updated"
    board: BoardMeta


class Cell(_Message):
    x: Column
    y: Row
    value: StoredCellValue
    clock: Clock
    client: Identifier
    by: Identifier
    at: datetime | None = None
    """Server time the op was applied; absent for ops stored before it was recorded."""


class ChangedCell(Cell):
    version: Version


class Participant(_Message):
    user: Identifier
    name: StoredName
    color: str


class CursorPosition(_Message):
    user: Identifier
    x: Column
    y: Row


class BoardState(_Message):
    """One part of a join's snapshot; `parts` > 1 means more follow, all of `version`.

    Part 0 carries `complete`, the participants and the cursors; parts 1.. carry only
    more cells (`complete: false`, empty lists). A join is done at part `parts - 1`.
    """

    type: Literal["board.state"] = "board.state"
    re: MessageId | None = None
    board: BoardMeta
    epoch: str
    version: Version
    complete: bool
    part: Annotated[int, Field(ge=0)] = 0
    parts: Annotated[int, Field(ge=1)] = 1
    cells: list[Cell]
    participants: list[Participant]
    cursors: list[CursorPosition]

    @property
    def last(self) -> bool:
        """Whether this part completes the snapshot."""
        return self.part >= self.parts - 1


class ParticipantJoined(_Message):
    type: Literal["participant.joined"] = "participant.joined"
    board: Identifier
    user: Identifier
    name: StoredName
    color: str


class ParticipantLeft(_Message):
    type: Literal["participant.left"] = "participant.left"
    board: Identifier
    user: Identifier
    name: StoredName
    color: str


class ParticipantsChanged(_Message):
    """The participant changes of one 50 ms window of a board, each user at most once per
    list: apply every `left`, then every `joined` (a user in both left and came back).

    A lone change goes out as `participant.joined` or `participant.left`; an entry may
    restate what a `board.state` already showed.
    """

    type: Literal["participants"] = "participants"
    board: Identifier
    joined: list[Participant]
    left: list[Participant]


class Cursors(_Message):
    type: Literal["cursors"] = "cursors"
    board: Identifier
    cursors: list[CursorPosition]


class CellChanged(_Message):
    type: Literal["cell.changed"] = "cell.changed"
    board: Identifier
    x: Column
    y: Row
    value: StoredCellValue
    clock: Clock
    client: Identifier
    by: Identifier
    version: Version
    at: datetime | None = None


class CellsChanged(_Message):
    """The ops a board took within one 50 ms window (every op of a `cells.set` that won
    its cell among them, never split), in the order taken; `version` is the highest."""

    type: Literal["cells.changed"] = "cells.changed"
    board: Identifier
    version: Version
    cells: list[ChangedCell]


class HistoryEntry(_Message):
    value: StoredCellValue
    clock: Clock
    client: Identifier
    by: Identifier
    version: Version
    at: datetime | None = None


class CellHistory(_Message):
    """The reply to `cell.history`: the cell's applied ops, newest first (at most
    `HISTORY_PER_CELL`)."""

    type: Literal["cell.history"] = "cell.history"
    re: MessageId | None = None
    board: Identifier
    x: Column
    y: Row
    entries: list[HistoryEntry]


class Typing(_Message):
    type: Literal["typing"] = "typing"
    board: Identifier
    user: Identifier
    x: Column
    y: Row
    active: bool


class OpResult(_Message):
    """One op of a `cells.set`: whether it won, and the board version after it."""

    version: Version
    applied: bool


class Ack(_Message):
    type: Literal["ack"] = "ack"
    re: MessageId
    version: Version | None = None
    applied: bool | None = None
    ops: list[OpResult] | None = None
    """For `cells.set`: one result per op, in the request's order."""


class NoteCaret(_Message):
    """One user's caret in a board's notes; null ends: they have no caret there now."""

    user: Identifier
    anchor: StickyIndex | None = None
    head: StickyIndex | None = None


class NotesState(_Message):
    """The reply to `notes.open`: what the client lacks, the server's state vector (so
    the client sends what the server lacks) and the others' carets."""

    type: Literal["notes.state"] = "notes.state"
    re: MessageId | None = None
    board: Identifier
    update: str
    sv: str
    carets: list[NoteCaret]


class NotesUpdated(_Message):
    """Another connection's update to notes this connection opened."""

    type: Literal["notes.updated"] = "notes.updated"
    board: Identifier
    update: str
    by: Identifier


class NotesCarets(_Message):
    """The caret changes of one 50 ms window of a board's notes."""

    type: Literal["notes.carets"] = "notes.carets"
    board: Identifier
    carets: list[NoteCaret]


class ErrorMessage(_Message):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    re: MessageId | None = None


ServerMessage: TypeAlias = Annotated[
    Welcome
    | Presence
    | PresenceBatch
    | PresenceSnapshot
    | BoardCreated
    | BoardUpdated
    | BoardState
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantsChanged
    | Cursors
    | CellChanged
    | CellsChanged
    | CellHistory
    | Typing
    | NotesState
    | NotesUpdated
    | NotesCarets
    | Ack
    | ErrorMessage,
    Field(discriminator="type"),
]

CLIENT_ADAPTER: Final[TypeAdapter[ClientMessage]] = TypeAdapter(ClientMessage)
SERVER_ADAPTER: Final[TypeAdapter[ServerMessage]] = TypeAdapter(ServerMessage)


def encode(message: _Message) -> str:
    """Serialize one message to the text of one frame (absent optionals are left out)."""
    return message.model_dump_json(exclude_none=True)


def decode(frame: str | bytes) -> ClientMessage:
    """Parse one client frame or raise `ProtocolError` with the code the protocol names."""
    if isinstance(frame, bytes):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "binary frames are not accepted; send JSON text")
    try:
        return CLIENT_ADAPTER.validate_json(frame)
    except ValidationError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, _describe(exc), _request_id(frame)) from None


def decode_server(frame: str | bytes) -> ServerMessage:
    """Parse one server frame (used by clients); raises `ProtocolError` like `decode`."""
    if isinstance(frame, bytes):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "binary frames are not part of the protocol")
    try:
        return SERVER_ADAPTER.validate_json(frame)
    except ValidationError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, _describe(exc)) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of both directions, for third-party clients."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"tui-collab protocol v{PROTOCOL_VERSION}",
        "client_to_server": CLIENT_ADAPTER.json_schema(),
        "server_to_client": SERVER_ADAPTER.json_schema(),
    }


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, limit: int = 200) -> str:
    """Escape control, bidi, zero-width and separator characters and truncate, so
    untrusted text is safe to echo or log and shows what it really holds."""
    escaped = _REFUSED_RE.sub(_escape, text)
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


_CONTROL_NAMES: Final = {
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a line break",
    "\u2028": "a line separator (U+2028)",
    "\u2029": "a paragraph separator (U+2029)",
}
_BIDI_RE: Final = re.compile(rf"[{_BIDI}]")


def cell_value_problem(value: str, max_chars: int = MAX_CELL_CHARS) -> str | None:
    """Why the protocol would refuse `value` as a cell value, in words; None if it is fine.

    Clients check before sending, so a person is told at the keyboard instead of by a
    `bad_request` after the fact.
    """
    if len(value) > max_chars:
        return f"too long: {len(value)} characters, a cell holds at most {max_chars}"
    found = CELL_REFUSED.search(value)
    if found is not None:
        return f"contains {_char_name(found.group())}, which a cell cannot hold"
    return None


def _char_name(char: str) -> str:
    """A refused character in words, for a person."""
    code = f"U+{ord(char):04X}"
    if char in _CONTROL_NAMES:
        return _CONTROL_NAMES[char]
    if _CONTROL_RE.match(char):
        return f"the control character {code}"
    if _BIDI_RE.match(char):
        return f"a text direction control ({code})"
    return f"an invisible zero-width character ({code})"


IDENTIFIER_ADAPTER: Final[TypeAdapter[str]] = TypeAdapter(Identifier)


def is_identifier(text: object) -> bool:
    """Whether `text` is a valid user, team, board or client id."""
    try:
        IDENTIFIER_ADAPTER.validate_python(text, strict=True)
    except ValidationError:
        return False
    return True


def utc_now() -> datetime:
    return datetime.now(UTC)


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        return "frame is not valid JSON"
    if kind == "union_tag_invalid":
        tag = (first.get("ctx") or {}).get("tag", "")
        return printable(f"unknown message type {tag!r}")
    if kind == "union_tag_not_found":
        return "message has no 'type' field"
    if kind in {"model_type", "model_attributes_type", "dict_type"} and not first["loc"]:
        return "frame must be a JSON object"
    location = ".".join(str(part) for part in first["loc"][1:]) or "message"
    if kind == "string_pattern_mismatch":
        text = exc.errors(include_url=False)[0].get("input")
        # Characters refused everywhere first: a joiner is allowed in a cell value.
        found = None
        if isinstance(text, str):
            found = CELL_REFUSED.search(text) or _REFUSED_RE.search(text)
        if found is not None:
            return f"{location}: contains {_char_name(found.group())}, which is not allowed"
        return f"{location}: contains characters that are not allowed"
    return printable(f"{location}: {first['msg']}")


def _request_id(frame: str) -> str | None:
    """Recover what an error should cite from a frame that failed validation.

    Replies to `cell.set` cite its `op`; every other request cites its `id`.
    """
    try:
        raw = from_json(frame)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    value = raw.get("op") if raw.get("type") == "cell.set" else raw.get("id")
    if isinstance(value, str) and 0 < len(value) <= 64 and not _REFUSED_RE.search(value):
        return value
    return None

"""The Store protocol: what the server needs from persistence, and nothing about how."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from tui_collab.cells import CellOp

SESSION_RETENTION_S: Final = 7 * 24 * 3600
"""How long an ended session's record is kept: a week of "who connected, from which
client, and how it closed" covers an incident noticed a few days late."""
SESSIONS_PER_USER: Final = 200
"""The most session records kept per user, newest first: a few days of an ordinary
user's reconnects, and a bound on what one user can make the store hold (connections
are allowed at 10 a second, which for a week would be millions of records)."""


@dataclass(frozen=True, slots=True)
class SessionRetention:
    """Which session records a store keeps: ended ones for `max_age_s`, and at most
    `per_user` per user (the oldest go first, ended or not)."""

    max_age_s: float = SESSION_RETENTION_S
    per_user: int = SESSIONS_PER_USER

    def __post_init__(self) -> None:
        if self.max_age_s <= 0 or self.per_user < 1:
            raise ValueError("session retention needs a positive age and at least 1 per user")


@dataclass(frozen=True, slots=True)
class PresenceRecord:
    team: str
    user: str
    name: str
    status: str
    activity_json: str | None
    last_seen: datetime | None
    alive_at: datetime | None = None
    """The last moment a node knew the user connected; a crash leaves this as last_seen.
    None when saving keeps the stored value."""


@dataclass(frozen=True, slots=True)
class AliveMark:
    """One user a node still holds (or held until `at`): its heartbeat's store write."""

    team: str
    user: str
    at: datetime


@dataclass(frozen=True, slots=True)
class BoardRecord:
    team: str
    id: str
    title: str
    width: int
    height: int
    created_by: str
    version: int = 0
    widths: tuple[tuple[int, int], ...] = ()
    """(column, width) for columns not at the default width, by column."""


@dataclass(frozen=True, slots=True)
class AppliedOp:
    """The store's verdict on one cell op: whether it won, and the board version after it."""

    applied: bool
    version: int


class Store(Protocol):
    """Durable state. Every write returns only once it is committed."""

    @property
    def epoch(self) -> str:
        """Random id made when the store was created; a new store never reuses one."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def record_user(self, team: str, user: str, name: str) -> None: ...

    async def reset_presence(self) -> None:
        """Mark every stored presence offline (a restart leaves no ghosts).

        A user stored as online was cut off by a crash: their last_seen becomes their
        `alive_at`, the last moment the server knew them connected.
        """
        ...

    async def save_presence(self, record: PresenceRecord) -> None: ...

    async def mark_alive(self, marks: Sequence[AliveMark]) -> None:
        """Set `alive_at` of users already recorded, in one write (the presence heartbeat)."""
        ...

    async def load_presence(self, team: str) -> list[PresenceRecord]: ...

    async def session_started(
        self, session: str, team: str, user: str, client_id: str, at: datetime
    ) -> None: ...

    async def session_ended(self, session: str, at: datetime, close_code: int | None) -> None: ...

    async def create_board(self, board: BoardRecord) -> bool:
        """Insert a board; False when the team already has one with that id."""
        ...

    async def update_board(
        self,
        team: str,
        board: str,
        title: str | None = None,
        widths: Mapping[int, int] | None = None,
    ) -> BoardRecord | None:
        """Set the title and/or merge column widths (a default width removes the entry);
        None when there is no such board."""
        ...

    async def get_board(self, team: str, board: str) -> BoardRecord | None: ...

    async def list_boards(self, team: str) -> list[BoardRecord]: ...

    async def apply_cell_op(self, team: str, board: str, op: CellOp) -> AppliedOp:
        """Merge one op durably under last-writer-wins; bump the version if it won."""
        ...

    async def apply_cell_ops(self, team: str, board: str, ops: Sequence[CellOp]) -> list[AppliedOp]:
        """Merge a batch in order, all in one commit (all or nothing); one result per op."""
        ...

    async def cell_history(self, team: str, board: str, x: int, y: int) -> list[CellOp]:
        """The cell's applied ops with `version` and `at`, newest first; the store keeps at
        least the last `protocol.HISTORY_PER_CELL`."""
        ...

    async def load_cells(self, team: str, board: str, since: int = 0) -> list[CellOp]:
        """The board's cells with a version greater than `since`."""
        ...

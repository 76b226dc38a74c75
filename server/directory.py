"""Each team's boards: read from the store on first use, kept current after."""

from __future__ import annotations

import asyncio

from server.boards import BoardRooms, board_meta
from server.store.base import BoardRecord, Store
from tui_collab.protocol import BoardMeta


class BoardDirectory:
    """The board index per team, shared by every connection of this node."""

    def __init__(self, store: Store, rooms: BoardRooms) -> None:
        self._store = store
        self._rooms = rooms
        self._boards: dict[str, dict[str, BoardRecord]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._remembered: dict[tuple[str, str], int] = {}
        """Per board, how many times its record was replaced: a store read started before
        a replacement must not overwrite it (see `remembered`)."""

    async def team(self, team: str) -> dict[str, BoardRecord]:
        """The team's boards by id, loaded once; the same dict is returned each time."""
        boards = self._boards.get(team)
        if boards is not None:
            return boards
        async with self._locks.setdefault(team, asyncio.Lock()):
            boards = self._boards.get(team)
            if boards is None:
                records = await self._store.list_boards(team)
                boards = self._boards[team] = {r.id: r for r in records}
        return boards

    async def metas(self, team: str) -> list[BoardMeta]:
        """The team's boards as sent in `welcome`: live versions for open rooms."""
        return [self.meta(record) for record in (await self.team(team)).values()]

    def meta(self, record: BoardRecord) -> BoardMeta:
        """The board as announced: with its open room's live version, if it has one."""
        room = self._rooms.get(record.team, record.id)
        return room.meta() if room is not None else board_meta(record)

    def remember(self, record: BoardRecord) -> None:
        """A board was created or renamed (here or on another node): keep the directory,
        and its open room, current."""
        boards = self._boards.get(record.team)
        if boards is not None:
            boards[record.id] = record
        self._rooms.update_record(record)
        key = (record.team, record.id)
        self._remembered[key] = self._remembered.get(key, 0) + 1

    def remembered(self, team: str, board: str) -> int:
        """How many times the board's record was replaced; a reader that finds it moved
        on while its own read was out holds an older record than the one kept."""
        return self._remembered.get((team, board), 0)

    def loaded(self, team: str) -> dict[str, BoardRecord] | None:
        """The team's boards if they were loaded already (no store read)."""
        return self._boards.get(team)

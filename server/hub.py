"""Who is connected, grouped by team, and fan-out that serializes each event once.

Every frame goes out through `websockets.broadcast`, which writes synchronously: the
order in which the server decides things is the order every client sees them, and no
handler ever waits on a slow peer.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection, broadcast

from server.auth import Identity
from tui_collab.protocol import ErrorCode, ErrorMessage, encode


@dataclass(eq=False, slots=True)
class Session:
    """One authenticated connection: its identity, client id and the boards it joined."""

    ws: ServerConnection
    identity: Identity
    client_id: str
    id: str = field(default_factory=lambda: f"s-{secrets.token_hex(8)}")
    boards: set[str] = field(default_factory=set)
    bad_frames: int = 0

    @property
    def team(self) -> str:
        return self.identity.team

    @property
    def user(self) -> str:
        return self.identity.user

    def send(self, frame: str) -> None:
        broadcast((self.ws,), frame)

    def send_error(self, code: ErrorCode, message: str, re: str | None = None) -> None:
        self.send(encode(ErrorMessage(code=code, message=message, re=re)))


class Hub:
    """Sessions by team; a frame for a team never reaches another team's sockets."""

    def __init__(self) -> None:
        self._teams: dict[str, dict[ServerConnection, Session]] = {}

    def add(self, session: Session) -> None:
        self._teams.setdefault(session.team, {})[session.ws] = session

    def remove(self, session: Session) -> None:
        members = self._teams.get(session.team)
        if members is None:
            return
        members.pop(session.ws, None)
        if not members:
            del self._teams[session.team]

    def sessions(self, team: str) -> Iterable[Session]:
        return tuple(self._teams.get(team, {}).values())

    def user_sessions(self, team: str, user: str) -> list[Session]:
        return [s for s in self._teams.get(team, {}).values() if s.user == user]

    def to_team(self, team: str, frame: str) -> None:
        members = self._teams.get(team)
        if members:
            broadcast(members.keys(), frame)

    @property
    def connection_count(self) -> int:
        return sum(len(members) for members in self._teams.values())

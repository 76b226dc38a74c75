"""The server's core, put together without sockets: a real SQLite store in a temporary
directory, recording peers, and sessions that are plain objects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from server.auth import Identity, TokenVerifier
from server.boards import BoardRooms
from server.cluster import LocalCluster
from server.config import ServerConfig
from server.context import ServerContext
from server.directory import BoardDirectory
from server.dispatch import Dispatcher
from server.hub import Hub, Session
from server.limits import FloodGuard, TokenBucket
from server.metrics import Metrics
from server.notes import NotesHub, NotesLimits
from server.peer import Peer
from server.presence import PresenceTracker
from server.store import SQLiteStore
from server.store.notes_sqlite import SQLiteNotes
from server.turns import TurnGate
from tests.unit.doubles import ManualClock, RecordingPeer, RecordingSender
from tui_collab.protocol import BoardState, Limits

SECRET = "s" * 32


class Core:
    """A dispatcher with everything it needs, and helpers to connect recording peers."""

    def __init__(self, data_dir: Path, batch_s: float = 0.0, **settings: Any) -> None:
        """`batch_s`: the presence and participant windows; 0 sends every change at once."""
        self.config = replace(
            ServerConfig(data_dir=data_dir, secret=SECRET, presence_heartbeat_s=0), **settings
        )
        self.clock = ManualClock()
        self.store = SQLiteStore(data_dir)
        self.sender = RecordingSender()
        self.metrics = Metrics()
        self.cluster = LocalCluster("n-test")
        self.hub = Hub(self.sender)
        self.tasks: list[asyncio.Task[Any]] = []
        self.presence = PresenceTracker(
            self.store,
            self.hub,
            self.spawn,
            self.config.offline_grace_s,
            cluster=self.cluster,
            heartbeat_s=0,
            batch_s=batch_s,
        )
        self.rooms = BoardRooms(
            self.store, 0.05, self.sender, self.metrics, self.cluster, roster_interval_s=batch_s
        )
        self.boards = BoardDirectory(self.store, self.rooms)
        self.streamed: list[tuple[Peer, int]] = []
        self.welcomes: dict[str, dict[str, Any]] = {}
        """The last `welcome` each user got."""
        self.ctx = ServerContext(
            config=self.config,
            store=self.store,
            hub=self.hub,
            outbound=self.sender,
            metrics=self.metrics,
            cluster=self.cluster,
            presence=self.presence,
            rooms=self.rooms,
            boards=self.boards,
            verifier=TokenVerifier(SECRET),
            stream=self._stream,
            spawn=self.spawn,
            node="n-test",
            limits=Limits(),
            notes=NotesHub(
                SQLiteNotes(self.store),
                self.sender,
                self.cluster,
                self.spawn,
                0.05,
                NotesLimits(self.config.notes_max_bytes, self.config.notes_update_max_bytes),
            ),
            arrivals=TurnGate(),
        )
        self.dispatcher = Dispatcher(self.ctx)

    async def _stream(
        self, peer: Peer, first: BoardState, bodies: Sequence[bytes], alive: Any
    ) -> int:
        self.streamed.append((peer, len(bodies)))
        return len(bodies) - 1

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.tasks.append(asyncio.ensure_future(coroutine))

    async def __aenter__(self) -> Core:
        await self.store.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.presence.shutdown()
        self.rooms.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.store.close()

    async def connect(self, user: str, team: str = "core") -> tuple[Session, RecordingPeer]:
        """A session as the handshake leaves it: registered, announced, welcomed (the
        `welcome` itself is taken off the peer's frames and checked)."""
        peer = RecordingPeer()
        session = Session(
            ws=peer,
            identity=Identity(user=user, team=team, name=user.title()),
            client_id=f"c-{user}",
            outbound=self.sender,
            metrics=self.metrics,
            bucket=TokenBucket(self.config.rate_per_s, self.config.burst, self.clock),
            flood=FloodGuard(self.config.flood_close_after_s, self.clock),
        )
        await self.store.record_user(team, user, session.identity.name)
        await self.presence.ensure_team(team)
        self.dispatcher.welcome(session, await self.boards.metas(team))
        [welcome] = peer.take()
        assert welcome["type"] == "welcome"
        self.welcomes[user] = welcome
        assert welcome["user"] == {"id": user, "name": user.title()}
        return session, peer

    def disconnect(self, session: Session, clean: bool = True) -> None:
        self.dispatcher.goodbye(session, clean, 1000 if clean else 1006)

    async def send(self, session: Session, message: dict[str, Any] | str) -> None:
        frame = message if isinstance(message, str) else json.dumps(message)
        await self.dispatcher.dispatch(session, frame)

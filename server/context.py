"""What the message handlers and the cluster sync may use: the server's collaborators,
named one by one instead of the server object that owns them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from server.auth import TokenVerifier
from server.boards import BoardRooms
from server.cluster import Cluster
from server.config import ServerConfig
from server.directory import BoardDirectory
from server.hub import Hub
from server.metrics import Metrics
from server.notes import NotesHub
from server.peer import Peer, Sender
from server.presence import PresenceTracker
from server.store.base import Store
from server.turns import TurnGate
from tui_collab.protocol import BoardState, Limits

StreamParts = Callable[[Peer, BoardState, Sequence[bytes], Callable[[], bool]], Awaitable[int]]
"""Send a snapshot's parts after the first to a joiner, paced by how fast it reads;
stop when the callable turns false. Returns how many were sent."""

Spawn = Callable[[Coroutine[Any, Any, Any]], None]
"""Run background work (a store write nobody waits for) and keep it referenced."""


@dataclass(frozen=True, slots=True)
class ServerContext:
    """One server's services, built once by `CollabServer` and never replaced."""

    config: ServerConfig
    store: Store
    hub: Hub
    outbound: Sender
    metrics: Metrics
    cluster: Cluster
    presence: PresenceTracker
    rooms: BoardRooms
    boards: BoardDirectory
    verifier: TokenVerifier
    stream: StreamParts
    spawn: Spawn
    node: str
    """This server process's name in a cluster."""
    limits: Limits
    """The limits `welcome` announces."""
    notes: NotesHub
    """Each board's live notes document."""
    arrivals: TurnGate
    """The share of each loop turn for upgrades, hellos and board joins."""

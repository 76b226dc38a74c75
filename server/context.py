"""What the message handlers and the cluster sync may use: the server's collaborators,
named one by one instead of the server object that owns them."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth import TokenVerifier
from server.boards import BoardRooms
from server.cluster import Cluster
from server.config import ServerConfig
from server.directory import BoardDirectory
from server.hub import Hub
from server.metrics import Metrics
from server.outbound import Outbound
from server.presence import PresenceTracker
from server.store.base import Store


@dataclass(frozen=True, slots=True)
class ServerContext:
    """One server's services, built once by `CollabServer` and never replaced."""

    config: ServerConfig
    store: Store
    hub: Hub
    outbound: Outbound
    metrics: Metrics
    cluster: Cluster
    presence: PresenceTracker
    rooms: BoardRooms
    boards: BoardDirectory
    verifier: TokenVerifier

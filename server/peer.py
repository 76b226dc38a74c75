"""The core's view of a client connection, and of the layer that writes to it.

Sessions, rooms, the hub, presence and the dispatcher talk to a `Peer` through a
`Sender`; neither knows about sockets. The asyncio layer provides both
(`server.connection.CollabConnection` and `server.outbound.Outbound`), and unit tests
provide recording ones, the way `websockets` keeps its protocol apart from its I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Peer(Protocol):
    """One client connection: what to call it, and how to end it."""

    @property
    def address(self) -> str:
        """The client's IP, for audit lines (a trusted proxy's word for it, if any)."""

    def end(self, code: int, reason: str) -> None:
        """Start the close handshake with `code` and `reason`, without waiting for it."""

    def __hash__(self) -> int: ...


class Sender(Protocol):
    """Writes frames to peers (each frame serialized once for all of them)."""

    def send(
        self, targets: Iterable[Peer], frame: str | bytes, *, coalescible: bool = False
    ) -> None:
        """Queue `frame` (text, maybe as UTF-8 bytes) for each open peer in `targets`;
        a `coalescible` frame may be skipped for a peer that is behind."""

    def is_closing(self, peer: Peer) -> bool:
        """Whether `peer` is being closed (slow, or over a limit): work for it is moot."""

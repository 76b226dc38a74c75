"""The server's WebSocket connection: websockets' own, with hooks at open, upgrade and end.

The hooks are where the server keeps counts that must never drift: a count taken when
a socket opens (or a slot reserved during its handshake) is given back in
`connection_lost`, which asyncio calls exactly once for every connection however it
ends (a refused upgrade, a timeout, an exception, a cancelled task, a close).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Protocol

from websockets.asyncio.server import ServerConnection

from server.outbound import close_soon, peer_ip


class ConnectionHooks(Protocol):
    def opened(self, connection: CollabConnection) -> None:
        """A socket was accepted (after TLS, if any); it may be aborted here."""

    def upgraded(self, connection: CollabConnection) -> None:
        """The HTTP phase is over: answered, upgraded or failed."""

    def closed(self, connection: CollabConnection) -> None:
        """The socket is gone; called once, whatever happened before."""


class CollabConnection(ServerConnection):
    """A `ServerConnection` that reports its life to `hooks` and knows its client's IP."""

    hooks: ClassVar[ConnectionHooks | None] = None
    client_ip: str | None = None
    """The client's address as the trusted proxy in front said (`X-Forwarded-For`);
    None when the TCP peer is the client."""
    _in_http_phase: bool = False

    @classmethod
    def with_hooks(cls, hooks: ConnectionHooks) -> type[CollabConnection]:
        """A subclass whose connections report to `hooks` (one per server)."""
        return type("BoundCollabConnection", (cls,), {"hooks": hooks})

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._in_http_phase = True
        if self.hooks is not None:
            self.hooks.opened(self)

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().handshake(*args, **kwargs)
        finally:
            self._end_http_phase()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._end_http_phase()
        if self.hooks is not None:
            self.hooks.closed(self)

    @property
    def address(self) -> str:
        """The client's IP (`server.peer.Peer`)."""
        return peer_ip(self)

    def end(self, code: int, reason: str) -> None:
        """Start the close handshake without waiting for it (`server.peer.Peer`)."""
        close_soon(self, code, reason)

    def _end_http_phase(self) -> None:
        if self._in_http_phase:
            self._in_http_phase = False
            if self.hooks is not None:
                self.hooks.upgraded(self)

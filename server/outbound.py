"""Outbound frames, and what happens to a peer that stops reading them.

Every frame is written synchronously, as `websockets.broadcast` does: the order in
which the server decides things is the order every client sees them, and no handler
ever waits on a slow peer. A frame is serialized once for all its recipients: a
server's frames are not masked, so every peer gets the same bytes, where `broadcast`
builds them again for each peer (12.5 µs a peer against 9.1 for `send`, with 1,000
peers on loopback: `python -m bench.fanout`). The server negotiates no compression; a
peer that had would still read them, as a message whose RSV1 bit is clear is not
compressed (RFC 7692, section 6).

The price of writing synchronously is that nothing pushes back: a client that stops
reading (a suspended terminal) would let its buffer grow without bound.

The bound, per connection, measured as bytes written but not yet taken by the peer
(asyncio's buffer plus, on Linux, the kernel's send queue):

- over `high_water`, coalescible frames (cursors, typing) are skipped for that peer;
  when it drains below a quarter of that it gets the current cursors again;
- over `high_water` for `close_after_s`, or over `hard_cap` at any moment, the peer
  is closed with 1013 and nothing more is written to it. A peer that does not read
  its close frame within `close_grace_s` is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import struct
import termios
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, cast

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from server.audit import SLOW_CONSUMER_CLOSE, audit
from server.metrics import Metrics
from server.peer import Peer
from tui_collab.protocol import CloseCode

logger = logging.getLogger(__name__)

_TIOCOUTQ: Final = getattr(termios, "TIOCOUTQ", None)
_INT: Final = struct.Struct("i")


def peer_address(ws: ServerConnection) -> str:
    """`ip:port` of the peer, for log lines; behind a trusted proxy `client via ip:port`."""
    address = ws.remote_address
    shown = "?"
    if isinstance(address, tuple) and len(address) >= 2:
        shown = f"{address[0]}:{address[1]}"
    forwarded = getattr(ws, "client_ip", None)
    return shown if forwarded is None else f"{forwarded} via {shown}"


def peer_ip(ws: ServerConnection) -> str:
    """The client's IP, for caps and audit lines: what a trusted proxy said it was
    (`server.forwarded`), else the TCP peer's."""
    forwarded = getattr(ws, "client_ip", None)
    return socket_ip(ws) if forwarded is None else str(forwarded)


def socket_ip(ws: ServerConnection) -> str:
    """The TCP peer's IP (a proxy's, if there is one in front)."""
    address = ws.remote_address
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "?"


def unread_bytes(ws: ServerConnection) -> int:
    """Bytes written to this peer that it has not taken yet.

    asyncio's buffer alone hides a stopped reader for a while: the kernel keeps
    accepting data until its own send queue is full. On Linux the queue is read too.
    """
    transport = ws.transport
    if transport is None or transport.is_closing():
        return 0
    pending = transport.get_write_buffer_size()
    if _TIOCOUTQ is None:
        return pending
    sock = transport.get_extra_info("socket")
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:  # closed under us
        return pending
    try:
        queued = _INT.unpack(fcntl.ioctl(fd, _TIOCOUTQ, b"\0" * _INT.size))[0]
    except OSError:
        return pending
    return pending + int(queued)


def text_frame(message: str | bytes) -> bytes:
    """`message` (text, or its UTF-8 bytes) as one unmasked text frame, as a server
    with no extension writes it."""
    data = message.encode() if isinstance(message, str) else message
    return Frame(Opcode.TEXT, data).serialize(mask=False, extensions=())


@dataclass(frozen=True, slots=True)
class BacklogPolicy:
    high_water: int = 256 * 1024
    hard_cap: int = 8 * 1024 * 1024
    close_after_s: float = 5.0
    close_grace_s: float = 10.0
    sweep_interval_s: float = 0.5


@dataclass(eq=False, slots=True)
class _Peer:
    """What the guard knows about one connection."""

    label: dict[str, str] = field(default_factory=dict)
    on_drained: Callable[[], None] | None = None
    shedding: bool = False
    above_since: float | None = None
    written: bool = False
    closing: bool = False


_closing: set[asyncio.Future[None]] = set()
"""Close handshakes started from callbacks; kept referenced until they finish."""


def close_soon(ws: ServerConnection, code: int, reason: str) -> None:
    """Start a close handshake from synchronous code, without waiting for it."""
    task = asyncio.ensure_future(ws.close(code, reason))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


class Outbound:
    """Writes frames to peers and holds each peer's backlog under the policy."""

    def __init__(
        self,
        policy: BacklogPolicy,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.metrics = metrics
        self._clock = clock
        self._peers: dict[ServerConnection, _Peer] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def register(
        self,
        ws: ServerConnection,
        *,
        user: str,
        team: str,
        on_drained: Callable[[], None] | None = None,
    ) -> None:
        """Name a peer for audit lines and say how to refresh it after shedding."""
        peer = self._peer(ws)
        peer.label = {"user": user, "team": team}
        peer.on_drained = on_drained

    def forget(self, ws: ServerConnection) -> None:
        self._peers.pop(ws, None)

    def is_shedding(self, ws: ServerConnection) -> bool:
        peer = self._peers.get(ws)
        return peer is not None and peer.shedding

    def is_open(self, ws: ServerConnection) -> bool:
        """Whether frames still go to this peer: open, and not being closed by the guard."""
        transport = ws.transport
        if transport is None or transport.is_closing() or ws.protocol.state is not State.OPEN:
            return False
        peer = self._peers.get(ws)
        return peer is None or not peer.closing

    def is_closing(self, ws: Peer) -> bool:
        """Whether the guard is closing this peer (slow consumer)."""
        peer = self._peers.get(cast(ServerConnection, ws))
        return peer is not None and peer.closing

    def close_slow(self, ws: ServerConnection, why: str) -> None:
        """Close a peer as a slow consumer (1013), as the sweep would."""
        peer = self._peer(ws)
        if not peer.closing:
            self._close(ws, peer, why)

    def send(
        self,
        targets: Iterable[Peer],
        frame: str | bytes,
        *,
        coalescible: bool = False,
    ) -> None:
        """Broadcast `frame`, skipping peers that are closing or, if it can wait, behind.

        `frame` may be UTF-8 bytes already (a snapshot part): it still goes as text."""
        high_water = self.policy.high_water
        chosen = []
        # The asyncio layer's peers are its sockets (one cast per call, not per peer).
        for ws in cast(Iterable[ServerConnection], targets):
            transport = ws.transport
            if transport is None or transport.is_closing() or ws.protocol.state is not State.OPEN:
                continue
            peer = self._peer(ws)
            if peer.closing:
                continue
            buffered = transport.get_write_buffer_size()
            if buffered > self.policy.hard_cap:
                self._close(ws, peer, f"{buffered} bytes unread")
                continue
            if coalescible and (peer.shedding or buffered > high_water):
                if not peer.shedding:
                    self._start_shedding(ws, peer, buffered)
                if self.metrics is not None:
                    self.metrics.shed.inc()
                continue
            peer.written = True
            chosen.append(ws)
        if chosen:
            wire = text_frame(frame)
            for ws in chosen:
                ws.transport.write(wire)
            if self.metrics is not None:
                self.metrics.sent(frame, len(chosen))

    # --- the sweep ------------------------------------------------------------------

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="outbound-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.policy.sweep_interval_s)
            try:
                self.sweep()
            except Exception:
                logger.exception("backlog sweep failed")

    def sweep(self) -> None:
        """Measure every peer written to since the last sweep, or still behind."""
        now = self._clock()
        for ws, peer in list(self._peers.items()):
            if peer.closing or not (peer.written or peer.shedding or peer.above_since):
                continue
            peer.written = False
            backlog = unread_bytes(ws)
            if backlog > self.policy.hard_cap:
                self._close(ws, peer, f"{backlog} bytes unread")
            elif backlog > self.policy.high_water:
                if not peer.shedding:
                    self._start_shedding(ws, peer, backlog)
                if peer.above_since is None:
                    peer.above_since = now
                elif now - peer.above_since >= self.policy.close_after_s:
                    self._close(
                        ws, peer, f"{backlog} bytes unread for {now - peer.above_since:.1f} s"
                    )
            else:
                peer.above_since = None
                if peer.shedding and backlog <= self.policy.high_water // 4:
                    peer.shedding = False
                    logger.info("peer %s caught up (%d bytes unread)", peer_address(ws), backlog)
                    if peer.on_drained is not None:
                        peer.on_drained()

    def _peer(self, ws: ServerConnection) -> _Peer:
        peer = self._peers.get(ws)
        if peer is None:
            peer = self._peers[ws] = _Peer()
        return peer

    def _start_shedding(self, ws: ServerConnection, peer: _Peer, backlog: int) -> None:
        logger.info(
            "peer %s is behind (%d bytes unread): skipping cursors", peer_address(ws), backlog
        )
        peer.shedding = True
        if peer.above_since is None:
            peer.above_since = self._clock()

    def _close(self, ws: ServerConnection, peer: _Peer, why: str) -> None:
        peer.closing = True
        audit(SLOW_CONSUMER_CLOSE, ip=peer_ip(ws), **peer.label, backlog=why)
        if self.metrics is not None:
            self.metrics.slow_consumers.inc()
        # The close frame queues behind the backlog: give the peer time to read both, so
        # a terminal resumed from Ctrl-Z learns why (1013) instead of seeing a reset.
        ws.close_timeout = self.policy.close_grace_s
        close_soon(ws, CloseCode.TRY_AGAIN_LATER, "slow consumer")
        # `close()` waits for the buffer to drain before its own timeout starts; a
        # peer that never reads would hold it forever.
        transport = ws.transport
        asyncio.get_running_loop().call_later(self.policy.close_grace_s, transport.abort)

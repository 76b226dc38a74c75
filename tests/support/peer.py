"""A bare protocol client for tests: raw frames in, parsed JSON out, every frame kept."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Message = dict[str, Any]


class Closed(Exception):
    """The connection closed while a message was awaited."""


class Peer:
    """One real WebSocket connection; `log` holds everything it ever received."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.log: list[Message] = []
        self.raw: list[str | bytes] = []
        """Every frame exactly as it arrived."""
        self.welcome: Message = {}
        self._inbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, *, headers: dict[str, str] | None = None) -> Peer:
        ws = await connect(url, additional_headers=headers, compression=None, max_size=2**22)
        return cls(ws)

    @classmethod
    async def join(
        cls, url: str, token: str | None = None, *, header: bool = False, **hello: Any
    ) -> Peer:
        """Connect and complete the handshake; return once `welcome` arrived."""
        headers = {"Authorization": f"Bearer {token}"} if token and header else None
        peer = await cls.open(url, headers=headers)
        fields: Message = {"type": "hello", "v": 1, **hello}
        if token and not header:
            fields["token"] = token
        await peer.send(fields)
        peer.welcome = await peer.next("welcome")
        return peer

    @classmethod
    async def join_raw(cls, url: str, hello: Message) -> Peer:
        """Connect and send `hello` as given, without waiting for any reply."""
        peer = await cls.open(url)
        await peer.send(hello)
        return peer

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self.raw.append(frame)
                message = json.loads(frame)
                self.log.append(message)
                self._inbox.put_nowait(message)
        except ConnectionClosed:
            pass
        finally:
            self._inbox.put_nowait(None)

    async def send(self, message: Message) -> None:
        await self.ws.send(json.dumps(message))

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def next(self, type_: str | None = None, timeout: float = 3.0, **where: Any) -> Message:
        """The next message of `type_` whose fields equal `where`; others are skipped."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self._inbox.get()
                if message is None:
                    self._inbox.put_nowait(None)
                    raise Closed(f"closed with {self.ws.close_code} {self.ws.close_reason!r}")
                if type_ is not None and message.get("type") != type_:
                    continue
                if all(message.get(k) == v for k, v in where.items()):
                    return message

    async def drain(self, seconds: float) -> list[Message]:
        """Everything that arrives within `seconds`."""
        got: list[Message] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    message = await self._inbox.get()
                    if message is None:
                        self._inbox.put_nowait(None)
                        break
                    got.append(message)
        return got

    async def closed(self, timeout: float = 3.0) -> int | None:
        """Wait for the server to close the connection; return the close code."""
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._reader)
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    def abort(self) -> None:
        """Drop the TCP connection without a close frame, as a dead network would."""
        transport = self.ws.transport
        transport.abort()

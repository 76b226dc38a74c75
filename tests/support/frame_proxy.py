"""A WebSocket relay that delays, reorders and duplicates chosen frames, to fake the
delivery a CRDT must survive (tests/support/proxy.py fakes a bad TCP link instead).

Each client connection gets its own upstream connection to the target. Frames whose
JSON `type` is in `chaos` wait a random delay before being forwarded, each on its own,
so a later frame can overtake them; some are forwarded twice. Every other frame is
forwarded at once, in order. The random choices come from the seed, so a failure
replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Iterable

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


class FrameChaos:
    """Relay `ws://127.0.0.1:<port>/ws` to `target`; `url` once started."""

    def __init__(
        self,
        target: str,
        chaos: Iterable[str],
        *,
        seed: int,
        max_delay_s: float = 0.05,
        duplicate: float = 0.2,
    ) -> None:
        self._target = target
        self._chaos = frozenset(chaos)
        self._rng = random.Random(seed)
        self._max_delay = max_delay_s
        self._duplicate = duplicate
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.delayed = 0
        self.duplicated = 0

    async def start(self) -> None:
        self._server = await serve(self._relay, "127.0.0.1", 0, compression=None, max_size=None)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        """Frames held back and not forwarded yet."""
        return sum(1 for task in self._tasks if task.get_name() == "held")

    async def _relay(self, downstream: ServerConnection) -> None:
        async with connect(
            self._target,
            compression=None,
            max_size=None,
            additional_headers=_auth(downstream),
        ) as upstream:
            pumps = [
                asyncio.create_task(self._pump(downstream, upstream)),
                asyncio.create_task(self._pump(upstream, downstream)),
            ]
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _pump(
        self,
        source: ServerConnection | ClientConnection,
        sink: ServerConnection | ClientConnection,
    ) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in source:
                if self._chosen(frame):
                    self.delayed += 1
                    copies = 2 if self._rng.random() < self._duplicate else 1
                    self.duplicated += copies - 1
                    for _ in range(copies):
                        self._hold(sink, frame, self._rng.uniform(0, self._max_delay))
                else:
                    await sink.send(frame)
        with contextlib.suppress(Exception):
            await sink.close()

    def _chosen(self, frame: str | bytes) -> bool:
        if isinstance(frame, bytes) or not self._chaos:
            return False
        try:
            return json.loads(frame).get("type") in self._chaos
        except ValueError:
            return False

    def _hold(
        self, sink: ServerConnection | ClientConnection, frame: str | bytes, delay: float
    ) -> None:
        async def later() -> None:
            await asyncio.sleep(delay)
            with contextlib.suppress(ConnectionClosed):
                await sink.send(frame)

        task = asyncio.create_task(later(), name="held")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _auth(downstream: ServerConnection) -> dict[str, str] | None:
    header = downstream.request.headers.get("Authorization") if downstream.request else None
    return {"Authorization": header} if header else None

"""The baseline: a bare `websockets` relay of the same traffic shape, with no auth,
no validation and no storage. What the real server costs is measured against this."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

room: set[ServerConnection] = set()


async def edits(ws: ServerConnection) -> None:
    """Echo every edit to the room and ack it to the sender, as the real server does."""
    room.add(ws)
    try:
        async for frame in ws:
            message = json.loads(frame)
            if message.get("type") == "cell.set":
                broadcast(room, frame)
                broadcast(
                    [ws], json.dumps({"type": "ack", "re": message["op"]}, separators=(",", ":"))
                )
            else:
                await ws.send(json.dumps({"type": "ok", "re": message.get("id")}))
    finally:
        room.discard(ws)


class CoalescingRoom:
    """Latest position per connection, sent as one frame at most every 50 ms (leading edge)."""

    def __init__(self) -> None:
        self.members: set[ServerConnection] = set()
        self.moved: dict[str, tuple[int, int]] = {}
        self.last_flush = float("-inf")
        self.pending: asyncio.TimerHandle | None = None

    def move(self, user: str, x: int, y: int) -> None:
        self.moved[user] = (x, y)
        if self.pending is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self.last_flush + 0.05 - loop.time()
        if wait <= 0:
            self.flush()
        else:
            self.pending = loop.call_later(wait, self.flush)

    def flush(self) -> None:
        self.pending = None
        if not self.moved:
            return
        frame = json.dumps(
            {
                "type": "cursors",
                "board": "grid",
                "cursors": [{"user": u, "x": x, "y": y} for u, (x, y) in self.moved.items()],
            },
            separators=(",", ":"),
        )
        self.moved.clear()
        self.last_flush = asyncio.get_running_loop().time()
        broadcast(self.members, frame)


cursor_room = CoalescingRoom()


async def cursors(ws: ServerConnection) -> None:
    """Relay cursor moves through one coalescing room; the sender names itself."""
    cursor_room.members.add(ws)
    try:
        async for frame in ws:
            message = json.loads(frame)
            if message.get("type") == "cursor.move":
                cursor_room.move(message["user"], message["x"], message["y"])
    finally:
        cursor_room.members.discard(ws)


async def people(ws: ServerConnection) -> None:
    """The shape of a board of people: answer `hello` with a small `welcome` and
    `board.join` with a small `board.state` (the connection then gets the board's
    `cursors` frames), and relay `cursor.move` through one coalescing room under the
    name the hello gave. Nothing about presence or participants is sent: what joins
    cost here is the floor for ours."""
    user = ""
    try:
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                message = json.loads(frame)
                kind = message.get("type")
                if kind == "cursor.move":
                    cursor_room.move(user, message["x"], message["y"])
                elif kind == "hello":
                    user = str(message.get("user"))
                    await ws.send(json.dumps({"type": "welcome", "user": user}))
                elif kind == "board.join":
                    cursor_room.members.add(ws)
                    await ws.send(
                        json.dumps({"type": "board.state", "re": message.get("id"), "cursors": []})
                    )
                elif "id" in message:
                    await ws.send(json.dumps({"type": "ack", "re": message["id"]}))
    finally:
        cursor_room.members.discard(ws)


async def idle(ws: ServerConnection) -> None:
    """Accept, answer one hello and one join with a small frame each, then hold the socket.

    The load generator drops its idle sockets without a close frame; that is the end
    of the connection here, not a failure worth a traceback.
    """
    with contextlib.suppress(ConnectionClosed):
        async for frame in ws:
            message = json.loads(frame)
            reply = {"hello": "welcome", "board.join": "board.state"}.get(message.get("type"))
            if reply is not None:
                await ws.send(json.dumps({"type": reply}))


async def main(mode: str) -> None:
    handler = {"edits": edits, "cursors": cursors, "idle": idle, "people": people}[mode]
    async with serve(
        handler, "127.0.0.1", 0, compression=None, max_size=2**16, backlog=1024
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}/ws", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "edits"))

"""The baseline: a bare `websockets` relay of the same traffic shape, with no auth,
no validation and no storage. What the real server costs is measured against this."""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

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


async def main(mode: str) -> None:
    handler = {"edits": edits}[mode]
    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=2**16) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}/ws", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "edits"))

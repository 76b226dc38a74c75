"""Frames written once for many peers arrive whole, in order, on real sockets.

`Outbound.send` serializes a frame once and writes the same bytes to every peer; a peer
that negotiated compression reads them too (an uncompressed message, RSV1 clear).
"""

from __future__ import annotations

import asyncio
import json
from typing import cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve

from server.outbound import BacklogPolicy, Outbound, text_frame
from server.peer import Peer


async def _peers(
    compression: str | None, count: int
) -> tuple[list[ClientConnection], list[Peer], Server]:
    joined: list[ServerConnection] = []
    all_in = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        joined.append(ws)
        if len(joined) == count:
            all_in.set()
        await ws.wait_closed()

    server = await serve(handler, "127.0.0.1", 0, compression=compression)
    port = server.sockets[0].getsockname()[1]
    clients = [
        await connect(f"ws://127.0.0.1:{port}", compression=compression, proxy=None)
        for _ in range(count)
    ]
    await asyncio.wait_for(all_in.wait(), 5)
    return clients, cast(list[Peer], joined), server


async def test_one_serialization_reaches_every_peer_whole_and_in_order() -> None:
    clients, peers, server = await _peers(None, 3)
    outbound = Outbound(BacklogPolicy())
    big = json.dumps({"type": "welcome", "members": ["é" * 40] * 3_000})  # 120 KB, not ASCII
    try:
        outbound.send(peers, '{"type":"first"}')
        outbound.send(peers, big)
        outbound.send(peers, b'{"type":"as bytes"}')
        for client in clients:
            got = [await asyncio.wait_for(client.recv(), 5) for _ in range(3)]
            assert got == ['{"type":"first"}', big, '{"type":"as bytes"}']
    finally:
        for client in clients:
            await client.close()
        server.close()


async def test_a_peer_that_negotiated_compression_reads_the_same_bytes() -> None:
    clients, peers, server = await _peers("deflate", 2)
    outbound = Outbound(BacklogPolicy())
    try:
        assert all(cast(ServerConnection, peer).protocol.extensions for peer in peers)
        outbound.send(peers, '{"type":"squeezed","pad":"' + "a" * 5_000 + '"}')
        for client in clients:
            got = json.loads(await asyncio.wait_for(client.recv(), 5))
            assert got == {"type": "squeezed", "pad": "a" * 5_000}
    finally:
        for client in clients:
            await client.close()
        server.close()


def test_a_text_frame_is_unmasked_with_the_length_in_its_header() -> None:
    assert text_frame("hi") == b"\x81\x02hi"
    assert text_frame("é".encode()) == b"\x81\x02\xc3\xa9"
    assert text_frame("x" * 200)[:4] == b"\x81\x7e\x00\xc8"  # 16-bit length

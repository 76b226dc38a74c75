"""A big board's join: sent in parts at one version, paced by the reader, paid by size.

Real server on a loopback port, real WebSocket clients. The board is filled through the
store before anyone joins (a room loads its cells at the first join), with 4-byte
characters so that each cell is as large as the protocol allows.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from server.app import CollabServer
from server.snapshot import PART_BYTES
from tests.conftest import StartServer, token
from tests.support.board import cell_events, create_board
from tests.support.metrics import sample
from tests.support.mirror import mirror
from tests.support.peer import Peer
from tests.support.waiting import eventually
from tui_collab.cells import CellOp
from tui_collab.client import CollabClient
from tui_collab.protocol import BoardState

WIDTH, HEIGHT = 40, 50  # 2,000 cells of 256 four-byte characters: about 2.2 MB, 35 parts
VALUE = "😀" * 256
HEADER_BYTES = 2048
"""Room for a part's own fields (board, ids, a few participants) around its cells."""


async def fill(server: CollabServer, board: str) -> None:
    ops = [
        CellOp(x, y, VALUE, 1 + x + y * WIDTH, "c-filler", "filler")
        for y in range(HEIGHT)
        for x in range(WIDTH)
    ]
    await asyncio.gather(*(server.store.apply_cell_op("core", board, op) for op in ops))


async def big_board(server: CollabServer) -> Peer:
    owner = await Peer.join(server.url, token("owner", "core"))
    await create_board(owner, "big", WIDTH, HEIGHT)
    await fill(server, "big")
    return owner


async def tight_socket(url: str, tok: str, rcvbuf: int = 4096) -> ClientConnection:
    """A client whose kernel buffers little, so that not reading pushes back at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    sock.connect((host, int(port)))
    ws = await connect(url, sock=sock, compression=None, max_size=2**22, max_queue=1)
    await ws.send(json.dumps({"type": "hello", "v": 1, "token": tok}))
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


def counter(server: CollabServer, name: str) -> float:
    return sample(server.metrics, name)


async def test_parts_stay_under_the_part_size_and_a_racing_edit_is_neither_missed_nor_doubled(
    start_server: StartServer,
) -> None:
    server = await start_server(send_high_water_bytes=64 * 1024)
    writer = await big_board(server)
    await writer.send({"type": "board.join", "id": "w", "board": "big"})
    await writer.next("board.state", re="w", timeout=10, part=0)
    reader = await tight_socket(server.url, token("reader", "core"))
    await reader.send(json.dumps({"type": "board.join", "id": "j", "board": "big"}))
    raw = [await reader.recv()]
    first = json.loads(raw[0])
    assert (first["part"], first["complete"]) == (0, True)
    assert first["parts"] > 10
    # The reader stops reading: the stream stalls part-way, and edits made now must
    # reach it after the parts already written and before those still to come.
    await asyncio.sleep(0.2)  # kept: the stall is what is tested; this is its length
    for n in range(20):
        value = f"edit {n}"
        await writer.send(
            {
                "type": "cell.set",
                "board": "big",
                "x": n,
                "y": n,
                "value": value,
                "op": f"op{n}",
                "clock": 10_000 + n,
            }
        )
    for n in range(20):
        await writer.next("ack", re=f"op{n}")
    changed_seen, parts_seen = 0, 1
    async with asyncio.timeout(10):
        while changed_seen < 20 or parts_seen < first["parts"]:
            frame = await reader.recv()
            raw.append(frame)
            changed_seen += len(cell_events([json.loads(frame)]))
            parts_seen += '"type":"board.state"' in str(frame)
    log = [json.loads(frame) for frame in raw]
    parts = [m for m in log if m["type"] == "board.state"]
    assert [p["part"] for p in parts] == list(range(first["parts"]))
    assert {p["version"] for p in parts} == {first["version"]}
    assert all(not p["complete"] for p in parts[1:])
    for frame in raw:
        if '"board.state"' in str(frame):
            assert len(frame.encode() if isinstance(frame, str) else frame) <= (
                PART_BYTES + HEADER_BYTES
            )
    changes = cell_events(log)
    assert sorted(c["version"] for c in changes) == sorted({c["version"] for c in changes})
    assert all(c["version"] > first["version"] for c in changes)
    last_part = max(i for i, m in enumerate(log) if m["type"] == "board.state")
    first_change = min(i for i, m in enumerate(log) if cell_events([m]))
    assert first_change < last_part, "the edits did not race the join"
    replica = mirror(log, "big")
    room = server.rooms.get("core", "big")
    assert room is not None
    assert replica.digest() == room.cells.digest()
    assert len(replica) == WIDTH * HEIGHT
    await reader.close()


async def test_the_client_reports_the_join_once_every_part_is_in(
    start_server: StartServer,
) -> None:
    server = await start_server()
    await big_board(server)
    client = CollabClient(server.url, token=token("ada", "core"))
    states: list[BoardState] = []
    client.on(BoardState, states.append)
    async with client:
        await client.wait_connected()
        board = await client.join("big")
        assert len(board.cells) == WIDTH * HEIGHT
        assert board.cells.values()[(3, 4)] == VALUE
        assert [s.part for s in states] == [states[0].parts - 1]
        assert "ada" in board.participants
        # A resume from the version it has asks for nothing more, in one part.
        again = await client.join("big")
        assert again.version == board.version
        assert states[-1].parts == 1


async def test_a_slow_reader_is_closed_and_its_queued_joins_never_run(
    start_server: StartServer,
) -> None:
    server = await start_server(send_high_water_bytes=16 * 1024, slow_close_after_s=0.5)
    await big_board(server)
    ws = await tight_socket(server.url, token("mallory", "core"))
    for n in range(15):
        await ws.send(json.dumps({"type": "board.join", "id": f"j{n}", "board": "big"}))
    await eventually(
        lambda: counter(server, "tui_collab_slow_consumer_drops_total") >= 1,
        what="a slow consumer dropped",
    )
    await eventually(
        lambda: counter(server, "tui_collab_dropped_while_closing_total") >= 14,
        what="14 frames dropped while closing",
    )
    assert counter(server, "tui_collab_board_joins_total") == 1
    # The board was encoded once, for the one join that ran.
    assert counter(server, "tui_collab_snapshot_cells_encoded_total") == WIDTH * HEIGHT
    ws.transport.abort()


async def test_a_rate_limit_close_drops_the_joins_queued_behind_it(
    start_server: StartServer,
) -> None:
    # With no patience for flooding, the first dropped message closes the connection.
    server = await start_server(rate_per_s=10, burst=20, flood_close_after_s=0.0)
    await big_board(server)
    peer = await Peer.join(server.url, token("mallory", "core"))
    frames = [json.dumps({"type": "board.join", "id": f"j{n}", "board": "big"}) for n in range(30)]
    for frame in frames:  # all in one write: every join is queued before the first runs
        peer.ws.protocol.send_text(frame.encode())
    peer.ws.send_data()
    assert await peer.closed(5) == 4029
    assert counter(server, "tui_collab_board_joins_total") == 1
    # The second join was over the limit and closed the connection; the 28 behind it
    # were read and dropped, never handled.
    await eventually(
        lambda: counter(server, "tui_collab_dropped_while_closing_total") >= 28,
        what="28 frames dropped while closing",
    )


async def test_a_join_costs_the_rate_limit_by_its_size(start_server: StartServer) -> None:
    server = await start_server(rate_per_s=100, burst=200)
    owner = await big_board(server)
    await create_board(owner, "small", 4, 4)

    async def answered(kind: dict[str, Any], count: int, wait_s: float) -> tuple[int, int]:
        peer = await Peer.join(server.url, token(f"u{kind['type']}{kind.get('board')}", "core"))
        for n in range(count):
            await peer.send({**kind, "id": f"m{n}"})
        # Each request is admitted or refused as it arrives; the wait only has to be long
        # enough for the answers to come back, even on a busy machine.
        got = await peer.drain(wait_s)
        await peer.close()
        replies = [m for m in got if m.get("re") and m.get("part", 0) == 0]
        limited = sum(1 for m in replies if m.get("code") == "rate_limited")
        return len(replies) - limited, limited

    heavy, heavy_limited = await answered({"type": "board.join", "board": "big"}, 20, 2.0)
    light, light_limited = await answered({"type": "board.join", "board": "small"}, 20, 0.5)
    queries, query_limited = await answered({"type": "presence.query"}, 20, 0.5)
    # 2.2 MB is 34 tokens of the 200 in the bucket: the sixth or seventh join is refused.
    assert 2 <= heavy <= 8
    assert heavy_limited == 1  # one error a second, the rest dropped silently
    assert (light, light_limited) == (20, 0)
    assert (queries, query_limited) == (20, 0)

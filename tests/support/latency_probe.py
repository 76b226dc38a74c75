"""A well-behaved pair of clients in their own process, timing what the other one sees.

Usage: python -m tests.support.latency_probe URL WRITER_TOKEN READER_TOKEN BOARD RATE
The writer sets a cell RATE times a second; the reader times each cell change from
the moment the writer sent it (one clock: same process). Runs until stdin closes, then
prints one JSON line: {"sent", "received", "missing", "p50_ms", "p99_ms"}.

Its own process, so whatever the test process does (generating hostile frames) cannot
delay its loop and pass for server latency.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

from websockets.asyncio.client import ClientConnection, connect

from tests.support.board import cell_events


async def open_joined(url: str, token: str, board: str) -> tuple[ClientConnection, int, str]:
    """Connect, join; return the connection, the highest clock on the board, the client id."""
    ws = await connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, compression=None
    )
    await ws.send(json.dumps({"type": "hello", "v": 1}))
    client_id = json.loads(await ws.recv())["client_id"]  # welcome
    await ws.send(json.dumps({"type": "board.join", "id": "j", "board": board}))
    while (state := json.loads(await ws.recv())).get("type") != "board.state":
        pass
    return ws, max((cell["clock"] for cell in state["cells"]), default=0), client_id


async def main(url: str, writer_token: str, reader_token: str, board: str, rate: float) -> None:
    writer, highest, writer_id = await open_joined(url, writer_token, board)
    reader, _, _ = await open_joined(url, reader_token, board)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    acks: list[float] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    sys.stdout.write("ready\n")
    sys.stdout.flush()

    async def write() -> None:
        # A Lamport clock, as a real client keeps: an op must beat whatever anyone else
        # (the hostile client included) wrote, or it would rightly produce no event.
        nonlocal highest
        interval = 1.0 / rate
        next_at = time.perf_counter()
        while not stop.is_set():
            highest += 1
            clock = highest
            sent_at[clock] = time.perf_counter()
            await writer.send(
                json.dumps(
                    {
                        "type": "cell.set",
                        "board": board,
                        "x": clock % 8,
                        "y": 0,
                        "value": f"v{clock}",
                        "op": f"p{clock}",
                        "clock": clock,
                    }
                )
            )
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def drain_writer() -> None:
        nonlocal highest
        async for frame in writer:  # acks, and every change to the board
            if '"cell.changed"' in frame or '"cells.changed"' in frame:
                highest = max([highest, *(c["clock"] for c in cell_events([json.loads(frame)]))])
            elif '"ack"' in frame:
                ack = json.loads(frame)
                if ack.get("re", "").startswith("p"):
                    started = sent_at.get(int(ack["re"][1:]))
                    if started is not None:
                        acks.append(time.perf_counter() - started)

    async def read() -> None:
        async for frame in reader:
            # Others' traffic is skipped unparsed: the probe times the server, not itself.
            if writer_id not in frame:
                continue
            for cell in cell_events([json.loads(frame)]):
                if cell["client"] == writer_id:
                    started = sent_at.get(cell["clock"])
                    if started is not None:
                        latencies.append(time.perf_counter() - started)

    tasks = [asyncio.create_task(t()) for t in (write, drain_writer, read)]
    await stop.wait()
    await asyncio.sleep(0.5)  # let the last changes arrive
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ordered = sorted(latencies)
    result = {
        "sent": len(sent_at),
        "received": len(latencies),
        "missing": len(sent_at) - len(latencies),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 3),
        "ack_p99_ms": round(sorted(acks)[int(len(acks) * 0.99)] * 1000, 3),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    await writer.close()
    await reader.close()


if __name__ == "__main__":
    url, writer_token, reader_token, board, rate = sys.argv[1:6]
    asyncio.run(main(url, writer_token, reader_token, board, float(rate)))

"""What pipelined joins of a full board cost everyone else: another team's round trips.

    python -m bench.joins [--repeats 3] [--phase-s 8]

Each repeat starts a fresh server process (token auth, the default rate limit of 100
a second with a burst of 200, every other limit at its default) on a data dir whose
board holds the cell cap: 10,000 cells of 256 four-byte characters (about 10.5 MiB of
JSON), written through the store before the server starts. A prober of another team
sends `presence.query` every 20 ms and times each answer:

- alone, for `--phase-s`;
- while one user opens 8 connections, each sending 15 `board.join` of that board in
  one go and reading nothing;
- then alone again, and while the same user tries 30 such connections (the server
  lets a user hold 8: the other 22 are refused at hello).

Target: p99 under 50 ms and max under 250 ms during the attack. Medians over repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.common import cpu_seconds, machine, median, percentile
from server.auth import load_secret, mint_token
from server.store.base import BoardRecord
from server.store.sqlite import SQLiteStore
from tests.support.process import ServerProcess
from tui_collab.cells import CellOp

WIDTH = HEIGHT = 100
VALUE = "😀" * 256
PROBE_EVERY_S = 0.02
JOINS_PER_CONNECTION = 15


async def fill(data_dir: Path) -> None:
    """Write the board straight into the store, as a server would have kept it."""
    store = SQLiteStore(data_dir)
    await store.open()
    await store.create_board(BoardRecord("bench", "grid", "Grid", WIDTH, HEIGHT, "owner"))
    ops = [
        CellOp(x, y, VALUE, 1 + x + y * WIDTH, "c-owner", "owner")
        for y in range(HEIGHT)
        for x in range(WIDTH)
    ]
    for start in range(0, len(ops), 1000):
        await asyncio.gather(
            *(store.apply_cell_op("bench", "grid", op) for op in ops[start : start + 1000])
        )
    await store.close()


async def hello(url: str, tok: str, **options: Any) -> ClientConnection | None:
    try:
        ws = await connect(url, compression=None, max_size=2**24, **options)
    except (InvalidStatus, OSError):
        return None
    await ws.send(json.dumps({"type": "hello", "v": 1, "token": tok}))
    try:
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
    except (ConnectionClosed, TimeoutError):
        return None
    if first["type"] != "welcome":
        with contextlib.suppress(ConnectionClosed):
            await ws.close()
        return None
    return ws


async def probe(url: str, tok: str, seconds: float) -> list[float]:
    """Round trips of `presence.query`, in ms, one every 20 ms for `seconds`."""
    ws = await hello(url, tok)
    assert ws is not None
    times: list[float] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    n = 0
    while loop.time() < end:
        n += 1
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "presence.query", "id": f"q{n}"}))
        while True:
            reply = json.loads(await ws.recv())
            if reply.get("re") == f"q{n}":
                break
        times.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(max(0.0, PROBE_EVERY_S - (time.perf_counter() - started)))
    await ws.close()
    return times


async def attack(url: str, tok: str, connections: int, seconds: float) -> int:
    """Open `connections` of one user at once; each pipelines its joins and never reads.
    Returns how many were let in."""
    # max_queue=1: the client library stops reading after one frame, so the kernel
    # buffers fill and the server sees a reader that has stopped.
    sockets = await asyncio.gather(*(hello(url, tok, max_queue=1) for _ in range(connections)))
    admitted = [ws for ws in sockets if ws is not None]
    frames = [
        json.dumps({"type": "board.join", "id": f"j{n}", "board": "grid"})
        for n in range(JOINS_PER_CONNECTION)
    ]
    for ws in admitted:
        for frame in frames:
            ws.protocol.send_text(frame.encode())
        ws.send_data()
    await asyncio.sleep(seconds)
    for ws in admitted:
        ws.transport.abort()
    return len(admitted)


def metric(url: str, name: str) -> float:
    """A counter from /metrics; NaN if the server does not answer within 30 s."""
    http = url.replace("ws://", "http://").rsplit("/", 1)[0] + "/metrics"
    try:
        with urllib.request.urlopen(http, timeout=30) as response:
            text = response.read().decode()
    except OSError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def summary(times: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(times, 50),
        "p99": percentile(times, 99),
        "max": max(times),
        "n": len(times),
    }


async def one_run(phase_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tui-collab-joins-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir(mode=0o700)
        started = time.perf_counter()
        await fill(data_dir)
        fill_s = time.perf_counter() - started
        server = ServerProcess(
            data_dir, "--rate", "100", "--burst", "200", "--log-level", "warning"
        )
        url = server.start()
        try:
            secret = load_secret(data_dir)
            prober = mint_token(secret, "pat", "other", None, 3600)
            mallory = mint_token(secret, "mallory", "bench", None, 3600)
            row: dict[str, Any] = {"fill_s": fill_s}
            for attackers in (8, 30):
                row[f"calm{attackers}"] = summary(await probe(url, prober, phase_s))
                cpu = cpu_seconds(server.pid)
                probed, admitted = await asyncio.gather(
                    probe(url, prober, phase_s), attack(url, mallory, attackers, phase_s)
                )
                row[f"attack{attackers}"] = summary(probed)
                row[f"admitted{attackers}"] = admitted
                row[f"cpu{attackers}"] = cpu_seconds(server.pid) - cpu
                await asyncio.sleep(1.0)  # the aborted sockets go before the next phase
            row["joins"] = metric(url, "tui_collab_board_joins_total")
            row["dropped"] = metric(url, "tui_collab_dropped_while_closing_total")
            row["slow_closes"] = metric(url, "tui_collab_slow_consumer_drops_total")
            row["encoded"] = metric(url, "tui_collab_snapshot_cells_encoded_total")
            return row
        finally:
            server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--phase-s", type=float, default=8.0)
    args = parser.parse_args()
    rows = []
    for _ in range(args.repeats):
        row = asyncio.run(one_run(args.phase_s))
        rows.append(row)
        brief = {
            k: ({m: round(v, 1) for m, v in val.items()} if isinstance(val, dict) else val)
            for k, val in row.items()
        }
        print("run:", brief, flush=True)
    print(f"\n# presence.query round trips of another team, ms; {machine()}")
    print(f"# board: {WIDTH * HEIGHT} cells x 256 four-byte characters; medians of {len(rows)}")
    print(f"# runs; {JOINS_PER_CONNECTION} pipelined joins per connection, nothing read\n")
    print("| phase | admitted | p50 | p99 | max | server CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for attackers in (8, 30):
        calm = [r[f"calm{attackers}"] for r in rows]
        under = [r[f"attack{attackers}"] for r in rows]
        print(
            f"| alone (before {attackers}) | - | {median([c['p50'] for c in calm]):.2f} | "
            f"{median([c['p99'] for c in calm]):.2f} | {median([c['max'] for c in calm]):.2f} "
            "| - |"
        )
        print(
            f"| {attackers} connections tried | "
            f"{median([r[f'admitted{attackers}'] for r in rows]):.0f} | "
            f"{median([u['p50'] for u in under]):.2f} | "
            f"{median([u['p99'] for u in under]):.2f} | {median([u['max'] for u in under]):.2f} "
            f"| {median([r[f'cpu{attackers}'] for r in rows]):.2f} |"
        )
    print(
        f"\njoins answered per run: {median([r['joins'] for r in rows]):.0f}; "
        f"frames dropped while closing: {median([r['dropped'] for r in rows]):.0f}; "
        f"slow-consumer closes: {median([r['slow_closes'] for r in rows]):.0f}; "
        f"cells encoded: {median([r['encoded'] for r in rows]):.0f}"
    )


if __name__ == "__main__":
    main()

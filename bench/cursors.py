"""Cursor storm and lone moves: delivery and latency against a bare coalescing relay.

    python -m bench.cursors [--clients 10,50,200,500] [--seconds 10] [--repeats 3]

Storm: N clients on one board, each moving 10 times a second on a fixed schedule.
The protocol carries no timestamps, so each mover walks a known path: at tick k it
moves to the cell that encodes k, and every process shares one monotonic clock; a
watcher that sees user i at a cell knows when that move was sent. Latency is measured
on 10 watching clients (the rest only read), over exactly the real path. Lone: one
mover on a quiet board, a move every 200 ms, one watcher. Each runs against our server
and a bare websockets relay that coalesces the same way (50 ms, leading edge).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.common import (
    cpu_seconds,
    create_board,
    machine,
    median,
    percentile,
    start_bare,
    start_ours,
)

WIDTH, HEIGHT = 256, 4096
HZ = 10.0
WATCHERS = 10
PROCESSES = 2


def cell_for(tick: int) -> tuple[int, int]:
    return tick % WIDTH, (tick // WIDTH) % HEIGHT


def tick_of(x: int, y: int) -> int:
    return y * WIDTH + x


def phase(n: int, clients: int) -> float:
    """Movers are spread evenly over the 100 ms tick, as independent people would be."""
    return (n / max(1, clients)) / HZ


async def _open(url: str, user: str, ours: bool) -> ClientConnection:
    ws = await connect(
        url, compression=None, max_size=None, max_queue=None, open_timeout=60, ping_interval=None
    )
    if ours:
        await ws.send(json.dumps({"type": "hello", "v": 1, "user": user, "team": "bench"}))
        await ws.recv()
        await ws.send(json.dumps({"type": "board.join", "board": "grid", "id": "j"}))
        while '"board.state"' not in str(await ws.recv()):
            pass
    return ws


async def _client(
    url: str,
    n: int,
    clients: int,
    ours: bool,
    watch: bool,
    move: bool,
    start_at: float,
    seconds: float,
    period: float,
) -> dict[str, Any]:
    user = f"u{n}"
    ws = await _open(url, user, ours)
    latencies: list[float] = []
    frames = updates = 0
    offset = phase(n, clients) if move else 0.0
    mover_phase = {f"u{i}": phase(i, clients) for i in range(clients)}

    async def receive() -> None:
        nonlocal frames, updates
        async for raw in ws:
            if not watch:
                continue
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") != "cursors":
                continue
            if now < start_at or now > start_at + seconds:
                continue
            frames += 1
            for cursor in message["cursors"]:
                sender = cursor["user"]
                if sender == user or sender not in mover_phase:
                    continue
                updates += 1
                tick = tick_of(cursor["x"], cursor["y"])
                sent = start_at + mover_phase[sender] + tick * period
                latencies.append(now - sent)

    reader = asyncio.create_task(receive())
    if move:
        tick = 0
        while True:
            due = start_at + offset + tick * period
            if due > start_at + seconds:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            x, y = cell_for(tick)
            frame = {"type": "cursor.move", "board": "grid", "x": x, "y": y}
            if not ours:
                frame["user"] = user
            await ws.send(json.dumps(frame))
            tick += 1
    else:
        await asyncio.sleep(max(0.0, start_at + seconds - time.perf_counter()))
    await asyncio.sleep(0.5)
    reader.cancel()
    await ws.close()
    return {"latencies": latencies, "frames": frames, "updates": updates}


def _worker(args: tuple[Any, ...]) -> dict[str, Any]:
    url, indices, clients, ours, watchers, movers, start_at, seconds, period = args

    async def run() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(
                _client(
                    url, n, clients, ours, n in watchers, n in movers, start_at, seconds, period
                )
                for n in indices
            )
        )

    cpu = time.process_time()
    parts = asyncio.run(run())
    return {
        "latencies": [x for p in parts for x in p["latencies"]],
        "frames": sum(p["frames"] for p in parts),
        "updates": sum(p["updates"] for p in parts),
        "watching": sum(1 for n in indices if n in watchers),
        "cpu": time.process_time() - cpu,
    }


def run_once(ours: bool, clients: int, seconds: float, lone: bool) -> dict[str, float]:
    served = start_ours("--max-board-participants", "1000") if ours else start_bare("cursors")
    period = 0.2 if lone else 1 / HZ
    movers = {0} if lone else set(range(clients))
    watchers = {1} if lone else set(range(min(WATCHERS, clients)))
    total = 2 if lone else clients
    try:
        if ours:
            asyncio.run(create_board(served.url, WIDTH, HEIGHT))
        processes = 1 if lone else PROCESSES
        groups = [list(range(total))[i::processes] for i in range(processes)]
        start_at = time.perf_counter() + 3.0 + total / 200  # time for everyone to join
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pending = pool.map_async(
                _worker,
                [
                    (served.url, g, total, ours, watchers, movers, start_at, seconds, period)
                    for g in groups
                ],
            )
            time.sleep(max(0.0, start_at - time.perf_counter()))
            cpu0 = cpu_seconds(served.proc.pid)
            time.sleep(seconds)
            server_cpu = cpu_seconds(served.proc.pid) - cpu0
            parts = pending.get(timeout=120)
    finally:
        served.stop()
    return {
        **summarize(parts, seconds),
        "server_cpu_pct": 100 * server_cpu / seconds,
        "load_cpu_pct": 100 * sum(p["cpu"] for p in parts) / (seconds + 3),
    }


def summarize(parts: list[dict[str, Any]], seconds: float) -> dict[str, float]:
    """Delivery per watching client and latency, from every worker's share."""
    latencies = [x for p in parts for x in p["latencies"]]
    watching = sum(p["watching"] for p in parts)
    return {
        "frames_per_s": sum(p["frames"] for p in parts) / watching / seconds,
        "updates_per_s": sum(p["updates"] for p in parts) / watching / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", default="10,50,200,500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# cursor storm ({HZ:.0f} Hz each) and lone moves; {machine()}")
    print(f"# medians of {args.repeats} runs of {args.seconds:.0f} s; per watching client\n")
    print(
        "| scenario | server | frames/s | updates/s | p50 ms | p95 ms | p99 ms | max ms "
        "| server CPU % | CPU ratio |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    scenarios = [("lone moves", 2, True)] + [
        (f"storm {n}", n, False) for n in (int(c) for c in args.clients.split(","))
    ]
    for label, clients, lone in scenarios:
        rows = {}
        for ours, name in ((False, "bare coalescing relay"), (True, "tui-collab")):
            runs = [run_once(ours, clients, args.seconds, lone) for _ in range(args.repeats)]
            rows[name] = {k: median([r[k] for r in runs]) for k in runs[0]}
        bare_cpu = rows["bare coalescing relay"]["server_cpu_pct"]
        for name, row in rows.items():
            ratio = row["server_cpu_pct"] / bare_cpu if bare_cpu else float("nan")
            print(
                f"| {label} | {name} | {row['frames_per_s']:.1f} | {row['updates_per_s']:.0f} "
                f"| {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['p99_ms']:.2f} "
                f"| {row['max_ms']:.1f} | {row['server_cpu_pct']:.0f} | {ratio:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

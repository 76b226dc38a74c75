"""Many connections: memory per idle client, and a storm of clients joining one board.

    python -m bench.connections [--idle 1000,5000,10000] [--joiners 500] [--repeats 3]

Idle: N clients connect, authenticate (open mode, one user each, in teams of 100) and
stay connected with presence; the server's RSS growth divided by N is its cost per connection. Join
storm: N clients connect, say hello and join one board, all released at once; the time
until the last has its `board.state`. Each against our server and a bare websockets
server that answers the same two requests with a small frame and does nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.common import create_board, machine, median, percentile, rss_kib, start_bare, start_ours

PROCESSES = 4


TEAM_SIZE = 100
"""Idle clients come in teams of 100, as on a server that hosts many teams."""


async def _hello(url: str, user: str, team: str = "bench") -> ClientConnection:
    ws = await connect(
        url, compression=None, max_size=None, open_timeout=120, ping_interval=None, close_timeout=1
    )
    await ws.send(json.dumps({"type": "hello", "v": 1, "user": user, "team": team}))
    await ws.recv()
    return ws


def _idle_worker(url: str, users: list[int], ready: Any, done: Any, out: Any) -> None:
    async def run() -> int:
        gate = asyncio.Semaphore(64)

        async def one(n: int) -> ClientConnection:
            async with gate:
                return await _hello(url, f"u{n}", f"team{n // TEAM_SIZE}")

        sockets = await asyncio.gather(*(one(n) for n in users))
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.1)
        for ws in sockets:
            ws.transport.abort()
        return len(sockets)

    out.put(asyncio.run(run()))


def idle_once(ours: bool, clients: int) -> float:
    served = start_ours("--ping-interval", "600") if ours else start_bare("idle")
    ctx = multiprocessing.get_context("fork")
    workers = []
    try:
        time.sleep(0.5)
        before = rss_kib(served.proc.pid)
        out = ctx.Queue()
        done = ctx.Event()
        for i in range(PROCESSES):
            ready = ctx.Event()
            users = list(range(clients))[i::PROCESSES]
            proc = ctx.Process(target=_idle_worker, args=(served.url, users, ready, done, out))
            proc.start()
            workers.append((proc, ready))
        deadline = time.monotonic() + 300
        while not all(r.is_set() for _, r in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        after = rss_kib(served.proc.pid)
        done.set()
        connected = sum(out.get(timeout=120) for _ in workers)
    finally:
        for proc, _ in workers:
            proc.join(30)
        served.stop()
    return (after - before) / connected


def _join_worker(args: tuple[str, list[int], bool, float]) -> list[float]:
    url, users, _ours, start_at = args

    async def one(n: int) -> float:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        ws = await _hello(url, f"j{n}")
        await ws.send(json.dumps({"type": "board.join", "board": "grid", "id": "j"}))
        while '"board.state"' not in str(await ws.recv()):
            pass
        took = time.perf_counter() - start_at
        await asyncio.sleep(max(0.0, start_at + 20 - time.perf_counter()))  # stay joined
        ws.transport.abort()
        return took

    async def run() -> list[float]:
        return list(await asyncio.gather(*(one(n) for n in users)))

    return asyncio.run(run())


def joins_once(ours: bool, clients: int) -> dict[str, float]:
    served = start_ours("--max-board-participants", "1000") if ours else start_bare("idle")
    try:
        if ours:
            asyncio.run(create_board(served.url, 26, 40))
        groups = [list(range(clients))[i::PROCESSES] for i in range(PROCESSES)]
        start_at = time.perf_counter() + 1.5
        with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
            times = [
                t
                for part in pool.map(
                    _join_worker, [(served.url, g, ours, start_at) for g in groups]
                )
                for t in part
            ]
    finally:
        served.stop()
    return {
        "all_s": max(times),
        "p50_ms": percentile(times, 50) * 1000,
        "p99_ms": percentile(times, 99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle", default="1000,5000,10000")
    parser.add_argument("--joiners", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# connections; {machine()}; medians of {args.repeats} runs\n")
    print("| idle clients | bare websockets KiB/conn | tui-collab KiB/conn | ratio |")
    print("|---:|---:|---:|---:|")
    for n in (int(x) for x in args.idle.split(",") if x):
        bare = median([idle_once(False, n) for _ in range(args.repeats)])
        ours = median([idle_once(True, n) for _ in range(args.repeats)])
        print(f"| {n:,} | {bare:.1f} | {ours:.1f} | {ours / bare:.2f} |", flush=True)
    print(
        f"\n| join storm ({args.joiners} clients released at once) | all joined s "
        "| p50 ms | p99 ms |"
    )
    print("|---|---:|---:|---:|")
    for ours, name in ((False, "bare websockets"), (True, "tui-collab")):
        runs = [joins_once(ours, args.joiners) for _ in range(args.repeats)]
        row: dict[str, Any] = {k: median([r[k] for r in runs]) for k in runs[0]}
        print(
            f"| {name} | {row['all_s']:.2f} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

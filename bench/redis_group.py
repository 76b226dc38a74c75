"""Node CPU per acked edit: a SQLite node against a Redis node, in the same invocation.

    python -m bench.redis_group [--clients 50] [--rate 20] [--boards 10] [--seconds 5]
                                [--repeats 3] [--batch 0] [--in-flight 0]

N clients each send `rate` edits a second on their own schedule (a random phase and a
little jitter per edit, as people type; not in lockstep), spread over `boards` boards so
that fan-out does not hide the store's share. `--in-flight K` instead keeps K edits in
flight per client, unpaced (the flood of bench/edits.py and bench/scaleout.py, where
the SQLite node groups hundreds of ops a commit). With `--batch K` every K-th edit is a
`cells.set` of 4 ops instead of a `cell.set`. The same load runs against one node on
SQLite (`--durability normal`, the default) and one node on a fresh `redis-server`
(append-only, `appendfsync always`, tests/support/redis_server.py), alternating, each
repeat in both. Measured over the same window: acked edits, ack latency from the
scheduled send, the node's CPU and redis-server's CPU (/proc/<pid>/stat), and, for
Redis, the `evalsha` calls (`INFO commandstats`): calls per acked edit shows grouping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import time
from typing import Any

from redis import Redis
from websockets.asyncio.client import ClientConnection, connect

from bench.common import (
    Served,
    alternate,
    cpu_seconds,
    machine,
    median,
    paired_summary,
    percentile,
    start_ours,
)
from tests.support.redis_server import RedisServer

PROCESSES = 2
LEAD_S = 2.0
SIDE = 64
NODE_FLAGS = (
    "--max-board-participants",
    "1000",
    "--max-unauthenticated-per-ip",
    "1000",
    "--max-upgrading-per-ip",
    "1000",
)


async def _create_boards(url: str, boards: int) -> None:
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "user": "owner", "team": "bench"}))
        await ws.recv()
        for b in range(boards):
            await ws.send(
                json.dumps(
                    {
                        "type": "board.create",
                        "board": f"g{b}",
                        "title": f"G{b}",
                        "id": f"c{b}",
                        "width": SIDE,
                        "height": SIDE,
                    }
                )
            )
            while f'"re":"c{b}"' not in str(await ws.recv()):
                pass


async def _open(url: str, user: str, board: str) -> ClientConnection:
    ws = await connect(url, compression=None, max_size=None, max_queue=None, open_timeout=60)
    await ws.send(json.dumps({"type": "hello", "v": 1, "user": user, "team": "bench"}))
    await ws.recv()
    await ws.send(json.dumps({"type": "board.join", "board": board, "id": "j"}))
    while '"board.state"' not in str(await ws.recv()):
        pass
    return ws


def _edit(user: str, board: str, n: int, batch: int) -> str:
    rid = f"{user}-{n}"
    if batch and n % batch == batch - 1:
        ops = [
            {
                "x": (n + k) % SIDE,
                "y": (n // SIDE) % SIDE,
                "value": f"{user}{n}.{k}",
                "clock": n + 1,
                "op": f"{rid}.{k}",
            }
            for k in range(4)
        ]
        return json.dumps({"type": "cells.set", "board": board, "id": rid, "ops": ops})
    return json.dumps(
        {
            "type": "cell.set",
            "board": board,
            "x": n % SIDE,
            "y": (n // SIDE) % SIDE,
            "value": f"{user}{n}",
            "op": rid,
            "clock": n + 1,
        }
    )


async def _client(
    url: str,
    user: str,
    board: str,
    load: tuple[float, int, int],
    start_at: float,
    seconds: float,
) -> dict[str, Any]:
    rate, batch, in_flight = load
    ws = await _open(url, user, board)
    rng = random.Random(user)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    acked = 0
    done = asyncio.Event()
    window = asyncio.Semaphore(in_flight)

    async def receive() -> None:
        nonlocal acked
        async for frame in ws:
            if not str(frame).startswith('{"type":"ack"'):
                continue
            now = time.perf_counter()
            started = sent_at.pop(json.loads(frame)["re"], None)
            if started is not None and started <= start_at + seconds:
                acked += 1
                latencies.append(now - started)
            if in_flight:
                window.release()
            if done.is_set() and not sent_at:
                return

    reader = asyncio.create_task(receive())
    due = start_at + rng.random() / rate  # the client's own phase
    n = 0
    if in_flight:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    while (due if not in_flight else time.perf_counter()) < start_at + seconds:
        if in_flight:
            await window.acquire()
            due = time.perf_counter()
        else:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        sent_at[f"{user}-{n}"] = due
        await ws.send(_edit(user, board, n, batch))
        n += 1
        due += rng.uniform(0.8, 1.2) / rate  # people's timing drifts
    done.set()
    try:
        await asyncio.wait_for(reader, 10)
    except TimeoutError:
        reader.cancel()
    await ws.close()
    return {"acked": acked, "latencies": latencies}


def _worker(
    args: tuple[str, list[tuple[str, str]], tuple[float, int, int], float, float],
) -> dict[str, Any]:
    url, users, load, start_at, seconds = args

    async def run() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(_client(url, u, b, load, start_at, seconds) for u, b in users)
        )

    results = asyncio.run(run())
    return {
        "acked": sum(r["acked"] for r in results),
        "latencies": [x for r in results for x in r["latencies"]],
    }


def _evalsha_calls(redis: RedisServer | None) -> int:
    if redis is None:
        return 0
    with Redis.from_url(redis.url) as client:
        stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def run_once(store: str, args: argparse.Namespace) -> dict[str, float]:
    redis = RedisServer().start() if store == "redis" else None
    served: Served | None = None
    try:
        extra = ("--redis", redis.url) if redis is not None else ()
        served = start_ours(*extra, *NODE_FLAGS)
        asyncio.run(_create_boards(served.url, args.boards))
        users = [(f"u{n}", f"g{n % args.boards}") for n in range(args.clients)]
        start_at = time.perf_counter() + LEAD_S + args.clients / 100
        load = (args.rate, args.batch, args.in_flight)
        tasks = [
            (served.url, users[p::PROCESSES], load, start_at, args.seconds)
            for p in range(PROCESSES)
        ]
        pids = [served.proc.pid] + ([redis.proc.pid] if redis and redis.proc else [])
        with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
            pending = pool.map_async(_worker, tasks)
            time.sleep(max(0.0, start_at - time.perf_counter()))
            before = [cpu_seconds(pid) for pid in pids]
            calls_before = _evalsha_calls(redis)
            time.sleep(args.seconds)
            after = [cpu_seconds(pid) for pid in pids]
            calls = _evalsha_calls(redis) - calls_before
            parts = pending.get(timeout=120)
    finally:
        if served is not None:
            served.stop()
        if redis is not None:
            redis.close()
    acked = sum(p["acked"] for p in parts)
    latencies = [x for p in parts for x in p["latencies"]]
    node_cpu = after[0] - before[0]
    redis_cpu = after[1] - before[1] if len(pids) > 1 else 0.0
    return {
        "acked_per_s": acked / args.seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "node_us_per_edit": 1e6 * node_cpu / max(1, acked),
        "node_cpu_pct": 100 * node_cpu / args.seconds,
        "redis_cpu_pct": 100 * redis_cpu / args.seconds,
        "evalsha_per_edit": calls / max(1, acked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="edits/s per client")
    parser.add_argument("--boards", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=0, help="every K-th edit a cells.set")
    parser.add_argument("--in-flight", type=int, default=0, help="unpaced, K edits in flight")
    args = parser.parse_args()
    pace = f"{args.in_flight} in flight" if args.in_flight else f"{args.rate:g} edits/s"
    print(
        f"# {args.clients} clients x {pace} on {args.boards} boards, "
        f"batch every {args.batch or '-'}; {machine()}"
    )
    print(f"# medians of {args.repeats} runs of {args.seconds:g} s, SQLite and Redis alternating\n")
    runs = alternate(["sqlite", "redis"], args.repeats, lambda store, _: run_once(store, args))
    print(
        "| store | acked edits/s | ack p50 ms | ack p99 ms | node CPU µs/edit | node CPU % "
        "| redis CPU % | evalsha/edit |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = {}
    for store, done in runs.items():
        row = rows[store] = {k: median([r[k] for r in done]) for k in done[0]}
        print(
            f"| {store} | {row['acked_per_s']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['node_us_per_edit']:.0f} | {row['node_cpu_pct']:.0f} "
            f"| {row['redis_cpu_pct']:.0f} | {row['evalsha_per_edit']:.2f} |"
        )
    ratio = rows["redis"]["node_us_per_edit"] / rows["sqlite"]["node_us_per_edit"]
    print(f"\nRedis node CPU per acked edit: {ratio:.2f}x SQLite's")
    print(f"run by run: {paired_summary(runs['redis'], runs['sqlite'], 'node_us_per_edit')}")


if __name__ == "__main__":
    main()

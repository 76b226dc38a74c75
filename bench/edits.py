"""Edit storm: durable acked edits per second, and ack latency at a fixed rate.

    python -m bench.edits [--repeats 3] [--seconds 5]

10 clients on one board, spread over 2 load processes. Two phases per server:
`flood` keeps 64 edits in flight per client and counts acks per second; `paced` sends
1,000 edits/s in total on a fixed schedule and measures schedule-to-ack latency (so
queueing shows). Runs our server with --durability normal and full, and a bare
websockets relay of the same traffic (no auth, validation or storage) as the baseline.
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

BOARD = {"width": 64, "height": 64}
CLIENTS = 10
PROCESSES = 2


async def _open(url: str, user: str, ours: bool) -> ClientConnection:
    ws = await connect(url, compression=None, max_size=2**20, max_queue=None)
    if ours:
        await ws.send(
            json.dumps(
                {"type": "hello", "v": 1, "user": user, "team": "bench", "client_id": f"c-{user}"}
            )
        )
        await ws.recv()
        await ws.send(json.dumps({"type": "board.join", "board": "grid", "id": "j"}))
        while '"board.state"' not in str(await ws.recv()):
            pass
    return ws


def _op(user: str, n: int, clock: int) -> str:
    return json.dumps(
        {
            "type": "cell.set",
            "board": "grid",
            "x": n % 64,
            "y": (n // 64) % 64,
            "value": f"{user}{n}",
            "op": f"{user}-{n}",
            "clock": clock,
        }
    )


async def _client(
    url: str, user: str, ours: bool, phase: str, seconds: float, rate: float, start_at: float
) -> dict[str, Any]:
    ws = await _open(url, user, ours)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    acked = 0
    window = asyncio.Semaphore(64)
    done = asyncio.Event()

    async def receive() -> None:
        nonlocal acked
        async for frame in ws:
            if not str(frame).startswith('{"type":"ack"'):
                continue
            ack = json.loads(frame)
            now = time.perf_counter()
            started = sent_at.pop(ack["re"], None)
            if started is None:
                continue
            if now <= start_at + seconds:
                acked += 1
                latencies.append(now - started)
            if phase == "flood":
                window.release()
            if done.is_set() and not sent_at:
                return

    reader = asyncio.create_task(receive())
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    n = 0
    while time.perf_counter() < start_at + seconds:
        if phase == "flood":
            await window.acquire()
            sent_at[f"{user}-{n}"] = time.perf_counter()
        else:
            due = start_at + n / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent_at[f"{user}-{n}"] = due
        await ws.send(_op(user, n, n + 1))
        n += 1
    done.set()
    try:
        await asyncio.wait_for(reader, 10)
    except TimeoutError:
        reader.cancel()
    await ws.close()
    return {"acked": acked, "latencies": latencies}


def _worker(args: tuple[str, list[str], bool, str, float, float, float]) -> dict[str, Any]:
    url, users, ours, phase, seconds, rate, start_at = args

    async def run() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(_client(url, u, ours, phase, seconds, rate, start_at) for u in users)
        )

    cpu_before = time.process_time()
    results = asyncio.run(run())
    return {
        "acked": sum(r["acked"] for r in results),
        "latencies": [x for r in results for x in r["latencies"]],
        "cpu": time.process_time() - cpu_before,
    }


def run_phase(
    label: str, extra: tuple[str, ...] | None, phase: str, seconds: float, total_rate: float
) -> dict[str, float]:
    served = start_bare("edits") if extra is None else start_ours(*extra)
    try:
        if extra is not None:
            asyncio.run(create_board(served.url, BOARD["width"], BOARD["height"]))
        users = [f"u{n}" for n in range(CLIENTS)]
        groups = [users[i::PROCESSES] for i in range(PROCESSES)]
        start_at = time.perf_counter() + 1.5  # perf_counter is system-wide on Linux
        with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
            pending = pool.map_async(
                _worker,
                [
                    (
                        served.url,
                        g,
                        extra is not None,
                        phase,
                        seconds,
                        total_rate / CLIENTS,
                        start_at,
                    )
                    for g in groups
                ],
            )
            time.sleep(max(0.0, start_at - time.perf_counter()))
            cpu_before = cpu_seconds(served.proc.pid)
            time.sleep(seconds)
            server_cpu = cpu_seconds(served.proc.pid) - cpu_before
            parts = pending.get()
    finally:
        served.stop()
    latencies = [x for p in parts for x in p["latencies"]]
    return {
        "acked_per_s": sum(p["acked"] for p in parts) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "server_cpu_pct": 100 * server_cpu / seconds,
        "load_cpu_pct": 100 * sum(p["cpu"] for p in parts) / (seconds + 1.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    targets: list[tuple[str, tuple[str, ...] | None]] = [
        ("bare websockets relay", None),
        ("tui-collab, durability normal", ("--durability", "normal")),
        ("tui-collab, durability full", ("--durability", "full")),
    ]
    print(f"# edit storm: {CLIENTS} clients on one board; {machine()}")
    print(f"# medians of {args.repeats} runs of {args.seconds:.0f} s each\n")
    print(
        "| server | phase | acked edits/s | ack p50 ms | ack p99 ms | server CPU % | load CPU % |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for phase, rate in (("flood", 0.0), ("paced 1,000/s", 1000.0)):
        for label, extra in targets:
            runs = [
                run_phase(label, extra, phase.split()[0], args.seconds, rate)
                for _ in range(args.repeats)
            ]
            row = {k: median([r[k] for r in runs]) for k in runs[0]}
            print(
                f"| {label} | {phase} | {row['acked_per_s']:,.0f} | {row['p50_ms']:.2f} "
                f"| {row['p99_ms']:.2f} | {row['server_cpu_pct']:.0f} "
                f"| {row['load_cpu_pct']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

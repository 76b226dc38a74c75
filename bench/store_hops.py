"""Store ack latency with an idle and with a busy event loop.

    python -m bench.store_hops [--ops 2000] [--rate 200] [--busy-us 100] [--switch-interval S]

Every round trip between the event loop and the store's writer thread waits for the
loop's current iteration; on a loaded server that is where an edit's ack latency goes.
This applies cell ops to an embedded SQLiteStore on a fixed schedule and reports the
call-to-ack latency in three phases: nothing else on the loop; `flood`, a task burning
`--flood-us` of CPU `--flood-hz` times a second (a hostile client's frames); and `busy`,
a task burning `--busy-us` between bare yields, so the loop is never idle.

In `busy` the main thread holds the GIL almost always and releases it only for
microseconds; CPython's default 5 ms switch interval then lets the writer thread wait
seconds for it. `--switch-interval` sets `sys.setswitchinterval` to show that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.common import machine, percentile
from server.store import BoardRecord, SQLiteStore
from tui_collab.cells import CellOp


def _spin(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


async def _busy(busy_s: float) -> None:
    while True:
        _spin(busy_s)
        await asyncio.sleep(0)


async def _flood(hz: float, burst_s: float) -> None:
    due = time.perf_counter()
    while True:
        due += 1 / hz
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        _spin(burst_s)


async def _phase(
    store: SQLiteStore,
    label: str,
    ops: int,
    rate: float,
    clock: int,
    load: Callable[[], Coroutine[Any, Any, None]] | None,
) -> tuple[dict[str, float], int]:
    latencies: list[float] = []
    lags: list[float] = []

    async def one(n: int) -> None:
        op = CellOp(n % 64, (n // 64) % 64, f"v{n}", clock + n, "c-bench", "bench")
        started = time.perf_counter()
        await store.apply_cell_op("bench", "grid", op)
        latencies.append(time.perf_counter() - started)

    burner = None if load is None else asyncio.create_task(load())
    commits = store.commits
    tasks = []
    start = time.perf_counter() + 0.1
    try:
        for n in range(ops):
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            lags.append(max(0.0, time.perf_counter() - due))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    finally:
        if burner is not None:
            burner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await burner
    row = {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        "lag_p99_ms": percentile(lags, 99) * 1000,
        "ops_per_commit": ops / max(1, store.commits - commits),
    }
    print(
        f"| {label} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.2f} "
        f"| {row['lag_p99_ms']:.2f} | {row['ops_per_commit']:.2f} |",
        flush=True,
    )
    return row, clock + ops


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteStore(Path(directory), durability=args.durability)
        await store.open()
        try:
            await store.create_board(BoardRecord("bench", "grid", "Grid", 64, 64, "bench"))
            print(
                f"# store ack latency: {args.ops} ops at {args.rate:.0f}/s, "
                f"durability {args.durability}, switch interval "
                f"{sys.getswitchinterval() * 1000:g} ms; {machine()}\n"
            )
            print("| loop | ack p50 ms | ack p99 ms | ack max ms | loop lag p99 ms | ops/commit |")
            print("|---|---:|---:|---:|---:|---:|")
            phases: list[tuple[str, Callable[[], Coroutine[Any, Any, None]] | None]] = [
                ("idle", None),
                (
                    f"flood ({args.flood_hz:.0f}/s, {args.flood_us:.0f} µs CPU each)",
                    lambda: _flood(args.flood_hz, args.flood_us / 1e6),
                ),
                (
                    f"busy ({args.busy_us:.0f} µs CPU per yield)",
                    lambda: _busy(args.busy_us / 1e6),
                ),
            ]
            clock = 1
            for label, load in phases:
                _, clock = await _phase(store, label, args.ops, args.rate, clock, load)
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--busy-us", type=float, default=100.0)
    parser.add_argument("--flood-hz", type=float, default=800.0)
    parser.add_argument("--flood-us", type=float, default=300.0)
    parser.add_argument("--durability", choices=("normal", "full"), default="normal")
    parser.add_argument("--switch-interval", type=float, default=None)
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()

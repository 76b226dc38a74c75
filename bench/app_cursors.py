"""The board screen under load: 50 teammates moving their cursors 20 times a second.

    python -m bench.app_cursors [--movers 50] [--hz 20] [--seconds 10] [--repeats 3]

A server and the movers run in other processes; this process runs only the app
(headless, 120x40, real client, real rendering into Textual's compositor) and reports
its own CPU, how many cursor frames it handled, the worst event-loop lag, and how long
the grid takes to show the movers' final positions once they stop (a backlog shows up
as a long catch-up).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time

from bench.common import create_board, machine, start_ours
from tui_collab.app import CollabApp
from tui_collab.client import CollabClient
from tui_collab.protocol import Cursors


def _movers(url: str, count: int, hz: float, seconds: float, ready: object, go: object) -> None:
    async def run() -> None:
        clients = [CollabClient(url, user=f"m{n}", team="bench") for n in range(count)]
        for client in clients:
            await client.__aenter__()
            await client.join("grid")
        ready.set()  # type: ignore[attr-defined]
        while not go.is_set():  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)
        start = time.perf_counter()
        step = 0
        while time.perf_counter() - start < seconds:
            for n, client in enumerate(clients):
                client.move_cursor("grid", (n + step) % 26, (n * 3 + step) % 40)
            step += 1
            await asyncio.sleep(max(0.0, start + step / hz - time.perf_counter()))
        for n, client in enumerate(clients):  # a final, known position
            client.move_cursor("grid", n % 26, 39)
        await asyncio.sleep(1.0)
        for client in clients:
            await client.close()

    asyncio.run(run())


async def _measure(url: str, movers: int, hz: float, seconds: float) -> dict[str, float]:
    client = CollabClient(url, user="watcher", team="bench")
    app = CollabApp(client, board="grid")
    frames = 0

    def count(_: Cursors) -> None:
        nonlocal frames
        frames += 1

    client.on(Cursors, count)
    ctx = multiprocessing.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_movers, args=(url, movers, hz, seconds, ready, go))
    async with app.run_test(size=(120, 40)) as pilot:
        while app.grid.mirror is None:
            await pilot.pause(0.05)
        proc.start()
        while not ready.is_set():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        lag = 0.0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        go.set()
        frames = 0
        while time.perf_counter() - wall0 < seconds:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lag = max(lag, time.perf_counter() - before - 0.01)
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        handled = frames
        stop = time.perf_counter()
        final = {f"m{n}": (n % 26, 39) for n in range(movers)}
        while True:
            shown = {u: (c.x, c.y) for u, c in app.grid.remote.items()}
            if all(shown.get(u) == pos for u, pos in final.items()):
                break
            if time.perf_counter() - stop > 10:
                break
            await pilot.pause(0.005)
        catch_up = time.perf_counter() - stop
    proc.join(10)
    return {
        "cpu_pct": 100 * cpu / wall,
        "frames_per_s": handled / wall,
        "max_lag_ms": lag * 1000,
        "catch_up_ms": catch_up * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--movers", type=int, default=50)
    parser.add_argument("--hz", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        served = start_ours()
        try:
            asyncio.run(create_board(served.url, 26, 40))
            runs.append(asyncio.run(_measure(served.url, args.movers, args.hz, args.seconds)))
        finally:
            served.stop()
    print(f"# app under {args.movers} cursors at {args.hz:.0f} Hz; {machine()}")
    print(f"# medians of {args.repeats} runs of {args.seconds:.0f} s\n")
    print(
        "| app CPU % of one core | cursor frames handled/s | max loop lag ms "
        "| catch-up after stop ms |"
    )
    print("|---:|---:|---:|---:|")
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"| {med['cpu_pct']:.0f} | {med['frames_per_s']:.1f} | {med['max_lag_ms']:.0f} "
        f"| {med['catch_up_ms']:.0f} |"
    )


if __name__ == "__main__":
    main()

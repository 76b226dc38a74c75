"""Pasting a 1,000-cell block in the app: from the key to the last cell on a teammate's app.

    python -m bench.paste_app [--repeats 5] [--cells 1000]

Our server in its own process, with the limits a person's app gets (100 messages a
second, burst 200); two headless apps (Textual's `run_test`) in this process, Alice
and Bob, on one board. Each repeat puts a fresh TSV block of `--cells` values (40
columns wide) on Alice's clipboard and presses `p` with her cursor on A1; the clock
stops when Bob's app has every cell of the block and has processed the repaint that
followed (a frame, 1/60 s, at most, is the paint itself). Against it: the same block
as one `cell.set` per cell (`set_cell` for each, all at once), as the app pasted
before `cells.set`; it is timed the same way, on Bob's app.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Coroutine

from textual.pilot import Pilot

from bench.common import machine, median, start_ours
from tui_collab.app import CollabApp
from tui_collab.client import CollabClient

WIDTH = 40


def _app(url: str, user: str) -> CollabApp:
    return CollabApp(CollabClient(url, user=user, team="bench", name=user.title()), board="paste")


async def _until(pilot: Pilot[None], done: Callable[[], bool], limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the block did not arrive")
        await asyncio.sleep(0.002)
    await pilot.pause()  # Bob's app has handled what arrived and asked for its repaint


async def _run(url: str, cells: int, repeats: int) -> dict[str, list[float]]:
    height = (cells + WIDTH - 1) // WIDTH
    async with CollabClient(url, user="setup", team="bench") as setup:
        await setup.create_board("Paste", WIDTH, max(height, 40), board="paste")
    alice, bob = _app(url, "alice"), _app(url, "bob")
    block = [(n % WIDTH, n // WIDTH) for n in range(cells)]
    times: dict[str, list[float]] = {"p (one cells.set)": [], "cell.set x N": []}
    async with alice.run_test(size=(120, 40)) as at_alice, bob.run_test(size=(120, 40)) as at_bob:
        for app, pilot in ((alice, at_alice), (bob, at_bob)):
            await _until(pilot, lambda app=app: app.grid.mirror is not None, 30)  # type: ignore[misc]
        board = bob.client.joined["paste"]

        def arrived(tag: str) -> Callable[[], bool]:
            return lambda: all(board.cells.value(x, y).startswith(tag) for x, y in block)

        async def by_key(tag: str) -> None:
            rows: list[list[str]] = [[] for _ in range(height)]
            for x, y in block:
                rows[y].append(f"{tag}{x}-{y}")
            alice.clipboard_text = "\n".join("\t".join(row) for row in rows)
            alice.grid.move_to(0, 0)
            await at_alice.press("p")

        async def one_by_one(tag: str) -> None:
            client = alice.client
            await asyncio.gather(
                *(client.set_cell("paste", x, y, f"{tag}{x}-{y}") for x, y in block)
            )

        ways: dict[str, Callable[[str], Coroutine[None, None, None]]] = {
            "p (one cells.set)": by_key,
            "cell.set x N": one_by_one,
        }
        for repeat in range(repeats):
            for way, (name, paste) in enumerate(ways.items()):
                tag = f"r{repeat}w{way}:"
                started = time.perf_counter()
                sent = asyncio.create_task(paste(tag))
                await _until(at_bob, arrived(tag))
                times[name].append((time.perf_counter() - started) * 1000)
                await sent
                await _until(at_alice, lambda: not alice.client.pending("paste"))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cells", type=int, default=1000)
    args = parser.parse_args()
    served = start_ours("--rate", "100", "--burst", "200")
    try:
        times = asyncio.run(_run(served.url, args.cells, args.repeats))
    finally:
        served.stop()
    print(f"# {machine()}")
    print(f"# {args.cells} cells, median of {args.repeats} (ms, key to the last cell on Bob's app)")
    print("| paste | median ms | each run |")
    print("|---|---:|---|")
    for name, runs in times.items():
        each = ", ".join(f"{ms:,.0f}" for ms in runs)
        print(f"| {name} | {median(runs):,.1f} | {each} |")


if __name__ == "__main__":
    main()

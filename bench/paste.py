"""Pasting a 1,000-cell block: one `set_cells` call against 1,000 `set_cell` calls.

    python -m bench.paste [--repeats 5] [--cells 1000] [--limits lifted,default]

Our server in its own process; two `CollabClient`s on one board in this process, the
paster with a durable outbox as the app has. Each repeat pastes fresh values over the
same block and times from the call to the moment the second client's mirror holds the
last cell of it (the issue asks for keypress to the last cell on a second app's screen:
this measures the client library underneath, without the app and its repaint). Two
server settings: `lifted` (the per-connection rate limit lifted, as the other benches
run) and `default` (100 messages a second, burst 200: what a person's app gets, and
where one frame per cell is paced by the client under the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path

from bench.common import machine, median, start_ours
from tui_collab.client import CollabClient
from tui_collab.outbox import Outbox
from tui_collab.protocol import CellChanged, CellsChanged

WIDTH = 40


async def _run(url: str, cells: int, repeats: int, box: Path) -> dict[str, list[float]]:
    height = (cells + WIDTH - 1) // WIDTH
    outbox = Outbox.in_dir(box, url, "bench", "paster")
    async with (
        CollabClient(url, user="paster", team="bench", outbox=outbox) as paster,
        CollabClient(url, user="viewer", team="bench") as viewer,
    ):
        await paster.create_board("Paste", WIDTH, height, board="paste")
        await paster.join("paste")
        mirror = await viewer.join("paste")
        block = [(n % WIDTH, n // WIDTH) for n in range(cells)]
        arrived = asyncio.Event()
        prefix = [""]

        def check(_: object) -> None:
            # Every cell of this repeat's block shows on the viewer's mirror.
            last_x, last_y = block[-1]
            if not mirror.cells.value(last_x, last_y).startswith(prefix[0]):
                return
            if all(mirror.cells.value(x, y).startswith(prefix[0]) for x, y in block):
                arrived.set()

        viewer.on(CellChanged, check)
        viewer.on(CellsChanged, check)

        async def batched(tag: str) -> None:
            await paster.set_cells("paste", [(x, y, f"{tag}-{x}-{y}") for x, y in block])

        async def single(tag: str) -> None:
            await asyncio.gather(
                *(paster.set_cell("paste", x, y, f"{tag}-{x}-{y}") for x, y in block)
            )

        ways: dict[str, Callable[[str], Coroutine[None, None, None]]] = {
            "set_cells": batched,
            "set_cell x N": single,
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        for repeat in range(repeats):
            for way, (name, paste) in enumerate(ways.items()):
                tag = f"r{repeat}w{way}"
                prefix[0] = f"{tag}-"
                arrived.clear()
                started = time.perf_counter()
                acked = asyncio.create_task(paste(tag))
                await asyncio.wait_for(arrived.wait(), 120)
                times[name].append((time.perf_counter() - started) * 1000)
                await acked
    outbox.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--limits", default="lifted,default")
    args = parser.parse_args()
    print(f"# {machine()}")
    print(f"# {args.cells} cells, median of {args.repeats} (ms, call to last cell on the viewer)")
    print("| server rate limit | set_cells ms | set_cell x N ms | ratio |")
    print("|---|---:|---:|---:|")
    notes: list[str] = []
    for limits in args.limits.split(","):
        extra = ("--rate", "100", "--burst", "200") if limits == "default" else ()
        served = start_ours(*extra)
        try:
            with tempfile.TemporaryDirectory(prefix="bench-paste-") as box:
                times = asyncio.run(_run(served.url, args.cells, args.repeats, Path(box)))
        finally:
            served.stop()
        batch, single = median(times["set_cells"]), median(times["set_cell x N"])
        label = "lifted" if limits != "default" else "default (100/s, burst 200)"
        print(f"| {label} | {batch:,.1f} | {single:,.1f} | {single / batch:,.1f}x |")
        for name, runs in times.items():
            notes.append(f"# {label}, {name}, each run: " + ", ".join(f"{ms:,.0f}" for ms in runs))
    print("\n".join(notes))


if __name__ == "__main__":
    main()

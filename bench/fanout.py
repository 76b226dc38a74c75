"""What one frame to many peers costs the server, per peer: websockets' `broadcast`
against `Outbound.send`, which serializes the frame once and writes the same bytes to
each peer.

    python -m bench.fanout [--peers 1000] [--rounds 40]

A server on loopback holds `--peers` connections from a load process that reads and
drops every frame; each round sends one `cursors` frame of 100 positions (some 2.9 KB)
to all of them, by each method in turn, 50 ms apart. Reported: the server thread's CPU
per peer (which includes the kernel's loopback delivery, done in the sender's thread),
median over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Callable
from typing import cast

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.common import machine
from server.outbound import BacklogPolicy, Outbound
from server.peer import Peer


def _readers(port: int, count: int) -> None:
    async def one() -> None:
        async with connect(
            f"ws://127.0.0.1:{port}", proxy=None, max_size=None, ping_interval=None
        ) as ws:
            async for _ in ws:
                pass

    async def run() -> None:
        await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)

    asyncio.run(run())


def cursors_frame(positions: int) -> str:
    items = ",".join(f'{{"user":"u{n}","x":{n % 50},"y":{n % 30}}}' for n in range(positions))
    return f'{{"type":"cursors","board":"grid","cursors":[{items}]}}'


async def measure(peers: int, rounds: int) -> dict[str, float]:
    connected: list[ServerConnection] = []
    everyone = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        connected.append(ws)
        if len(connected) == peers:
            everyone.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None, backlog=2048) as server:
        port = server.sockets[0].getsockname()[1]
        load = multiprocessing.get_context("fork").Process(target=_readers, args=(port, peers))
        load.start()
        try:
            await asyncio.wait_for(everyone.wait(), 120)
            frame = cursors_frame(100)
            outbound = Outbound(BacklogPolicy())
            methods: dict[str, Callable[[], None]] = {
                "websockets broadcast": lambda: broadcast(connected, frame),
                "Outbound.send": lambda: outbound.send(cast(list[Peer], connected), frame),
            }
            costs: dict[str, list[float]] = {name: [] for name in methods}
            for _ in range(rounds):
                for name, send in methods.items():
                    started = time.thread_time()
                    send()
                    costs[name].append((time.thread_time() - started) / peers * 1e6)
                    await asyncio.sleep(0.05)
        finally:
            load.kill()
    return {name: statistics.median(values) for name, values in costs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    print(f"# one frame ({len(cursors_frame(100)):,} bytes) to {args.peers:,} peers; {machine()}")
    print(f"# server thread CPU per peer, median of {args.rounds} rounds\n")
    print("| method | µs per peer |\n|---|---:|")
    for name, micros in asyncio.run(measure(args.peers, args.rounds)).items():
        print(f"| {name} | {micros:.1f} |")


if __name__ == "__main__":
    main()

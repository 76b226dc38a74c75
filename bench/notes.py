"""Shared notes under 20 typists, and opening a 100,000-character document.

    python -m bench.notes [--typists 20] [--rate 5] [--seconds 20] [--repeats 3]
                          [--chars 100000]

Our server in its own process; every typist is a real `CollabClient` with the board's
notes open (`open_notes`), in this process. Each types `--rate` keys a second at the end
of its own line, with its own random phase, one Yjs update a key. A key's latency is
from the moment its update is made on the typist's replica to the moment another
typist's replica has applied it (`NotesChanged` from that typist, in arrival order:
the server keeps each sender's order); every key counts once per other typist. The
load generator shares the machine with the server: its own work (19 replicas applying
every key) is in the figures, as an app's would be, and its CPU is printed beside the
server's (percent of one core). Each run first waits (up to BENCH_QUIET_PATIENCE_S,
20 s) for the machine to idle, and says how busy it was.

Opening: a writer builds a document of `--chars` characters in 50-character updates,
the server is restarted on the same data directory, and a fresh client opens the notes
(cold: the server loads the document from its store), then another (warm: in memory).
Each time is from `open_notes` called to it returning with the whole text.

The bare relay (bench/bare_relay.py) relays only `cell.set` frames, so there is no bare
figure for notes here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.common import cpu_seconds, machine, median, percentile, start_ours, wait_for_quiet
from tui_collab.client import CollabClient
from tui_collab.events import NotesChanged
from tui_collab.notes import SharedNotes

BOARD = "notes"
WORDS = "the quick brown fox jumps over the lazy dog and types on "


@dataclass
class Typing:
    sent: dict[str, list[float]] = field(default_factory=dict)
    """Each typist's keys, by when their update was made (perf_counter)."""
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    """(receiver, typist): how many of the typist's keys the receiver has applied."""
    latencies_ms: list[float] = field(default_factory=list)
    late: int = 0
    """Arrivals with no key to match (never expected; counted, not guessed)."""


def line_end(text: str, user: str) -> int:
    """Where `user`'s line ends (their caret: they type at the end of it)."""
    start = text.index(f"{user}: ")
    end = text.find("\n", start)
    return len(text) if end < 0 else end


async def _typist(
    user: str, notes: SharedNotes, rate: float, seconds: float, typing: Typing
) -> int:
    rng = random.Random(user)
    await asyncio.sleep(rng.random() / rate)  # its own phase
    sent = typing.sent[user]
    keys = 0
    period = 1.0 / rate
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        key = WORDS[keys % len(WORDS)]
        text = str(notes.text)
        sent.append(time.perf_counter())
        notes.insert(line_end(text, user), key)
        keys += 1
        next_at = start + keys * period + rng.uniform(-0.2, 0.2) * period
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    return keys


async def _typing(url: str, typists: int, rate: float, seconds: float) -> tuple[Typing, int]:
    users = [f"t{n:02}" for n in range(typists)]
    typing = Typing(sent={u: [] for u in users})
    clients = [CollabClient(url, user=u, team="bench") for u in users]
    for client in clients:
        client.start()
        await client.wait_connected()
    await clients[0].create_board("Notes", 10, 10, board=BOARD)
    opened = [await c.open_notes(BOARD) for c in clients]
    opened[0].insert(0, "".join(f"{u}: \n" for u in users))
    await _settle(opened, lambda n: all(f"{u}: " in str(n.text) for u in users))

    for receiver, client in zip(users, clients, strict=True):

        def arrived(event: NotesChanged, receiver: str = receiver) -> None:
            if not event.remote or event.by not in typing.sent:
                return
            now = time.perf_counter()
            key = (receiver, event.by)
            n = typing.seen.get(key, 0)
            typing.seen[key] = n + 1
            sent = typing.sent[event.by]
            if n < len(sent):
                typing.latencies_ms.append((now - sent[n]) * 1000)
            else:
                typing.late += 1

        client.on(NotesChanged, arrived)

    keys = await asyncio.gather(
        *(_typist(u, n, rate, seconds, typing) for u, n in zip(users, opened, strict=True))
    )
    await _settle(opened, lambda n: n.unacked == 0)
    await _settle(opened, lambda n: str(n.text) == str(opened[0].text), timeout=10)
    texts = {str(n.text) for n in opened}
    if len(texts) != 1:
        raise SystemExit(f"replicas differ after typing: {len(texts)} texts")
    for client in clients:
        await client.close()
    return typing, sum(keys)


async def _settle(
    notes: list[SharedNotes], done: Callable[[SharedNotes], bool], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while not all(done(n) for n in notes):
        if time.monotonic() > deadline:
            raise SystemExit("replicas did not settle")
        await asyncio.sleep(0.02)


async def _build(url: str, chars: int) -> None:
    async with CollabClient(url, user="writer", team="bench") as writer:
        await writer.create_board("Notes", 10, 10, board=BOARD)
        notes = await writer.open_notes(BOARD)
        piece = (WORDS * 2)[:49] + "\n"
        for n in range(chars // len(piece)):
            notes.insert(n * len(piece), piece)
            if n % 100 == 99:
                await _settle([notes], lambda x: x.unacked == 0)
        await _settle([notes], lambda x: x.unacked == 0)


async def _open(url: str, user: str, chars: int) -> float:
    async with CollabClient(url, user=user, team="bench") as reader:
        started = time.perf_counter()
        notes = await reader.open_notes(BOARD)
        took = (time.perf_counter() - started) * 1000
        if len(str(notes.text)) < chars - 50:
            raise SystemExit(f"opened {len(str(notes.text))} characters, not {chars}")
        return took


def _opening(chars: int) -> tuple[float, float]:
    data_dir = tempfile.TemporaryDirectory(prefix="bench-notes-")
    served = start_ours(data_dir=data_dir)
    try:
        asyncio.run(_build(served.url, chars))
    finally:
        served.proc.terminate()
        served.proc.wait(10)
    port = int(served.url.rsplit(":", 1)[1].split("/")[0])
    served = start_ours(port=port, data_dir=data_dir)
    try:
        cold = asyncio.run(_open(served.url, "cold", chars))
        warm = asyncio.run(_open(served.url, "warm", chars))
    finally:
        served.stop()
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--typists", type=int, default=20)
    parser.add_argument("--rate", type=float, default=5.0, help="keys a second per typist")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chars", type=int, default=100_000)
    args = parser.parse_args()
    print(f"# {machine()}")
    print(
        f"# {args.typists} typists x {args.rate:g} keys/s for {args.seconds:g} s; "
        "latency = key made to another replica applied it"
    )
    print(
        "| run | machine busy % before | keys | deliveries | p50 ms | p99 ms | max ms "
        "| server CPU % | clients CPU % |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    p50s, p99s, cpus = [], [], []
    for repeat in range(args.repeats):
        quiet = wait_for_quiet()
        served = start_ours()
        try:
            before = cpu_seconds(served.proc.pid)
            ours = cpu_seconds(os.getpid())
            started = time.perf_counter()
            typing, keys = asyncio.run(_typing(served.url, args.typists, args.rate, args.seconds))
            wall = time.perf_counter() - started
            cpu = 100 * (cpu_seconds(served.proc.pid) - before) / wall
            clients_cpu = 100 * (cpu_seconds(os.getpid()) - ours) / wall
        finally:
            served.stop()
        lat = typing.latencies_ms
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        p50s.append(p50)
        p99s.append(p99)
        cpus.append(cpu)
        late = f" ({typing.late} unmatched)" if typing.late else ""
        print(
            f"| {repeat + 1} | {quiet:,.0f} | {keys:,} | {len(lat):,}{late} | {p50:,.1f} "
            f"| {p99:,.1f} | {max(lat):,.1f} | {cpu:,.0f} | {clients_cpu:,.0f} |"
        )
    p50, p99, cpu = median(p50s), median(p99s), median(cpus)
    print(f"| median | | | | {p50:,.1f} | {p99:,.1f} | | {cpu:,.0f} | |")
    print(f"\n# opening {args.chars:,} characters (ms, open_notes to the whole text)")
    print("| run | cold (server just started) | warm |")
    print("|---|---:|---:|")
    colds, warms = [], []
    for repeat in range(args.repeats):
        cold, warm = _opening(args.chars)
        colds.append(cold)
        warms.append(warm)
        print(f"| {repeat + 1} | {cold:,.1f} | {warm:,.1f} |")
    print(f"| median | {median(colds):,.1f} | {median(warms):,.1f} |")


if __name__ == "__main__":
    main()

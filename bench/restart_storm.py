"""Restart storm: N `CollabClient`s on one board, the server restarted under them.

    python -m bench.restart_storm [--clients 500] [--processes 4] [--repeats 1]

N clients of the client library (open mode, one user each, one team) spread over
`--processes` load processes connect and join board `grid`; once all have, each
sets a cell of its own every 5 to 15 s (seeded; `--edit-every-s` is the mean), at a
fresh position, so every acked edit must still be on the board at the end. After
`--before-s`, the server gets SIGTERM; once it has exited, it starts again on the
same port and data dir. Reported:

- shutdown: SIGTERM to exit; restart: exit to listening again;
- back: from SIGTERM until every client has its board again (a whole `board.state`
  after the restart), against the client's backoff cap (tui_collab/backoff.py);
  target: within the cap + 5 s;
- acked edits lost: every edit acked before, during or after the restart is looked up
  on the board read afresh at the end (target 0); edits still unacked at the end are
  counted apart;
- slow-consumer closes: how often the server closed a client that read too slowly
  (its log, both runs);
- CPU while the clients come back (from the restart to the last one back): the whole
  machine's and the server's, in % of one core: on a small machine the load
  processes, each client decoding every edit, can hold the cores the clients need;
- presence: one client also observes the team. After every event it compares the
  client library's presence mirror with the one before and counts, per user, the
  status changes it saw and the offline -> online transitions (target: none more than
  once per user).

Once every client has joined, each load process collects garbage as the server does
(`--load-gc settled`, server/collector.py): one of them holds the mirrors of 125
clients, a full collection walks them all and stops every one of them, where a
person's app walks only its own. `--load-gc default` keeps CPython's settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import queue
import random
import re
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

from bench.common import (
    STOLEN,
    CpuSampler,
    Served,
    create_board,
    machine,
    median,
    percentile,
    start_ours,
)
from server import collector
from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient
from tui_collab.client_state import ClientError, ClientState, NotConnected
from tui_collab.events import EventBus, Reconnecting, StateChanged
from tui_collab.protocol import BoardState, ProtocolError, Welcome, decode_server

WIDTH, HEIGHT = 256, 4096
SEED = 16
FLAGS = ("--max-board-participants", "2000", "--max-cells-per-board", "1000000")


class Shared:
    """Times and counters shared by the parent and the load processes (by fork)."""

    def __init__(self, ctx: Any) -> None:
        self.joined = ctx.Value("i", 0)
        self.back = ctx.Value("i", 0)
        self.edit_at = ctx.RawValue("d", 0.0)
        self.sigterm_at = ctx.RawValue("d", 0.0)
        self.stop_at = ctx.RawValue("d", 0.0)


async def everyone_joined(shared: Shared) -> None:
    """Return once the parent saw every client join (and set the edits going)."""
    while not shared.edit_at.value:
        await asyncio.sleep(0.05)


def _count(counter: Any) -> None:
    with counter.get_lock():
        counter.value += 1


async def member(
    url: str, n: int, shared: Shared, seed: int, observe: bool, cap_s: float, every_s: float
) -> dict[str, Any]:
    rng = random.Random(seed * 100_003 + n)
    backoff = Backoff(base_s=min(Backoff.base_s, cap_s), cap_s=cap_s, rng=rng)
    client = CollabClient(url, user=f"r{n}", team="bench", backoff=backoff)
    back_at = float("nan")
    acked: list[tuple[int, int, str]] = []
    unacked = 0
    transitions: Counter[str] = Counter()  # offline -> online, per user (observer only)
    changes: Counter[str] = Counter()  # status changes, per user (observer only)

    def on_state(_: BoardState) -> None:
        nonlocal back_at
        if shared.sigterm_at.value and back_at != back_at:  # NaN: not back yet
            back_at = time.perf_counter()
            _count(shared.back)

    client.on(BoardState, on_state)
    reasons: Counter[str] = Counter()  # why each reconnect after the SIGTERM happened

    def on_change(change: StateChanged) -> None:
        if shared.sigterm_at.value and isinstance(change.state, Reconnecting):
            reasons[re.sub(r"\d+", "N", change.state.reason)[:80]] += 1

    client.on(StateChanged, on_change)

    async def observe_presence() -> None:
        seen = {u: str(p.status) for u, p in client.presence.items()}
        async for _event in client.events():
            now = {u: str(p.status) for u, p in client.presence.items()}
            if now == seen:
                continue
            counting = shared.sigterm_at.value and (
                not shared.stop_at.value or time.perf_counter() < shared.stop_at.value
            )
            if counting:  # from SIGTERM until the editing stops (then clients leave)
                for user, status in now.items():
                    before = seen.get(user, "offline")
                    if status != before:
                        changes[user] += 1
                        if before == "offline":
                            transitions[user] += 1
            seen = now

    client.start()
    observer = asyncio.create_task(observe_presence()) if observe else None
    join_retries = 0
    while True:
        try:
            await client.wait_connected()
            await client.join("grid")
            break
        except (NotConnected, ConnectionError, ClientError):
            # The connection dropped during the join (a slow-consumer close, a timeout):
            # join again once the client is back, as an application would.
            join_retries += 1
            if join_retries > 50:
                raise
            await asyncio.sleep(0.1)
    _count(shared.joined)

    edits: list[asyncio.Task[Any]] = []

    async def edit(x: int, y: int, value: str) -> None:
        await client.set_cell("grid", x, y, value)
        acked.append((x, y, value))

    await everyone_joined(shared)  # edits start then
    k = 0
    while not shared.stop_at.value or time.perf_counter() < shared.stop_at.value:
        await asyncio.sleep(rng.uniform(0.5, 1.5) * every_s)
        x, y = k % WIDTH, (n + 1024 * (k // WIDTH)) % HEIGHT  # a fresh cell each time
        edits.append(asyncio.create_task(edit(x, y, f"r{n}-{k}")))
        k += 1
    if edits:
        await asyncio.wait(edits, timeout=15)  # the last acks, or give up on them
    unacked = sum(1 for t in edits if not t.done() or t.cancelled() or t.exception())
    final_state = type(client.state).__name__
    for task in edits:
        task.cancel()
    await client.close()
    if observer is not None:
        observer.cancel()
    return {
        "back_at": back_at,
        "acked": acked,
        "unacked": unacked,
        "attempts": client.attempts,
        "transitions": transitions,
        "changes": changes,
        "observer": observe,
        "join_retries": join_retries,
        "reasons": reasons,
        "final_state": final_state,
    }


def collect(out: Any, procs: list[Any], timeout_s: float) -> list[dict[str, Any]]:
    """Every load process's results; fails fast if one of them died."""
    results: list[list[dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    while len(results) < len(procs) and time.monotonic() < deadline:
        try:
            results.append(out.get(timeout=1.0))
        except queue.Empty:
            if sum(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("a load process failed") from None
    if len(results) < len(procs):
        raise RuntimeError("the load processes did not finish in time")
    return [r for part in results for r in part]


async def settle_once_joined(shared: Shared) -> None:
    """Once every client has joined, collect as the server does (server/collector.py).

    One process here stands for a crowd of separate ones: its heap holds every mirror
    of its clients, so each full collection walked all of them and stopped every one
    of its clients (48 of 150 ms each in one 500-client run, 7.3 s of the load's CPU).
    A person's app collects only its own.
    """
    await everyone_joined(shared)
    collector.settle()


def _worker(
    url: str,
    users: list[int],
    shared: Shared,
    seed: int,
    cap_s: float,
    every_s: float,
    out: Any,
    settle_gc: bool = True,
) -> None:
    async def run() -> list[dict[str, Any]]:
        settling = asyncio.create_task(settle_once_joined(shared)) if settle_gc else None
        try:
            return await asyncio.gather(
                *(member(url, n, shared, seed, n == 0, cap_s, every_s) for n in users)
            )
        finally:
            if settling is not None:
                settling.cancel()

    logging.getLogger("tui_collab").setLevel(logging.ERROR)  # reconnects are counted
    out.put(asyncio.run(run()))


async def board_cells(url: str) -> dict[tuple[int, int], str]:
    """The board as a new client sees it: every cell's value, by position."""
    async with connect(url, compression=None, max_size=None, open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "user": "verifier", "team": "bench"}))
        state = ClientState(EventBus(), lambda _delay, _callback: None)
        welcome = decode_server(await ws.recv())
        assert isinstance(welcome, Welcome)
        state.welcomed(welcome)
        await ws.send(json.dumps({"type": "board.join", "board": "grid", "id": "v"}))
        while True:
            try:
                message = decode_server(await ws.recv())
            except ProtocolError:
                continue
            state.handle(message)
            if isinstance(message, BoardState) and message.last:
                break
    return {(op.x, op.y): op.value for op in state.joined["grid"].cells}


def run_once(
    clients: int,
    processes: int,
    before_s: float,
    after_s: float,
    seed: int,
    cap_s: float = Backoff.cap_s,
    every_s: float = 10.0,
    settle_gc: bool = True,
) -> dict[str, Any]:
    data_dir = tempfile.TemporaryDirectory(prefix="tui-collab-restart-")
    log = Path(data_dir.name) / "server.log"
    served: Served = start_ours(*FLAGS, data_dir=data_dir, log=str(log))
    port = urlsplit(served.url).port or 0
    ctx = multiprocessing.get_context("fork")
    shared = Shared(ctx)
    procs: list[Any] = []
    row: dict[str, Any] = {}
    try:
        asyncio.run(create_board(served.url, WIDTH, HEIGHT))
        out = ctx.Queue()
        for i in range(processes):
            proc = ctx.Process(
                target=_worker,
                args=(
                    served.url,
                    list(range(i, clients, processes)),
                    shared,
                    seed,
                    cap_s,
                    every_s,
                    out,
                    settle_gc,
                ),
            )
            proc.start()
            procs.append(proc)
        started = time.perf_counter()
        while shared.joined.value < clients:
            if time.perf_counter() - started > 300:
                raise RuntimeError(f"only {shared.joined.value} of {clients} joined")
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("a load process failed")
            time.sleep(0.05)
        row["joined_s"] = time.perf_counter() - started
        shared.edit_at.value = time.perf_counter()
        whole = CpuSampler(0).start()
        stolen = CpuSampler(STOLEN).start()
        time.sleep(before_s)
        shared.sigterm_at.value = sigterm_at = time.perf_counter()
        served.proc.send_signal(signal.SIGTERM)
        served.proc.wait(60)
        exited_at = time.perf_counter()
        served = start_ours(*FLAGS, port=port, data_dir=data_dir, log=str(log))
        listening_at = time.perf_counter()
        server_cpu = CpuSampler(served.proc.pid).start()
        cap = cap_s
        while shared.back.value < clients:
            if time.perf_counter() - sigterm_at > cap + 120:
                break
            time.sleep(0.02)
        all_back_at = time.perf_counter()
        back_count = shared.back.value
        # Where the cores went while the clients came back: on a small machine the load
        # processes (every client decoding every edit) can hold them, not the server.
        row["machine_cpu_pct"] = whole.percent(listening_at, all_back_at)
        row["server_cpu_pct"] = server_cpu.percent(listening_at, all_back_at)
        row["stolen_cpu_pct"] = stolen.percent(listening_at, all_back_at)
        whole.stop()
        stolen.stop()
        server_cpu.stop()
        shared.stop_at.value = time.perf_counter() + after_s
        time.sleep(after_s)
        results = collect(out, procs, 600)
        for proc in procs:
            proc.join(30)
        cells = asyncio.run(board_cells(served.url))
        events = Counter(re.findall(r"event=(\w+)", log.read_text()))
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        served.stop()
    acked = [a for r in results for a in r["acked"]]
    lost = sum(1 for x, y, value in acked if cells.get((x, y)) != value)
    backs = [r["back_at"] - sigterm_at for r in results if r["back_at"] == r["back_at"]]
    observer = next(r for r in results if r["observer"])
    users = [f"r{n}" for n in range(clients)]
    row.update(
        {
            "shutdown_s": exited_at - sigterm_at,
            "restart_s": listening_at - exited_at,
            "all_back_s": all_back_at - sigterm_at,
            "back_p50_s": percentile(backs, 50),
            "back_p99_s": percentile(backs, 99),
            "back": back_count,
            "acked": len(acked),
            "lost": lost,
            "unacked": sum(r["unacked"] for r in results),
            "attempts_p50": median([r["attempts"] for r in results]),
            "attempts_max": max(r["attempts"] for r in results),
            "flapped": sum(1 for u in users if observer["transitions"][u] > 1),
            "changes_max": max((observer["changes"][u] for u in users), default=0),
            "changes_mean": sum(observer["changes"][u] for u in users) / clients,
            "cap_s": cap,
            "slow_closes": events["slow_consumer_close"],
            "server_events": dict(events.most_common(8)),
            "reasons": dict(sum((r["reasons"] for r in results), Counter()).most_common(6)),
            "final_states": dict(Counter(r["final_state"] for r in results)),
            "join_retries": sum(r["join_retries"] for r in results),
        }
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=500, help="CollabClients (500)")
    parser.add_argument("--processes", type=int, default=4, help="load processes (4)")
    parser.add_argument("--repeats", type=int, default=1, help="runs; medians")
    parser.add_argument("--before-s", type=float, default=5.0, help="editing before SIGTERM")
    parser.add_argument("--after-s", type=float, default=3.0, help="editing after all are back")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of backoff and edit timing")
    parser.add_argument(
        "--cap-s",
        type=float,
        default=Backoff.cap_s,
        help=f"the clients' backoff cap (the library's default: {Backoff.cap_s:.0f} s)",
    )
    parser.add_argument(
        "--edit-every-s", type=float, default=10.0, help="mean time between a client's edits"
    )
    parser.add_argument(
        "--load-gc",
        choices=("settled", "default"),
        default="settled",
        help="the load processes' collector once all joined: as the server's, or CPython's",
    )
    args = parser.parse_args()
    print(f"# restart storm: {args.clients} CollabClients in {args.processes} processes; ")
    print(f"# {machine()}; load processes' collector: {args.load_gc}")
    print(f"# medians of {args.repeats} run(s)\n")
    runs = []
    for _ in range(args.repeats):
        run = run_once(
            args.clients,
            args.processes,
            args.before_s,
            args.after_s,
            args.seed,
            args.cap_s,
            args.edit_every_s,
            args.load_gc == "settled",
        )
        print(f"<!-- run: {run} -->", flush=True)
        runs.append(run)
    row = {k: median([r[k] for r in runs]) for k in runs[0] if not isinstance(runs[0][k], dict)}
    print(
        "| clients | initial join s | shutdown s | restart s | all back s (cap) "
        "| back p50 / p99 s | acked edits | lost | unacked at end | attempts p50 / max "
        "| users flapping | status changes per user mean / max | slow-consumer closes "
        "| CPU % coming back: machine (stolen) / server |"
    )
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.clients} | {row['joined_s']:.1f} | {row['shutdown_s']:.2f} "
        f"| {row['restart_s']:.2f} | {row['all_back_s']:.1f} ({row['cap_s']:.0f} s) "
        f"| {row['back_p50_s']:.1f} / {row['back_p99_s']:.1f} | {row['acked']:,.0f} "
        f"| {row['lost']:.0f} | {row['unacked']:.0f} "
        f"| {row['attempts_p50']:.0f} / {row['attempts_max']:.0f} | {row['flapped']:.0f} "
        f"| {row['changes_mean']:.2f} / {row['changes_max']:.0f} | {row['slow_closes']:.0f} "
        f"| {row['machine_cpu_pct']:.0f} ({row['stolen_cpu_pct']:.0f}) "
        f"/ {row['server_cpu_pct']:.0f} |"
    )
    if row["back"] < args.clients:
        print(f"\n{args.clients - row['back']:.0f} clients were not back by the deadline")


if __name__ == "__main__":
    main()

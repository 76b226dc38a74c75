"""Scale-out: the edit storm and the cursor storm on 1 vs 2 server processes, one Redis.

    python -m bench.scaleout [--seconds 5] [--repeats 1] [--clients 200,500]
                             [--edit-clients 10,40]

Each run starts a fresh `redis-server` (tests/support/redis_server.py: append-only,
`appendfsync always`) and 1 or 2 nodes (`serve --redis URL`), creates the board through
node 0 and sends client i to node i % nodes, so with 2 nodes half of what every client
sees crossed Redis. The load is the one of bench/edits.py (N clients, 64 edits in flight
each, acks counted) and bench/cursors.py (N movers at 10 Hz, 10 of them also watch and
time every update they see), driven by 2 load processes.

Measured over the same window: acked edits/s or per-watcher frames, updates and latency;
the CPU of each node, of redis-server and of the load processes (/proc/<pid>/stat); and
the whole machine's busy CPU (/proc/stat), whose remainder is everything else running.
Each run first waits (up to 20 s) for the machine to idle. Capacity for edits is acked/s
with 2 nodes over acked/s with 1 node, in the same invocation.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench import cursors, edits
from bench.common import Served, cpu_seconds, create_board, machine, median, percentile, start_ours
from tests.support.redis_server import RedisServer

PROCESSES = 2
"""Load-generator processes: with 2 nodes, each drives the clients of one node."""
CURSOR_LEAD_S = 3.0
EDIT_LEAD_S = 1.5
NODE_FLAGS = (
    "--max-board-participants",
    "1000",
    "--max-unauthenticated-per-ip",
    "1000",
    "--max-upgrading-per-ip",
    "1000",
)
"""Every load client connects from 127.0.0.1 at once: lift the per-IP caps on sockets
that have not said hello yet (32) or are still upgrading (64), as --rate/--burst lift the
per-connection limit."""


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle so far (every process, the kernel too)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(busy_pct: float = 25.0, patience_s: float = 20.0) -> None:
    """Start a run once the machine idles (other programs share these cores), or after
    `patience_s`."""
    deadline = time.monotonic() + patience_s
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy = 100 * (machine_busy_seconds() - before)
        if busy <= busy_pct:
            return
        if time.monotonic() > deadline:
            print(
                f"# machine still {busy:.0f}% busy after {patience_s:.0f} s; running anyway",
                file=sys.stderr,
            )
            return


class Cluster:
    """A fresh redis-server and `nodes` server processes on it."""

    def __init__(self, nodes: int) -> None:
        wait_for_quiet()
        self.redis = RedisServer().start()
        self.nodes: list[Served] = []
        try:
            for _ in range(nodes):
                self.nodes.append(start_ours("--redis", self.redis.url, *NODE_FLAGS))
        except BaseException:
            self.close()
            raise

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def pids(self) -> list[int]:
        assert self.redis.proc is not None
        return [node.proc.pid for node in self.nodes] + [self.redis.proc.pid]

    def close(self) -> None:
        for node in self.nodes:
            if node.proc.poll() not in (None, 0, -15):
                print(f"# node exited with {node.proc.returncode}", file=sys.stderr, flush=True)
            node.stop()
        self.redis.close()


def groups_by_node(clients: int, nodes: int) -> list[tuple[int, list[int]]]:
    """Client i goes to node i % nodes; each node's clients split over the load processes."""
    per_node = max(1, PROCESSES // nodes)
    out: list[tuple[int, list[int]]] = []
    for node in range(nodes):
        mine = list(range(node, clients, nodes))
        out.extend((node, mine[p::per_node]) for p in range(per_node) if mine[p::per_node])
    return out


def children() -> set[int]:
    """Pids whose parent is this process (the nodes, redis-server and the pool workers)."""
    me, found = os.getpid(), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me:
            found.add(int(stat.parent.name))
    return found


def measure(
    cluster: Cluster,
    worker: Callable[[Any], dict[str, Any]],
    tasks: Sequence[Any],
    start_at: float,
    seconds: float,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run the load processes; read every CPU counter at the window's start and end."""
    pids = cluster.pids()
    with multiprocessing.get_context("fork").Pool(len(tasks)) as pool:
        pending = pool.map_async(worker, tasks)
        load = sorted(children() - set(pids))
        time.sleep(max(0.0, start_at - time.perf_counter()))
        before = [cpu_seconds(pid) for pid in pids + load]
        busy_before = machine_busy_seconds()
        time.sleep(seconds)
        after = [cpu_seconds(pid) for pid in pids + load]
        busy = machine_busy_seconds() - busy_before
        parts = pending.get(timeout=180)
    used = [100 * (a - b) / seconds for a, b in zip(after, before, strict=True)]
    served, redis, generators = used[: len(pids) - 1], used[len(pids) - 1], used[len(pids) :]
    cpu = {f"node{i}_cpu_pct": pct for i, pct in enumerate(served)}
    cpu["nodes_cpu_pct"] = sum(served)
    cpu["redis_cpu_pct"] = redis
    cpu["load_cpu_pct"] = sum(generators)
    cpu["machine_cpu_pct"] = 100 * busy / seconds
    cpu["other_cpu_pct"] = cpu["machine_cpu_pct"] - sum(used)
    return parts, cpu


def run_edits(nodes: int, seconds: float, clients: int) -> dict[str, float]:
    cluster = Cluster(nodes)
    try:
        asyncio.run(create_board(cluster.urls[0], edits.BOARD["width"], edits.BOARD["height"]))
        start_at = time.perf_counter() + EDIT_LEAD_S  # perf_counter is system-wide on Linux
        tasks = [
            (cluster.urls[node], [f"u{i}" for i in group], True, "flood", seconds, 0.0, start_at)
            for node, group in groups_by_node(clients, nodes)
        ]
        parts, cpu = measure(cluster, edits._worker, tasks, start_at, seconds)
    finally:
        cluster.close()
    latencies = [x for p in parts for x in p["latencies"]]
    return {
        "acked_per_s": sum(p["acked"] for p in parts) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        **cpu,
    }


def run_cursors(nodes: int, clients: int, seconds: float) -> dict[str, float]:
    cluster = Cluster(nodes)
    movers = set(range(clients))
    watchers = set(range(min(cursors.WATCHERS, clients)))
    try:
        asyncio.run(create_board(cluster.urls[0], cursors.WIDTH, cursors.HEIGHT))
        start_at = time.perf_counter() + CURSOR_LEAD_S + clients / 200  # time to join
        tasks = [
            (
                cluster.urls[node],
                group,
                clients,
                True,
                watchers,
                movers,
                start_at,
                seconds,
                1 / cursors.HZ,
            )
            for node, group in groups_by_node(clients, nodes)
        ]
        parts, cpu = measure(cluster, cursors._worker, tasks, start_at, seconds)
    finally:
        cluster.close()
    return {**cursors.summarize(parts, seconds), **cpu}


def repeat(run: Callable[[], dict[str, float]], repeats: int) -> tuple[dict[str, float], str]:
    """Medians over the runs that completed, and a note on those that did not."""
    runs: list[dict[str, float]] = []
    failures: list[str] = []
    for _ in range(repeats):
        try:
            runs.append(run())
        except Exception as exc:  # a client refused or cut off: report it, keep going
            failures.append(f"{type(exc).__name__}: {exc}")
            print(f"# run failed: {failures[-1]}", file=sys.stderr, flush=True)
    note = f" ({len(failures)} of {repeats} runs failed)" if failures else ""
    if not runs:
        return {}, note
    return {k: median([r[k] for r in runs]) for k in runs[0]}, note


def cpu_cells(row: dict[str, float], nodes: int) -> str:
    per_node = " + ".join(f"{row[f'node{i}_cpu_pct']:.0f}" for i in range(nodes))
    return (
        f"{per_node} | {row['redis_cpu_pct']:.0f} | {row['load_cpu_pct']:.0f} "
        f"| {row['other_cpu_pct']:.0f} | {row['machine_cpu_pct']:.0f}"
    )


CPU_HEADER = "node CPU % | redis CPU % | load CPU % | other CPU % | machine CPU %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--clients", default="200,500", help="cursor storm sizes, comma-separated")
    parser.add_argument("--edit-clients", default="10,40", help="edit storm sizes, comma-separated")
    args = parser.parse_args()
    storms = [int(c) for c in args.clients.split(",")]
    cores = os.cpu_count() or 1
    print(f"# scale-out, 1 vs 2 nodes on one redis-server (appendfsync always); {machine()}")
    print(
        f"# {cores} cores shared by the {PROCESSES} load processes, redis-server and the "
        f"node(s): {100 * cores}% CPU in all; CPU % is of one core, 'other' is the rest "
        "of the machine (kernel, other programs)"
    )
    print(f"# medians of {args.repeats} run(s) of {args.seconds:.0f} s\n")

    print(
        "Edit storm: N clients on one board, 64 edits in flight each\n\n"
        "| N | nodes | acked edits/s | capacity | ack p50 ms | ack p99 ms | node CPU µs/edit "
        f"| {CPU_HEADER} |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for clients in (int(c) for c in args.edit_clients.split(",")):
        base = float("nan")
        for nodes in (1, 2):
            row, note = repeat(partial(run_edits, nodes, args.seconds, clients), args.repeats)
            if not row:
                print(f"| {clients} | {nodes} | all runs failed{note} |", flush=True)
                continue
            if nodes == 1:
                base = row["acked_per_s"]
            per_edit = 1e4 * row["nodes_cpu_pct"] / row["acked_per_s"]
            print(
                f"| {clients} | {nodes} | {row['acked_per_s']:,.0f} "
                f"| {row['acked_per_s'] / base:.2f}x | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} "
                f"| {per_edit:.0f} | {cpu_cells(row, nodes)} |{note}",
                flush=True,
            )

    print(
        f"\nCursor storm: N clients at {cursors.HZ:.0f} Hz each on one board; "
        f"{cursors.WATCHERS} of them time what they see (frames and updates per watcher)\n\n"
        "| N | nodes | frames/s | updates/s | p50 ms | p99 ms | max ms "
        f"| {CPU_HEADER} |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for clients in storms:
        for nodes in (1, 2):
            row, note = repeat(partial(run_cursors, nodes, clients, args.seconds), args.repeats)
            if not row:
                print(f"| {clients} | {nodes} | all runs failed{note} |", flush=True)
                continue
            print(
                f"| {clients} | {nodes} | {row['frames_per_s']:.1f} "
                f"| {row['updates_per_s']:,.0f} | {row['p50_ms']:.1f} "
                f"| {row['p99_ms']:.1f} | {row['max_ms']:.0f} | {cpu_cells(row, nodes)} |{note}",
                flush=True,
            )


if __name__ == "__main__":
    main()

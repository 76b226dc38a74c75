"""Cursor storm and lone moves: delivery, latency and server CPU against a bare relay.

    python -m bench.cursors [--clients 10,50,200,500] [--seconds 10] [--repeats 3]
    python -m bench.cursors --lockstep [--clients ...]   # the burst case, as before

People-timed (the default): N clients on one board connect at once; each moves 10
times a second on its own phase, drawn at random (`--seed`, so runs repeat), from the
first tick after its own join, so the joins overlap the moves as they do when a crowd
arrives. The protocol carries no timestamps, so each mover walks a known path (at tick
k it moves to the cell that encodes k) and every process shares one monotonic clock: a
watcher that sees user u at a cell knows when that move was due. 10 clients watch.
Reported twice: while the others join (from the release to the last `board.state`),
and for `--seconds` after the last has joined. Delivered/expected counts the moves the
watchers saw against those the movers sent after each watcher had joined. Server CPU
is sampled from /proc every 100 ms, so each window gets its own.

Lockstep (`--lockstep`): everyone joins first; then all move on one schedule spread
evenly over the 100 ms tick, which fills each 50 ms window alike and flatters any
coalescing server: the burst case. Lone: one mover on a quiet board, a move every
200 ms, one watcher (lockstep only).

Each against our server and a bare websockets relay that coalesces the same way
(50 ms, leading edge) and answers hello and join with a small frame each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.common import (
    STOLEN,
    CpuSampler,
    Run,
    Served,
    alternate,
    cpu_seconds,
    create_board,
    frame_type,
    machine,
    median,
    paired_summary,
    percentile,
    start_bare,
    start_ours,
    wait_for_quiet,
)
from tui_collab.client_state import ClientState
from tui_collab.events import EventBus
from tui_collab.protocol import ProtocolError, Welcome, decode_server

WIDTH, HEIGHT = 256, 4096
HZ = 10.0
WATCHERS = 10
PROCESSES = 2


def cell_for(tick: int) -> tuple[int, int]:
    return tick % WIDTH, (tick // WIDTH) % HEIGHT


def tick_of(x: int, y: int) -> int:
    return y * WIDTH + x


def phase(n: int, clients: int) -> float:
    """Movers are spread evenly over the 100 ms tick, as independent people would be."""
    return (n / max(1, clients)) / HZ


async def _open(url: str, user: str, ours: bool) -> ClientConnection:
    ws = await connect(
        url, compression=None, max_size=None, max_queue=None, open_timeout=60, ping_interval=None
    )
    if ours:
        await ws.send(json.dumps({"type": "hello", "v": 1, "user": user, "team": "bench"}))
        await ws.recv()
        await ws.send(json.dumps({"type": "board.join", "board": "grid", "id": "j"}))
        while '"board.state"' not in str(await ws.recv()):
            pass
    return ws


async def _client(
    url: str,
    n: int,
    clients: int,
    ours: bool,
    watch: bool,
    move: bool,
    start_at: float,
    seconds: float,
    period: float,
) -> dict[str, Any]:
    user = f"u{n}"
    ws = await _open(url, user, ours)
    latencies: list[float] = []
    frames = updates = 0
    offset = phase(n, clients) if move else 0.0
    mover_phase = {f"u{i}": phase(i, clients) for i in range(clients)}

    async def receive() -> None:
        nonlocal frames, updates
        async for raw in ws:
            if not watch:
                continue
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") != "cursors":
                continue
            if now < start_at or now > start_at + seconds:
                continue
            frames += 1
            for cursor in message["cursors"]:
                sender = cursor["user"]
                if sender == user or sender not in mover_phase:
                    continue
                updates += 1
                tick = tick_of(cursor["x"], cursor["y"])
                sent = start_at + mover_phase[sender] + tick * period
                latencies.append(now - sent)

    reader = asyncio.create_task(receive())
    if move:
        tick = 0
        while True:
            due = start_at + offset + tick * period
            if due > start_at + seconds:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            x, y = cell_for(tick)
            frame = {"type": "cursor.move", "board": "grid", "x": x, "y": y}
            if not ours:
                frame["user"] = user
            await ws.send(json.dumps(frame))
            tick += 1
    else:
        await asyncio.sleep(max(0.0, start_at + seconds - time.perf_counter()))
    await asyncio.sleep(0.5)
    reader.cancel()
    await ws.close()
    return {"latencies": latencies, "frames": frames, "updates": updates}


def _worker(args: tuple[Any, ...]) -> dict[str, Any]:
    url, indices, clients, ours, watchers, movers, start_at, seconds, period = args

    async def run() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(
                _client(
                    url, n, clients, ours, n in watchers, n in movers, start_at, seconds, period
                )
                for n in indices
            )
        )

    cpu = time.process_time()
    parts = asyncio.run(run())
    return {
        "latencies": [x for p in parts for x in p["latencies"]],
        "frames": sum(p["frames"] for p in parts),
        "updates": sum(p["updates"] for p in parts),
        "watching": sum(1 for n in indices if n in watchers),
        "cpu": time.process_time() - cpu,
    }


# --- people's timing ---------------------------------------------------------------

SEED = 16
"""Default seed of the movers' phases: runs are reproducible, movers are not in step."""


def random_phases(users: list[str], period: float, seed: int) -> dict[str, float]:
    """Each mover's own offset within the period, drawn once (seeded)."""
    rng = random.Random(seed)
    return {user: rng.uniform(0.0, period) for user in users}


@dataclass
class Plan:
    """What every load process knows, fixed before the fork."""

    url: str
    ours: bool
    base: float
    """perf_counter time the schedule counts from (system-wide on Linux); the members
    connect then."""
    period: float
    phases: dict[str, float]
    """Movers only: user -> offset in the period. Move k of user u is due at
    base + phases[u] + k * period and goes to cell_for(k)."""
    watchers: frozenset[str]
    record: bool = False
    """Keep every frame but `cursors`, to rebuild each client's roster afterwards."""
    truth_path: str = ""
    """Where the parent writes the server's roster and presence (when `record`)."""


class Shared:
    """Counters and times shared by the parent and the load processes (by fork)."""

    def __init__(self, ctx: Any) -> None:
        self.joined = ctx.Value("i", 0)
        """Clients that have their whole `board.state`."""
        self.failed = ctx.Value("i", 0)
        """Clients whose connection ended before they had joined."""
        self.stop_at = ctx.RawValue("d", 0.0)
        """Movers send no move due after this; 0 while not known yet."""
        self.joiners_at = ctx.RawValue("d", 0.0)
        """When the joiners (if any) connect, all at once; 0 while not known yet."""
        self.snapshot_at = ctx.RawValue("d", 0.0)
        """Clients keep no frame that arrives after this (the roster check's moment)."""
        self.close_at = ctx.RawValue("d", 0.0)
        """Clients close their sockets."""


async def _until(value: Any) -> float:
    """Wait for a shared time to be set and reached; return it."""
    while value.value == 0.0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(max(0.0, value.value - time.perf_counter()))
    return float(value.value)


async def person(plan: Plan, shared: Shared, user: str, joiner: bool) -> dict[str, Any]:
    """One client: connect, say hello, join, then move on its own phase (if a mover)
    from the first tick after its join, watch `cursors` (if a watcher) and count every
    frame by type. A connection the server closes is counted (`dropped`), not fatal."""
    result: dict[str, Any] = {
        "user": user,
        "joiner": joiner,
        "join_s": float("nan"),
        "joined_at": float("nan"),
        "sent": [],
        "skipped": 0,
        "samples": [],
        "watching": user in plan.watchers,
        "frames": Counter(),
        "kept": [],
        "dropped": False,
    }
    try:
        await _person(plan, shared, result)
    except (ConnectionClosed, OSError, TimeoutError) as exc:
        result["dropped"] = f"{type(exc).__name__}: {exc}"
        if result["joined_at"] != result["joined_at"]:  # NaN: never joined
            with shared.failed.get_lock():
                shared.failed.value += 1
        await _until(shared.close_at)
    return result


async def _person(plan: Plan, shared: Shared, result: dict[str, Any]) -> None:
    user, joiner = result["user"], result["joiner"]
    if joiner:
        await _until(shared.joiners_at)
    else:
        await asyncio.sleep(max(0.0, plan.base - time.perf_counter()))
    started = time.perf_counter()
    ws = await connect(
        plan.url,
        compression=None,
        max_size=None,
        max_queue=None,
        open_timeout=120,
        ping_interval=None,
        close_timeout=1,
        # Without it each connect reads every environment variable looking for a proxy:
        # a fifth of a load process's time during a storm of connects.
        proxy=None,
    )
    await ws.send(json.dumps({"type": "hello", "v": 1, "user": user, "team": "bench"}))
    welcome = await ws.recv()
    frames: Counter[str] = result["frames"]
    frames[frame_type(welcome)] += 1
    kept: list[str | bytes] = result["kept"]
    if plan.record:
        kept.append(welcome)
    joined = asyncio.Event()
    watch = user in plan.watchers
    seen: set[tuple[str, int]] = set()
    samples: list[tuple[str, int, float]] = result["samples"]  # (mover, tick, latency)

    async def receive() -> None:
        async for raw in ws:
            now = time.perf_counter()
            kind = frame_type(raw)
            frames[kind] += 1
            if kind == "cursors":
                if watch and joined.is_set():
                    for cursor in json.loads(raw)["cursors"]:
                        sender = cursor["user"]
                        mover_phase = plan.phases.get(sender)
                        if mover_phase is None or sender == user:
                            continue
                        tick = tick_of(cursor["x"], cursor["y"])
                        key = (sender, tick)
                        if key not in seen:
                            seen.add(key)
                            due = plan.base + mover_phase + tick * plan.period
                            samples.append((sender, tick, now - due))
                continue
            if plan.record and shared.snapshot_at.value == 0.0:
                kept.append(raw)
            if kind == "board.state" and not joined.is_set():
                part, parts = snapshot_part(raw)
                if part >= parts - 1:
                    result["joined_at"] = now
                    result["join_s"] = now - started
                    joined.set()
                    with shared.joined.get_lock():
                        shared.joined.value += 1

    reader = asyncio.create_task(receive())
    await ws.send(json.dumps({"type": "board.join", "board": "grid", "id": "j"}))
    await asyncio.wait(
        {reader, asyncio.ensure_future(joined.wait())}, return_when="FIRST_COMPLETED"
    )
    if reader.done():
        reader.result()  # raises why the connection ended
        raise ConnectionClosed(None, None)
    sent: list[tuple[int, float]] = result["sent"]  # (tick, when it went out)
    offset = plan.phases.get(user)
    if offset is not None:
        tick = max(0, math.ceil((time.perf_counter() - plan.base - offset) / plan.period))
        while True:
            due = plan.base + offset + tick * plan.period
            stop = shared.stop_at.value
            if stop and due > stop:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > plan.period:
                # A whole tick late (the load process is behind): skip it, as a person
                # would, rather than send a burst of stale moves.
                result["skipped"] += 1
                tick += 1
                continue
            x, y = cell_for(tick)
            await ws.send(json.dumps({"type": "cursor.move", "board": "grid", "x": x, "y": y}))
            sent.append((tick, time.perf_counter()))
            tick += 1
    await _until(shared.close_at)
    reader.cancel()
    ws.transport.abort()


_PART = re.compile(r'"part":(\d+)')
_PARTS = re.compile(r'"parts":(\d+)')


def snapshot_part(raw: str | bytes) -> tuple[int, int]:
    """A `board.state`'s part and parts, read from its head without parsing the rest:
    at 1,200 participants a part 0 is some 65 KB a joiner need not parse to know it is
    in, and a storm's load processes share the cores with the server they measure."""
    text = raw if isinstance(raw, str) else raw.decode()
    head = text[: text.find('"participants"')] if '"participants"' in text else text
    part, parts = _PART.search(head), _PARTS.search(head)
    return (int(part.group(1)) if part else 0), (int(parts.group(1)) if parts else 1)


def roster(frames: list[str | bytes]) -> tuple[set[str], dict[str, str]]:
    """The board's participants and the team's presence a client has after `frames`,
    rebuilt with the client library's own state machine, whatever frame types the
    server sends."""
    state = ClientState(EventBus(), lambda _delay, _callback: None)
    for raw in frames:
        try:
            message = decode_server(raw)
        except ProtocolError:
            continue
        if isinstance(message, Welcome):
            state.welcomed(message)
        else:
            state.handle(message)
    mirror = state.joined.get("grid")
    participants = set(mirror.participants) if mirror is not None else set()
    return participants, {user: str(p.status) for user, p in state.presence.items()}


def _compare(parts: list[dict[str, Any]], truth_path: str) -> dict[str, int]:
    """Each client's rebuilt roster and presence against the server's."""
    deadline = time.monotonic() + 120
    while not os.path.exists(truth_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    truth = json.loads(Path(truth_path).read_text())
    participants, presence = set(truth["participants"]), truth["presence"]
    out = Counter(roster_mismatch=0, presence_mismatch=0, missing=0, extra=0)
    for part in parts:
        mine, statuses = roster(part.pop("kept"))
        if mine != participants:
            out["roster_mismatch"] += 1
            out["missing"] += len(participants - mine)
            out["extra"] += len(mine - participants)
        if statuses != presence:
            out["presence_mismatch"] += 1
    return dict(out)


def _people_worker(
    plan: Plan, shared: Shared, members: list[str], joiners: list[str], out: Any
) -> None:
    async def run() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(person(plan, shared, u, False) for u in members),
            *(person(plan, shared, u, True) for u in joiners),
        )

    cpu = time.process_time()
    parts = asyncio.run(run())
    result: dict[str, Any] = {"cpu": time.process_time() - cpu, "parts": parts}
    if plan.record:
        result["check"] = _compare(parts, plan.truth_path)
    else:
        for part in parts:
            part.pop("kept")
    out.put(result)


async def server_roster(url: str, user: str) -> dict[str, Any]:
    """The server's view: a second connection of an existing member (which changes no
    roster) reads `welcome` and the board's `board.state`."""
    async with connect(url, compression=None, max_size=None, open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "user": user, "team": "bench"}))
        frames: list[str | bytes] = [await ws.recv()]
        await ws.send(json.dumps({"type": "board.join", "board": "grid", "id": "truth"}))
        while True:
            raw = await ws.recv()
            frames.append(raw)
            if frame_type(raw) == "board.state":
                message = json.loads(raw)
                if message.get("part", 0) >= message.get("parts", 1) - 1:
                    break
    participants, presence = roster(frames)
    return {"participants": sorted(participants), "presence": presence}


def wait_joined(shared: Shared, count: int, timeout_s: float, procs: list[Any]) -> float:
    """Wait until `count` clients have their board.state; the time the last did."""
    deadline = time.perf_counter() + timeout_s
    while shared.joined.value + shared.failed.value < count:
        if time.perf_counter() > deadline or not all(p.is_alive() for p in procs):
            raise RuntimeError(f"only {shared.joined.value} of {count} clients joined")
        time.sleep(0.005)
    return time.perf_counter()


def collect(out: Any, procs: list[Any], timeout_s: float = 300) -> list[dict[str, Any]]:
    results = [out.get(timeout=timeout_s) for _ in procs]
    for proc in procs:
        proc.join(30)
    return results


def window_stats(
    plan: Plan, parts: list[dict[str, Any]], start: float, end: float
) -> dict[str, float]:
    """Latency and delivery of the moves due in [start, end], on every watcher.

    Expected: every move another mover sent in the window after the watcher had joined.
    Delivered: those whose position the watcher saw. A coalescing server rightly sends
    only a mover's latest position per window, so a move not seen is superseded when
    the watcher later saw a newer move of the same mover, and lost when it never did
    (by the time the clients closed, 2 s after the last move)."""
    watchers = [p for p in parts if p["watching"]]
    movers = [p for p in parts if p["sent"]]
    latencies: list[float] = []
    delivered = expected = lost = 0

    def due(user: str, tick: int) -> float:
        return plan.base + plan.phases[user] + tick * plan.period

    for w in watchers:
        since = max(start, w["joined_at"])
        seen: set[tuple[str, int]] = set()
        newest: dict[str, int] = {}
        for sender, tick, latency in w["samples"]:
            newest[sender] = max(tick, newest.get(sender, -1))
            if since <= due(sender, tick) <= end:
                latencies.append(latency)
                seen.add((sender, tick))
        delivered += len(seen)
        for m in movers:
            if m["user"] == w["user"]:
                continue
            for tick, _at in m["sent"]:
                if since <= due(m["user"], tick) <= end:
                    expected += 1
                    lost += newest.get(m["user"], -1) < tick
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "delivered": delivered,
        "expected": expected,
        "lost": lost,
        "delivered_pct": 100 * delivered / expected if expected else float("nan"),
    }


def people_flags(participants: int) -> tuple[str, ...]:
    """Our server's flags for a board of `participants` people. The keepalive is lifted
    (as bench.connections does): on a shared 2-core machine the load processes can fall
    more than the default 10 s behind reading a join storm's frames, and the server
    would then close them for a late pong, which measures the load generator."""
    return ("--max-board-participants", str(max(1000, participants + 10)), "--ping-interval", "600")


def start_server(ours: bool, participants: int) -> Served:
    if ours:
        return start_ours(*people_flags(participants))
    return start_bare("people")


def run_people(
    ours: bool, clients: int, seconds: float, seed: int, processes: int = PROCESSES
) -> dict[str, float]:
    """People-timed storm: every client connects at once and moves from its join on,
    on its own phase; measured while the others join and for `seconds` after the last
    has joined."""
    served = start_server(ours, clients)
    ctx = multiprocessing.get_context("fork")
    shared = Shared(ctx)
    users = [f"u{n}" for n in range(clients)]
    procs: list[Any] = []
    try:
        if ours:
            asyncio.run(create_board(served.url, WIDTH, HEIGHT))
        quiet = wait_for_quiet()
        sampler = CpuSampler(served.proc.pid).start()
        whole = CpuSampler(0).start()
        stolen = CpuSampler(STOLEN).start()
        plan = Plan(
            served.url,
            ours,
            time.perf_counter() + 1.0,
            1 / HZ,
            random_phases(users, 1 / HZ, seed),
            frozenset(users[:WATCHERS]),
        )
        out = ctx.Queue()
        for i in range(processes):
            proc = ctx.Process(
                target=_people_worker, args=(plan, shared, users[i::processes], [], out)
            )
            proc.start()
            procs.append(proc)
        all_joined = wait_joined(shared, clients, 300, procs)
        shared.stop_at.value = stop = all_joined + seconds
        time.sleep(max(0.0, stop + 2.0 - time.perf_counter()))
        shared.close_at.value = time.perf_counter()
        results = collect(out, procs)
        sampler.stop()
        whole.stop()
        stolen.stop()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        served.stop()
    parts = [p for r in results for p in r["parts"]]
    row: dict[str, float] = {
        "all_joined_s": all_joined - plan.base,
        "load_cpu_pct": 100 * sum(r["cpu"] for r in results) / (stop + 2 - plan.base),
        "skipped": sum(p["skipped"] for p in parts),
        "busy_before_pct": quiet,
        "dropped": sum(1 for p in parts if p["dropped"]),
    }
    for name, (start, end) in {
        "joins": (plan.base, all_joined),
        "after": (all_joined, stop),
    }.items():
        for key, value in window_stats(plan, parts, start, end).items():
            row[f"{name}_{key}"] = value
        row[f"{name}_cpu_pct"] = sampler.percent(start, end)
        row[f"{name}_machine_pct"] = whole.percent(start, end)
        row[f"{name}_stolen_pct"] = stolen.percent(start, end)
    return row


def run_lockstep(ours: bool, clients: int, seconds: float, lone: bool) -> dict[str, float]:
    served = start_ours("--max-board-participants", "1000") if ours else start_bare("cursors")
    period = 0.2 if lone else 1 / HZ
    movers = {0} if lone else set(range(clients))
    watchers = {1} if lone else set(range(min(WATCHERS, clients)))
    total = 2 if lone else clients
    try:
        if ours:
            asyncio.run(create_board(served.url, WIDTH, HEIGHT))
        processes = 1 if lone else PROCESSES
        groups = [list(range(total))[i::processes] for i in range(processes)]
        start_at = time.perf_counter() + 3.0 + total / 200  # time for everyone to join
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pending = pool.map_async(
                _worker,
                [
                    (served.url, g, total, ours, watchers, movers, start_at, seconds, period)
                    for g in groups
                ],
            )
            time.sleep(max(0.0, start_at - time.perf_counter()))
            cpu0 = cpu_seconds(served.proc.pid)
            time.sleep(seconds)
            server_cpu = cpu_seconds(served.proc.pid) - cpu0
            parts = pending.get(timeout=120)
    finally:
        served.stop()
    # Each watcher should see every other mover's every move: (movers - 1) / period a
    # second in the storm (watchers move too), 1 / period for the lone mover.
    expected_per_s = (1 if lone else len(movers) - 1) / period
    summary = summarize(parts, seconds)
    return {
        **summary,
        "delivered_pct": 100 * summary["updates_per_s"] / expected_per_s,
        "server_cpu_pct": 100 * server_cpu / seconds,
        "load_cpu_pct": 100 * sum(p["cpu"] for p in parts) / (seconds + 3),
    }


def summarize(parts: list[dict[str, Any]], seconds: float) -> dict[str, float]:
    """Delivery per watching client and latency, from every worker's share."""
    latencies = [x for p in parts for x in p["latencies"]]
    watching = sum(p["watching"] for p in parts)
    return {
        "frames_per_s": sum(p["frames"] for p in parts) / watching / seconds,
        "updates_per_s": sum(p["updates"] for p in parts) / watching / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
    }


def lockstep_table(clients: list[int], seconds: float, repeats: int) -> None:
    print(f"# lockstep cursor storm ({HZ:.0f} Hz each) and lone moves; {machine()}")
    print(f"# medians of {repeats} runs of {seconds:.0f} s; per watching client\n")
    print(
        "| scenario | server | frames/s | updates/s | delivered % | p50 ms | p95 ms | p99 ms "
        "| max ms | server CPU % | CPU ratio |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    scenarios = [("lone moves", 2, True)] + [(f"storm {n}", n, False) for n in clients]
    for label, n, lone in scenarios:
        rows = {}
        for ours, name in ((False, "bare coalescing relay"), (True, "tui-collab")):
            runs = [run_lockstep(ours, n, seconds, lone) for _ in range(repeats)]
            rows[name] = {k: median([r[k] for r in runs]) for k in runs[0]}
        bare_cpu = rows["bare coalescing relay"]["server_cpu_pct"]
        for name, row in rows.items():
            ratio = row["server_cpu_pct"] / bare_cpu if bare_cpu else float("nan")
            print(
                f"| {label} | {name} | {row['frames_per_s']:.1f} | {row['updates_per_s']:.0f} "
                f"| {row['delivered_pct']:.1f} "
                f"| {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['p99_ms']:.2f} "
                f"| {row['max_ms']:.1f} | {row['server_cpu_pct']:.0f} | {ratio:.2f} |",
                flush=True,
            )


def people_table(clients: list[int], seconds: float, repeats: int, seed: int) -> None:
    print(f"# people-timed cursor storm ({HZ:.0f} Hz each, random phases, seed {seed}); ")
    print(f"# {machine()}")
    print(f"# medians of {repeats} runs; {seconds:.0f} s after the last join; ")
    print(f"# latency over the {WATCHERS} watching clients\n")
    print(
        "| N | server | window | all joined s | p50 ms | p99 ms | max ms "
        "| delivered / expected | server CPU % | CPU ratio | p99 ratio | machine CPU % (stolen) |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for n in clients:

        def one(name: str, _repeat: int, n: int = n) -> Run:
            run = run_people(name == "tui-collab", n, seconds, seed)
            print(f"<!-- run {name} {n}: {run} -->", flush=True)
            return run

        runs = alternate(["bare relay", "tui-collab"], repeats, one)
        rows = {
            name: {k: median([r[k] for r in taken]) for k in taken[0]}
            for name, taken in runs.items()
        }
        bare = rows["bare relay"]
        for window, label in (("joins", "during joins"), ("after", "after joins")):
            for name, row in rows.items():
                cpu_ratio = row[f"{window}_cpu_pct"] / bare[f"{window}_cpu_pct"]
                p99_ratio = row[f"{window}_p99_ms"] / bare[f"{window}_p99_ms"]
                print(
                    f"| {n} | {name} | {label} | {row['all_joined_s']:.2f} "
                    f"| {row[f'{window}_p50_ms']:.1f} | {row[f'{window}_p99_ms']:.1f} "
                    f"| {row[f'{window}_max_ms']:.0f} "
                    f"| {row[f'{window}_delivered']:,.0f} / {row[f'{window}_expected']:,.0f} "
                    f"({row[f'{window}_delivered_pct']:.2f} %, lost {row[f'{window}_lost']:.0f}) "
                    f"| {row[f'{window}_cpu_pct']:.0f} | {cpu_ratio:.2f} | {p99_ratio:.2f} "
                    f"| {row[f'{window}_machine_pct']:.0f} "
                    f"({row[f'{window}_stolen_pct']:.0f}) |",
                    flush=True,
                )
        for key in ("after_p99_ms", "after_cpu_pct"):
            pairs = paired_summary(runs["tui-collab"], runs["bare relay"], key)
            print(f"<!-- N={n}: {key}, ours / relay run by run: {pairs} -->")
        skipped = {name: (row["skipped"], row["dropped"]) for name, row in rows.items()}
        print(
            f"<!-- N={n}: moves skipped by late load processes, connections dropped: {skipped} -->"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default="10,50,200,500", help="storm sizes, comma-separated")
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="measured seconds (people-timed: after the last join)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; medians")
    parser.add_argument(
        "--lockstep",
        action="store_true",
        help="everyone joins, then all move on one evenly spread schedule (the burst case)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the movers' phases")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",") if c]
    if args.lockstep:
        lockstep_table(clients, args.seconds, args.repeats)
    else:
        people_table(clients, args.seconds, args.repeats, args.seed)


if __name__ == "__main__":
    main()

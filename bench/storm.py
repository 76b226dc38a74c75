"""Join under load: a board of people moving, then a crowd joining at once.

    python -m bench.storm [--members 200] [--joiners 500,1000] [--repeats 3]
                          [--profile DIR]

Each run starts a fresh server. `--members` clients connect, join board `grid` and
move their cursors 10 times a second, each on its own random phase (seeded; the timing
of bench/cursors.py); 10 of them watch and time every move they see. Once all have
joined and `--calm-s` has passed, `--joiners` more clients connect, say hello and join
the same board, all released at once. Reported:

- total join time: from the release to the last joiner's whole `board.state`, and the
  joiners' p50/p99;
- the moving members' cursor latency (p50/p99) and delivery, before the storm (calm),
  during it (release to last join) and for `--tail-s` after it;
- the server's CPU in each of those windows (sampled from /proc), and the machine's,
  with the part of it the host gave to other guests (steal: on a shared host the runs
  that look slow are the ones with the most);
- the frames each client received, by type, whatever the types are;
- for our server: at the end, every client's roster of the board and the team's
  presence list, rebuilt from the frames it received with the client library's own
  state machine, against the server's (read on a second connection of one member):
  the number of clients whose roster or presence differs.

The members and the crowd run in load processes of their own, the crowd's at a lower
priority (`--crowd-nice`, 10): the clients of a real crowd do not share the server's
cores, and on a small machine they would otherwise take them from the server.

The bare relay gets the same shape: it answers hello and join with a small frame each
and coalesces cursors like ours, and sends nothing about presence or participants,
so its join time is the floor. `--profile DIR` runs our server under cProfile and
writes DIR/storm-<joiners>.prof (the profile slows the server: its numbers are not the
benchmark's); `--py-spy DIR` samples it with py-spy (if installed: `pip install
py-spy`) from the release to the last join, into DIR/storm-<joiners>.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import pstats
import re
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    STOLEN,
    CpuSampler,
    alternate,
    create_board,
    machine,
    median,
    paired_summary,
    percentile,
    start_bare,
    start_ours,
    wait_for_quiet,
)
from bench.cursors import (
    HEIGHT,
    HZ,
    SEED,
    WATCHERS,
    WIDTH,
    Plan,
    Shared,
    _people_worker,
    collect,
    people_flags,
    random_phases,
    server_roster,
    wait_joined,
    window_stats,
)

MEMBER_PROCESSES = 2
"""Load processes of the moving members (the watchers among them)."""
JOINER_PROCESSES = 4
"""Load processes of the crowd. People already at work are not on the crowd's machines:
a joiner parsing its `welcome` must not delay a member's move or its watcher's clock in
the same process, which would time the load generator, not the server."""
CROWD_NICE = 10
"""The crowd's processes run this much nicer than the server and the members. On a
machine of 2 cores the crowd's own work (1,000 clients reading some 175 KB each) took
the cores from the server it measures: with the crowd at the same priority the server
had 65-70 % of a core during the storm and the members' p99 was some 380 ms, at 10 it
had 80 % and 240 ms. A real crowd's clients run on machines of their own; on a machine
with cores to spare, `--crowd-nice 0` changes nothing."""


def _niced_worker(niceness: int, *args: Any) -> None:
    """A load process, at `niceness` below the server's and the members' priority."""
    if niceness:
        os.nice(niceness)
    _people_worker(*args)


def run_storm(
    ours: bool,
    members: int,
    joiners: int,
    calm_s: float,
    tail_s: float,
    seed: int,
    profile: str = "",
    spy: str = "",
    drain_s: float = 2.0,
    crowd_nice: int = CROWD_NICE,
) -> dict[str, Any]:
    """One run; `drain_s` is how long the clients keep reading after the last move."""
    tmp = tempfile.TemporaryDirectory(prefix="bench-storm-")
    log = Path(tmp.name) / "server.log"
    if ours:
        served = start_ours(*people_flags(members + joiners), profile=profile, log=str(log))
    else:
        served = start_bare("people")
    ctx = multiprocessing.get_context("fork")
    shared = Shared(ctx)
    people = [f"u{n}" for n in range(members)]
    crowd = [f"j{n}" for n in range(joiners)]
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
            random_phases(people, 1 / HZ, seed),
            frozenset(people[:WATCHERS]),
            record=ours,
            truth_path=str(Path(tmp.name) / "truth.json"),
        )
        out = ctx.Queue()
        groups = [(people[i::MEMBER_PROCESSES], []) for i in range(MEMBER_PROCESSES)]
        groups += [([], crowd[i::JOINER_PROCESSES]) for i in range(JOINER_PROCESSES)]
        for mine, theirs in groups:
            niceness = crowd_nice if theirs else 0
            proc = ctx.Process(
                target=_niced_worker, args=(niceness, plan, shared, mine, theirs, out)
            )
            proc.start()
            procs.append(proc)
        members_joined = wait_joined(shared, members, 300, procs)
        shared.joiners_at.value = release = members_joined + calm_s
        spying = None
        if spy:
            time.sleep(max(0.0, release - 0.2 - time.perf_counter()))
            command = "py-spy record --nonblocking --function --format raw --duration 600 --pid"
            spying = subprocess.Popen(
                [*command.split(), str(served.proc.pid), "--output", spy],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        all_joined = wait_joined(shared, members + joiners, 600, procs)
        if spying is not None:
            spying.send_signal(signal.SIGINT)
            spying.wait(60)
        shared.stop_at.value = stop = all_joined + tail_s
        time.sleep(max(0.0, stop + drain_s - time.perf_counter()))
        shared.snapshot_at.value = time.perf_counter()
        if ours:
            truth = asyncio.run(server_roster(served.url, people[0]))
            Path(plan.truth_path).write_text(json.dumps(truth))
        shared.close_at.value = time.perf_counter()
        results = collect(out, procs, 900)
        sampler.stop()
        slow_closes = log.read_text().count("slow_consumer_close") if log.exists() else 0
        whole.stop()
        stolen.stop()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        served.stop()
        tmp.cleanup()
    parts = [p for r in results for p in r["parts"]]
    joins = [p["join_s"] for p in parts if p["joiner"]]
    row: dict[str, Any] = {
        "members_join_s": members_joined - plan.base,
        "all_joined_s": all_joined - release,
        "join_p50_ms": percentile(joins, 50) * 1000,
        "join_p99_ms": percentile(joins, 99) * 1000,
        "load_cpu_pct": 100 * sum(r["cpu"] for r in results) / (stop + drain_s - plan.base),
        "skipped": sum(p["skipped"] for p in parts),
        "busy_before_pct": quiet,
        "dropped": sum(1 for p in parts if p["dropped"]),
        "slow_closes": slow_closes,
    }
    windows = {
        "calm": (members_joined, release),
        "storm": (release, all_joined),
        "tail": (all_joined, stop),
    }
    for name, (start, end) in windows.items():
        for key, value in window_stats(plan, parts, start, end).items():
            row[f"{name}_{key}"] = value
        row[f"{name}_cpu_pct"] = sampler.percent(start, end)
        row[f"{name}_machine_pct"] = whole.percent(start, end)
        row[f"{name}_stolen_pct"] = stolen.percent(start, end)
    # What the server spent on each joiner (and on everyone else meanwhile): unlike the
    # time, it does not depend on how much of the machine the load left the server.
    row["storm_cpu_ms_per_joiner"] = (
        row["storm_cpu_pct"] * 10 * (all_joined - release) / max(1, joiners)
    )
    for who, chosen in (("member", False), ("joiner", True)):
        mine = [p["frames"] for p in parts if p["joiner"] is chosen]
        total: Counter[str] = sum(mine, Counter())
        row[f"{who}_frames"] = {k: v / max(1, len(mine)) for k, v in total.most_common()}
    if ours:
        check: Counter[str] = Counter()
        for r in results:
            check.update(r.get("check", {}))
        row.update({k: check[k] for k in ("roster_mismatch", "presence_mismatch", "missing")})
        row["extra"] = check["extra"]
    return row


def profile_summary(path: str, top: int = 15) -> str:
    """The top entries of a cProfile file, by cumulative and by own time."""
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.strip_dirs()
    for order in ("cumulative", "tottime"):
        out.write(f"\n## sorted by {order}\n")
        stats.sort_stats(order).print_stats(top)
    return out.getvalue()


def spy_summary(path: str, top: int = 15) -> str:
    """The top functions of a py-spy raw (collapsed stacks) file: by samples in which
    the function is on the stack (cumulative) and in which it is the leaf (own)."""
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]  # by function
        own[frames[-1]] += n
        for frame in set(frames):
            cumulative[frame] += n
    out = [f"{total} samples (frames on every stack, the loop's own, left out)"]
    for name, counter in (("cumulative", cumulative), ("own", own)):
        out.append(f"\n## by {name} samples")
        rows = [(f, n) for f, n in counter.most_common() if n < 0.99 * total][:top]
        out.extend(f"{100 * n / max(1, total):5.1f} %  {frame}" for frame, n in rows)
    return "\n".join(out)


def frames_note(frames: dict[str, float]) -> str:
    return ", ".join(f"{kind} {count:,.0f}" for kind, count in frames.items())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=200, help="moving members (200)")
    parser.add_argument(
        "--joiners", default="500,1000", help="crowd sizes, comma-separated (500,1000)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per size; medians")
    parser.add_argument("--calm-s", type=float, default=3.0, help="moving before the storm")
    parser.add_argument("--tail-s", type=float, default=3.0, help="moving after the last join")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the movers' phases")
    parser.add_argument(
        "--profile", default="", help="directory for a cProfile of our server per size"
    )
    parser.add_argument(
        "--py-spy",
        default="",
        help="directory for py-spy samples of our server during each size's first storm",
    )
    parser.add_argument(
        "--only", choices=("both", "ours", "bare"), default="both", help="which servers run"
    )
    parser.add_argument(
        "--crowd-nice",
        type=int,
        default=CROWD_NICE,
        help=f"niceness of the crowd's load processes ({CROWD_NICE}; 0: as the server's)",
    )
    args = parser.parse_args()
    print(f"# join under load: {args.members} members moving at {HZ:.0f} Hz (random phases, ")
    print(f"# seed {args.seed}), then N joiners at once; {machine()}")
    print(
        f"# medians of {args.repeats} runs; load processes: {MEMBER_PROCESSES} of members, "
        f"{JOINER_PROCESSES} of joiners (nice {args.crowd_nice})\n"
    )
    print(
        "| joiners | server | all joined s | join p50 / p99 ms | members p99 ms: calm "
        "| storm | after | delivered during storm | server CPU % calm / storm "
        "| server CPU ms per joiner | machine CPU % storm (stolen) | roster / presence mismatches |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|")
    servers = [(False, "bare relay"), (True, "tui-collab")]
    if args.only != "both":
        servers = [s for s in servers if s[0] == (args.only == "ours")]
    for joiners in (int(j) for j in args.joiners.split(",") if j):

        def one(name: str, repeat: int, joiners: int = joiners) -> dict[str, Any]:
            ours = name == "tui-collab"
            profile = spy = ""
            if args.profile and ours and repeat == 0:
                Path(args.profile).mkdir(parents=True, exist_ok=True)
                profile = str(Path(args.profile) / f"storm-{joiners}.prof")
            if args.py_spy and ours and repeat == 0:
                Path(args.py_spy).mkdir(parents=True, exist_ok=True)
                spy = str(Path(args.py_spy) / f"storm-{joiners}.txt")
            run = run_storm(
                ours,
                args.members,
                joiners,
                args.calm_s,
                args.tail_s,
                args.seed,
                profile,
                spy,
                crowd_nice=args.crowd_nice,
            )
            brief = {k: v for k, v in run.items() if not k.endswith("_frames")}
            print(f"<!-- run {name} {joiners}: {brief} -->", flush=True)
            if profile and Path(profile).exists():
                print(f"<!-- cProfile of our server ({profile}):")
                print(profile_summary(profile) + "-->", flush=True)
            if spy and Path(spy).exists():
                print(f"<!-- py-spy of our server during the storm ({spy}):")
                print(spy_summary(spy) + "\n-->", flush=True)
            return run

        runs = alternate([name for _, name in servers], args.repeats, one)
        rows: dict[str, dict[str, Any]] = {}
        for name, taken in runs.items():
            row: dict[str, Any] = {
                k: median([r[k] for r in taken]) for k in taken[0] if not k.endswith("_frames")
            }
            row["frames"] = taken[0]
            rows[name] = row
        for name, row in rows.items():
            mismatches = (
                f"{row['roster_mismatch']:.0f} / {row['presence_mismatch']:.0f}"
                if "roster_mismatch" in row
                else "n/a"
            )
            print(
                f"| {joiners:,} | {name} | {row['all_joined_s']:.2f} "
                f"| {row['join_p50_ms']:,.0f} / {row['join_p99_ms']:,.0f} "
                f"| {row['calm_p99_ms']:.0f} | {row['storm_p99_ms']:,.0f} "
                f"| {row['tail_p99_ms']:,.0f} "
                f"| {row['storm_delivered']:,.0f} / {row['storm_expected']:,.0f} "
                f"(lost {row['storm_lost']:.0f}) "
                f"| {row['calm_cpu_pct']:.0f} / {row['storm_cpu_pct']:.0f} "
                f"| {row['storm_cpu_ms_per_joiner']:.2f} "
                f"| {row['storm_machine_pct']:.0f} ({row['storm_stolen_pct']:.0f}) "
                f"| {mismatches} |",
                flush=True,
            )
        for key in ("all_joined_s", "storm_p99_ms") if len(runs) == 2 else ():
            pairs = paired_summary(runs["tui-collab"], runs["bare relay"], key)
            print(
                f"<!-- {joiners}: {key}, ours / relay run by run (alternating): {pairs} -->",
                flush=True,
            )
        for name, row in rows.items():
            first = row["frames"]
            print(
                f"<!-- {joiners} {name}, frames per member: {frames_note(first['member_frames'])};"
                f" per joiner: {frames_note(first['joiner_frames'])} -->"
            )


if __name__ == "__main__":
    main()

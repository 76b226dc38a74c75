"""Shared bench plumbing: start a server process, read its CPU, summarise latencies."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _all_cores_ticks() -> list[int]:
    """/proc/stat's first line: user, nice, system, idle, iowait, irq, softirq, steal, …"""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle so far (every process, the kernel too)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = _all_cores_ticks()[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def machine_stolen_seconds() -> float:
    """CPU seconds the hypervisor gave other guests while this machine wanted them:
    on a shared host, the runs that look slow are the ones with the most of it."""
    return _all_cores_ticks()[7] / CLK_TCK


QUIET_PATIENCE_S = float(os.environ.get("BENCH_QUIET_PATIENCE_S", "20"))
"""How long a run waits for the machine to idle before it starts anyway (0: not at all)."""


def wait_for_quiet(busy_pct: float = 25.0, patience_s: float | None = None) -> float:
    """Start a run once the machine idles (other programs share these cores), or after
    `patience_s` (default QUIET_PATIENCE_S); returns the machine's busy % of the last
    second, or NaN when not waiting at all."""
    patience_s = QUIET_PATIENCE_S if patience_s is None else patience_s
    if patience_s <= 0:
        return float("nan")
    deadline = time.monotonic() + patience_s
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy = 100 * (machine_busy_seconds() - before)
        if busy <= busy_pct or time.monotonic() > deadline:
            return busy


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    data_dir: tempfile.TemporaryDirectory[str]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.data_dir.cleanup()


LOOP = os.environ.get("BENCH_LOOP", "asyncio")
"""Event loop for our server in benchmarks: BENCH_LOOP=uvloop compares the two."""


def start_ours(
    *extra: str,
    port: int = 0,
    data_dir: tempfile.TemporaryDirectory[str] | None = None,
    profile: str = "",
    log: str = "",
) -> Served:
    """Our server in open mode with the per-connection and per-IP limits lifted.

    `port` and `data_dir` start it again where an earlier one was (a restart);
    `profile` runs it under cProfile, which writes its stats there when it stops;
    `log` appends its stderr (warnings, audit events) to that file."""
    if data_dir is None:
        data_dir = tempfile.TemporaryDirectory(prefix="tui-collab-bench-")
    proc = subprocess.Popen(
        [
            sys.executable,
            *(["-m", "cProfile", "-o", profile] if profile else []),
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(port),
            "--auth",
            "open",
            "--data-dir",
            data_dir.name,
            "--log-level",
            "warning",
            "--loop",
            LOOP,
            # Load generators send far more per connection than a person: measure the
            # server's capacity, not the per-client limit.
            "--rate",
            "1000000",
            "--burst",
            "1000000",
            # Every load client comes from 127.0.0.1 and says hello without a header
            # token: lift the per-IP and total caps made for the open internet.
            "--max-unauthenticated-per-ip",
            "1000000",
            "--max-upgrading-per-ip",
            "1000000",
            "--max-upgrading",
            "1000000",
            "--max-connections",
            "1000000",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=open(log, "a") if log else None,  # noqa: SIM115 (the child keeps it)
        text=True,
    )
    return Served(proc, _listening(proc), data_dir)


def start_bare(mode: str) -> Served:
    data_dir = tempfile.TemporaryDirectory(prefix="bare-relay-")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_relay", mode], stdout=subprocess.PIPE, text=True
    )
    return Served(proc, _listening(proc), data_dir)


def _listening(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return line.removeprefix("listening on ")


async def create_board(url: str, width: int, height: int) -> None:
    """Create the board `grid` of team `bench` that every scenario works on."""
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "user": "owner", "team": "bench"}))
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "type": "board.create",
                    "board": "grid",
                    "title": "Grid",
                    "id": "c",
                    "width": width,
                    "height": height,
                }
            )
        )
        while '"ack"' not in str(await ws.recv()):
            pass


STOLEN = -1
"""`CpuSampler`'s pid for the machine's stolen time."""


@dataclass
class CpuSampler:
    """Samples a process's CPU time (pid 0: the whole machine's busy time; STOLEN: the
    time the host took from it) every `every_s` in a thread, so the CPU of any window
    can be read afterwards, even one whose bounds were not known in advance."""

    pid: int
    every_s: float = 0.1
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> CpuSampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        with contextlib.suppress(OSError, IndexError, ValueError):  # the process is gone
            if self.pid == STOLEN:
                used = machine_stolen_seconds()
            else:
                used = cpu_seconds(self.pid) if self.pid else machine_busy_seconds()
            self.samples.append((time.perf_counter(), used))

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _at(self, when: float) -> float:
        """CPU seconds used by `when`, interpolated between the samples around it."""
        before = [s for s in self.samples if s[0] <= when] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= when] or self.samples[-1:]
        (t0, c0), (t1, c1) = before[-1], after[0]
        if t1 <= t0:
            return c0
        return c0 + (c1 - c0) * (when - t0) / (t1 - t0)

    def percent(self, start: float, end: float) -> float:
        """CPU % of one core between two perf_counter times."""
        if end <= start or not self.samples:
            return float("nan")
        return 100 * (self._at(end) - self._at(start)) / (end - start)


def frame_type(raw: str | bytes) -> str:
    """The `type` of a JSON frame, whatever it is, cheaply: servers write it first."""
    text = raw if isinstance(raw, str) else raw.decode()
    if text.startswith('{"type":"'):
        end = text.find('"', 9)
        if end > 0:
            return text[9:end]
    try:
        return str(json.loads(text).get("type"))
    except (ValueError, AttributeError):
        return "?"


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


Run = dict[str, Any]


def alternate(
    names: Sequence[str], repeats: int, run: Callable[[str, int], Run]
) -> dict[str, list[Run]]:
    """`repeats` runs of each server (`run(name, repeat)`), taken in turn and in
    mirrored order: relay, ours, ours, relay, relay, ours. Run all of one then all of the
    other and the two see different machines: other tenants' load drifts over minutes
    (the relay let 1,000 join in 1.47 s in one set and in 2.22 s in the next, 7 minutes
    later), and a pair taken side by side shares it; mirroring the order cancels a
    steady drift."""
    runs: dict[str, list[Run]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            runs[name].append(run(name, repeat))
    return runs


def paired_ratio(ours: list[Run], base: list[Run], key: str) -> tuple[float, list[float]]:
    """The median of the run-by-run ratios `ours[i][key] / base[i][key]` (runs paired
    by `alternate`), and the ratios: steadier than a ratio of the two medians when the
    machine drifts between pairs."""
    ratios = [o[key] / b[key] for o, b in zip(ours, base, strict=True) if b[key]]
    return median(ratios), ratios


def paired_summary(ours: list[Run], base: list[Run], key: str) -> str:
    """`paired_ratio` as the benchmarks print it: `median 1.58x (1.58 / 1.58 / 1.29)`."""
    ratio, ratios = paired_ratio(ours, base, key)
    return f"median {ratio:.2f}x ({' / '.join(f'{r:.2f}' for r in ratios)})"


def machine() -> str:
    cpu = "unknown cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d')}"
    )

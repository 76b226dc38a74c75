"""Shared bench plumbing: start a server process, read its CPU, summarise latencies."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import connect

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


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


def start_ours(*extra: str) -> Served:
    data_dir = tempfile.TemporaryDirectory(prefix="tui-collab-bench-")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            "0",
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


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


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

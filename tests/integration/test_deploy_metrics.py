"""/metrics for operators: which release on which Python (build info), and the process's
own CPU, memory, file and start-time figures, next to the server's metrics."""

from __future__ import annotations

import asyncio
import os
import platform
import time

from server.app import CollabServer
from tests.integration.test_metrics import scrape
from tui_collab import __version__


async def test_metrics_carry_build_info_and_process_figures(server: CollabServer) -> None:
    samples = await asyncio.to_thread(scrape, server)
    build = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "tui_collab_build_info"
    }
    labels = (
        ("implementation", platform.python_implementation()),
        ("python", platform.python_version()),
        ("version", __version__),
    )
    assert build == {labels: 1.0}

    # The test process is the server's: its figures are this process's own.
    assert samples[("process_resident_memory_bytes", ())] > 10 * 2**20
    assert abs(samples[("process_open_fds", ())] - len(os.listdir("/proc/self/fd"))) <= 8
    started = samples[("process_start_time_seconds", ())]
    assert time.time() - 86_400 < started <= time.time()
    assert samples[("process_cpu_seconds_total", ())] > 0
    assert ("tui_collab_connections", ()) in samples  # the server's own are still there

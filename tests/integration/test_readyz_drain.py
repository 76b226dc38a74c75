"""SIGTERM with --drain: /readyz answers 503 while the server still serves its clients,
until the drain ends or a second signal comes; /healthz stays 200."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from server.auth import load_secret, mint_token
from tests.support.http_json import get_json as get
from tests.support.peer import Peer
from tests.support.process import ServerProcess
from tests.support.waiting import eventually

_DRAINING = "shutting down: new clients go elsewhere"


async def _not_ready(port: int) -> bool:
    return (await get(port, "/readyz"))[0] == 503


async def test_sigterm_with_drain_says_not_ready_but_still_serves(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "data", "--drain", "30")
    await asyncio.to_thread(process.start)
    try:
        node = (await get(process.port, "/healthz"))[1]["node"]
        assert await get(process.port, "/readyz") == (200, {"status": "ok", "node": node})
        assert process.proc is not None
        process.proc.send_signal(signal.SIGTERM)
        await eventually(lambda: _not_ready(process.port), what="/readyz 503 after SIGTERM")
        assert await get(process.port, "/readyz") == (
            503,
            {"status": "draining", "node": node, "reason": _DRAINING},
        )
        assert (await get(process.port, "/healthz"))[0] == 200
        secret = load_secret(process.data_dir)
        peer = await Peer.join(process.url, mint_token(secret, "alice", "core", None, 60))
        await peer.close()  # a client still gets in and is served while draining

        # A second signal ends the drain at once: no 30 s wait.
        assert await asyncio.to_thread(process.terminate, 5.0) == 0
        assert "draining: /readyz answers 503 until the server stops" in process.log()
    finally:
        process.stop()


async def test_the_drain_ends_by_itself(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "data", "--drain", "0.5")
    await asyncio.to_thread(process.start)
    try:
        assert await asyncio.to_thread(process.terminate, 10.0) == 0
        assert "draining" in process.log()
    finally:
        process.stop()


def test_a_negative_drain_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--data-dir", str(tmp_path), "--drain=-1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.endswith("tui-collab-server: --drain must be 0 or more seconds, not -1\n")

"""A client that stops reading: shed, then closed 1013, memory bounded, others unaffected.

The reader is a real client in its own process, stopped with SIGSTOP the way a
terminal is suspended with Ctrl-Z, against a real server process whose memory is read
from /proc.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from server.auth import load_secret, mint_token
from tests.support.board import create_board, join_board
from tests.support.peer import Message, Peer
from tests.support.process import ServerProcess

REPO = Path(__file__).resolve().parents[2]
MOVERS = 20
STOP_S = 10.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def read_until(stream: asyncio.StreamReader, prefix: str, timeout: float) -> list[str]:
    """Lines of the client's stdout up to and including the first starting with `prefix`."""
    lines: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            raw = await stream.readline()
            if not raw:
                raise EOFError(f"client exited; saw {lines}")
            line = raw.decode().rstrip("\n")
            lines.append(line)
            if line.startswith(prefix):
                return lines


async def test_a_stopped_reader_is_closed_1013_and_resyncs_after_sigcont(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        "--send-high-water",
        "16384",
        "--slow-close-after",
        "2",
    )
    url = server.start()
    secret = load_secret(tmp_path / "data")

    def tok(user: str) -> str:
        return mint_token(secret, user, "core", None, 3600)

    owner = await Peer.join(url, tok("owner"))
    await create_board(owner, "grid", 64, 64)
    await join_board(owner, "grid")
    reader = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.slow_client",
        url,
        tok("sleepy"),
        "grid",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert reader.stdout is not None
    movers = [await Peer.join(url, tok(f"m{n}")) for n in range(MOVERS)]
    observer = await Peer.join(url, tok("watcher"))
    try:
        await read_until(reader.stdout, "joined", 15)
        for mover in movers:
            await join_board(mover, "grid")
        await join_board(observer, "grid")
        running = True

        async def move(n: int, mover: Peer) -> None:
            step = 0
            while running:
                step += 1
                await mover.send({"type": "cursor.move", "board": "grid", "x": step % 64, "y": n})
                if step % 2 == 0:  # and ten edits a second, which are never skipped
                    await mover.send(
                        {
                            "type": "cell.set",
                            "board": "grid",
                            "x": n,
                            "y": 10,
                            "value": f"{n}-{step}-" + "x" * 200,
                            "op": f"m{n}-{step}",
                            "clock": step,
                        }
                    )
                await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(move(n, m)) for n, m in enumerate(movers)]
        await asyncio.sleep(1.0)  # kept: a second of steady load before the baseline
        rss_before = rss_kib(server.pid)
        seen_before = len(observer.log)

        os.kill(reader.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        closed_after: float | None = None
        peak = rss_before
        wrote = False
        while time.monotonic() - stopped_at < STOP_S:
            await asyncio.sleep(0.25)  # kept: memory sampled through a fixed window
            peak = max(peak, rss_kib(server.pid))
            if not wrote and time.monotonic() - stopped_at > 1:
                await owner.send(
                    {
                        "type": "cell.set",
                        "board": "grid",
                        "x": 5,
                        "y": 5,
                        "value": "while-you-slept",
                        "op": "owner-1",
                        "clock": 10_000,
                    }
                )
                wrote = True
            if closed_after is None and "event=slow_consumer_close" in server.log():
                closed_after = time.monotonic() - stopped_at
        growth_kib = peak - rss_before
        print(f"\nslow consumer closed after {closed_after} s; server RSS growth {growth_kib} KiB")
        assert closed_after is not None, server.log()[-2000:]
        assert "user=sleepy" in server.log()
        assert growth_kib < 20 * 1024, f"server grew {growth_kib} KiB for one stopped reader"

        # Everybody else kept getting every mover's cursor throughout the stop.
        cursors: list[Message] = [m for m in observer.log[seen_before:] if m["type"] == "cursors"]
        movers_seen = {c["user"] for frame in cursors for c in frame["cursors"]}
        assert movers_seen == {f"m{n}" for n in range(MOVERS)}
        assert len(cursors) > STOP_S * 10  # the 50 ms window gives up to 20 a second

        os.kill(reader.pid, signal.SIGCONT)
        lines = await read_until(reader.stdout, "state reconnecting", 15)
        assert "state reconnecting slow consumer" in lines, lines
        lines = await read_until(reader.stdout, "synced", 15)
        assert "cell 5 5 while-you-slept" in lines, lines
        running = False
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if reader.returncode is None:
            os.kill(reader.pid, signal.SIGCONT)
            reader.kill()
            await reader.wait()
        for peer in [owner, observer, *movers]:
            await peer.close()
        server.stop()

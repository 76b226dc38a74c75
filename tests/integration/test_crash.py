"""SIGKILL the server mid-stream: no acknowledged edit may be lost."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from pathlib import Path

import pytest

from server.store.sqlite import DB_FILE
from tests.support.board import create_board, join_board
from tests.support.peer import Closed, Peer
from tests.support.process import ServerProcess
from tui_collab.cells import CellOp


async def _edit_until_killed(
    peer: Peer, user: str, client_id: str, start_clock: int, rng: random.Random, acked: list[CellOp]
) -> None:
    """Keep up to 32 edits in flight; record every op the server acknowledged as applied."""
    in_flight: dict[str, CellOp] = {}
    clock = start_clock  # Lamport: start past every clock seen on the board
    window = asyncio.Semaphore(32)

    async def collect() -> None:
        with contextlib.suppress(Closed, TimeoutError):
            while True:
                ack = await peer.next("ack", timeout=10)
                op = in_flight.pop(ack["re"])
                window.release()
                if ack["applied"]:
                    acked.append(op)

    async def send() -> None:
        nonlocal clock
        for n in range(100_000):
            await window.acquire()
            clock += rng.randrange(1, 3)
            op = CellOp(rng.randrange(8), rng.randrange(8), f"{user}:{n}", clock, client_id, user)
            in_flight[f"{user}-{n}"] = op
            await peer.send(
                {
                    "type": "cell.set",
                    "board": "plan",
                    "x": op.x,
                    "y": op.y,
                    "value": op.value,
                    "op": f"{user}-{n}",
                    "clock": op.clock,
                }
            )

    sender = asyncio.create_task(send())
    await collect()  # returns when the connection dies with the server
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await sender


@pytest.mark.parametrize("durability", ["normal", "full"])
async def test_sigkill_mid_stream_loses_no_acked_edit(tmp_path: Path, durability: str) -> None:
    rng = random.Random(durability)
    data = tmp_path / "data"
    rounds = 5 if durability == "normal" else 2
    total_acked = 0
    for round_ in range(rounds):
        server = ServerProcess(data, "--auth", "open", "--durability", durability)
        try:
            url = server.start()
            writers = [
                await Peer.join(url, user=f"u{n}", team="core", client_id=f"c-u{n}")
                for n in range(3)
            ]
            if round_ == 0:
                await create_board(writers[0], "plan", width=8, height=8)
            states = [await join_board(peer, "plan") for peer in writers]
            start = max((c["clock"] for c in states[-1]["cells"]), default=0)
            acked: list[CellOp] = []
            tasks = [
                asyncio.create_task(
                    _edit_until_killed(
                        p, f"r{round_}u{n}", f"c-u{n}", start, random.Random(rng.random()), acked
                    )
                )
                for n, p in enumerate(writers)
            ]
            await asyncio.sleep(rng.uniform(0.3, 0.8))  # kept: a kill at a random moment
            server.kill()
            await asyncio.gather(*tasks)
            assert acked, "no edit was acknowledged before the kill"
            total_acked += len(acked)
        finally:
            server.stop()

        server = ServerProcess(data, "--auth", "open", "--durability", durability)
        try:
            url = server.start()
            reader = await Peer.join(url, user="checker", team="core")
            state = await join_board(reader, "plan")
            cells = {
                (c["x"], c["y"]): (c["clock"], c["client"], c["value"]) for c in state["cells"]
            }
            lost = [op for op in acked if cells.get((op.x, op.y), (0, "", "")) < op.stamp]
            assert lost == [], f"round {round_}: {len(lost)} of {len(acked)} acked edits lost"
            await reader.close()
        finally:
            server.stop()
    with sqlite3.connect(data / DB_FILE) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert total_acked > 100

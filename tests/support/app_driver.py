"""The app, headless, in a process of its own: a test can SIGKILL it mid-edit.

Usage: python -m tests.support.app_driver URL DATA_DIR. It prints READY once the board
is open; after a line on stdin (the test has stopped the server) it types "kept" into
cell A1, prints PENDING once the edit is unacknowledged and on disk, and waits to die.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tui_collab.app import CollabApp
from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient
from tui_collab.events import Connected
from tui_collab.outbox import Outbox


async def main(url: str, data_dir: Path) -> None:
    outbox = Outbox.in_dir(data_dir, url, "core", "alice")
    client = CollabClient(
        url,
        user="alice",
        team="core",
        name="Alice",
        outbox=outbox,
        backoff=Backoff(base_s=0.05, cap_s=0.2),
    )
    app = CollabApp(client, board="plan")
    async with app.run_test(size=(100, 30)) as pilot:
        while app.grid.mirror is None:
            await pilot.pause(0.02)
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        while isinstance(client.state, Connected):
            await pilot.pause(0.02)
        await pilot.press("enter", "k", "e", "p", "t", "enter")
        while client.unsaved_count == 0:
            await pilot.pause(0.02)
        print("PENDING", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))

"""The durable outbox: unacknowledged edits outlive the process that made them."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.conftest import StartServer
from tests.support.waiting import eventually
from tests.tui.conftest import wait_for
from tui_collab.app import CollabApp
from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient
from tui_collab.events import OpRefused, Restored
from tui_collab.outbox import Outbox, outbox_key
from tui_collab.protocol import CellSet

FAST = Backoff(base_s=0.05, cap_s=0.2)


def test_the_outbox_keeps_edits_and_a_client_id_per_server_and_user(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    first = Outbox(path, outbox_key("ws://a/ws", "core", "alice"))
    op = CellSet(board="plan", x=1, y=2, value="v", op="o1-1", clock=3, id="o1-1")
    first.add(op)
    first.add(op.model_copy(update={"op": "o1-2", "id": "o1-2", "value": "w"}))
    client_id = first.client_id()
    first.close()

    again = Outbox(path, outbox_key("ws://a/ws", "core", "alice"))
    assert [o.value for o in again.load()] == ["v", "w"]  # oldest first
    assert again.client_id() == client_id
    again.remove("o1-1")
    assert again.count() == 1
    other = Outbox(path, outbox_key("ws://b/ws", "core", "alice"))
    assert other.load() == []
    assert other.client_id() != client_id
    again.clear()
    assert again.count() == 0


async def _offline_edit(client: CollabClient, value: str) -> None:
    task = asyncio.create_task(client.set_cell("plan", 0, 0, value))
    await eventually(lambda: client.unsaved_count > 0, what="the edit is kept offline")
    assert not task.done()
    await client.close()
    await asyncio.gather(task, return_exceptions=True)


async def test_an_offline_edit_is_sent_by_the_next_run(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(auth="open", secret=None)
    url, port = server.url, server.port
    async with CollabClient(url, user="bob", team="core") as bob:
        await bob.create_board("Plan", 4, 4, board="plan")
    box = tmp_path / "client"

    first = CollabClient(
        url,
        user="alice",
        team="core",
        outbox=Outbox.in_dir(box, url, "core", "alice"),
        backoff=FAST,
    )
    first.start()
    await first.wait_connected()
    await first.join("plan")
    await server.stop()
    await _offline_edit(first, "made offline")

    outbox = Outbox.in_dir(box, url, "core", "alice")
    assert outbox.count() == 1
    second = CollabClient(url, user="alice", team="core", outbox=outbox, backoff=FAST)
    restored: list[Restored] = []
    second.on(Restored, restored.append)
    assert second.restored == 1
    assert second.unsaved_count == 1
    assert second.client_id == first.client_id  # the edit is re-sent exactly as made
    second.start()
    assert restored == [Restored(1)]
    await start_server(auth="open", secret=None, port=port)
    async with CollabClient(url, user="bob", team="core") as bob:
        board = await bob.join("plan")
        await eventually(
            lambda: board.cells.value(0, 0) == "made offline", 10, "the offline edit arrives"
        )
        async with asyncio.timeout(5):
            await second.flush()
            # Joined only to deliver, then left.
            await eventually(lambda: "alice" not in board.participants, 5, "alice leaves")
    assert outbox.count() == 0
    assert "plan" not in second.joined
    await second.close()


async def test_an_edit_the_server_refuses_on_restore_is_reported_and_dropped(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(auth="open", secret=None)
    outbox = Outbox.in_dir(tmp_path / "client", server.url, "core", "alice")
    outbox.add(CellSet(board="gone", x=0, y=0, value="lost?", op="o9-1", clock=1, id="o9-1"))
    client = CollabClient(server.url, user="alice", team="core", outbox=outbox, backoff=FAST)
    refused: list[OpRefused] = []
    client.on(OpRefused, refused.append)
    async with client:
        async with asyncio.timeout(5):
            await client.flush()
    assert [(r.board, r.value, r.code) for r in refused] == [("gone", "lost?", "not_found")]
    assert outbox.count() == 0


async def test_discarding_unsaved_edits_empties_the_outbox(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(auth="open", secret=None)
    outbox = Outbox.in_dir(tmp_path / "client", server.url, "core", "alice")
    client = CollabClient(server.url, user="alice", team="core", outbox=outbox, backoff=FAST)
    async with client:
        await client.create_board("Plan", 4, 4, board="plan")
        await client.join("plan")
        await server.stop()
        edits = [asyncio.create_task(client.set_cell("plan", x, 0, "x")) for x in range(3)]
        await eventually(lambda: client.unsaved_count >= 3, what="three edits kept offline")
        assert outbox.count() == 3
        assert client.discard_unsaved() == 3
        assert outbox.count() == 0
        assert client.unsaved_count == 0
        await asyncio.wait(edits)
        assert all(edit.cancelled() for edit in edits)


async def test_an_app_killed_mid_edit_sends_it_when_started_again(
    start_server: StartServer, tmp_path: Path
) -> None:
    data = tmp_path / "server"
    server = await start_server(data_dir=data, auth="open", secret=None)
    url, port = server.url, server.port
    box = tmp_path / "client"
    app_process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.app_driver",
        url,
        str(box),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert app_process.stdin is not None
    assert app_process.stdout is not None
    try:
        async with asyncio.timeout(30):
            assert (await app_process.stdout.readline()).strip() == b"READY"
            await server.stop()
            app_process.stdin.write(b"go\n")
            await app_process.stdin.drain()
            assert (await app_process.stdout.readline()).strip() == b"PENDING"
    finally:
        app_process.send_signal(signal.SIGKILL)
        await app_process.wait()
    assert app_process.returncode == -signal.SIGKILL

    await start_server(data_dir=data, auth="open", secret=None, port=port)
    outbox = Outbox.in_dir(box, url, "core", "alice")
    assert [op.value for op in outbox.load()] == ["kept"]
    client = CollabClient(url, user="alice", team="core", outbox=outbox, backoff=FAST)
    app = CollabApp(client, board="plan")
    async with app.run_test(size=(100, 30)) as pilot:
        async with CollabClient(url, user="bob", team="core") as bob:
            board = await bob.join("plan")
            await wait_for(pilot, lambda: board.cells.value(0, 0) == "kept", timeout=10)
        await wait_for(pilot, lambda: client.unsaved_count == 0)
    assert outbox.count() == 0

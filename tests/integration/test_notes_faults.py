"""Notes through faults: a SIGKILLed server, and a client offline, then quit.

Real server processes and real clients; the typists are `CollabClient`s whose
`SharedNotes` reconnect and re-sync by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

from tests.conftest import StartServer, token
from tests.support.notes_typing import fast_backoff, holds, type_into
from tests.support.process import ServerProcess
from tests.support.proxy import Proxy
from tests.support.waiting import eventually
from tui_collab.client import CollabClient
from tui_collab.outbox import Outbox


async def test_sigkill_while_three_type_loses_no_acked_update_and_replicas_converge(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, "--auth", "open")
    url = server.start()
    clients = [
        CollabClient(url, user=f"u{n}", team="core", backoff=fast_backoff(n)) for n in range(3)
    ]
    acked: list[bytes] = []
    stop = asyncio.Event()
    typing: list[asyncio.Task[None]] = []
    try:
        for client in clients:
            client.start()
            await client.wait_connected()
        await clients[0].create_board("Plan", 4, 4, board="plan")
        replicas = [await client.open_notes("plan") for client in clients]
        for n, notes in enumerate(replicas):
            notes.on_acked = acked.append
            typing.append(asyncio.create_task(type_into(notes, random.Random(n), stop)))
        await eventually(lambda: len(acked) > 60, timeout=10, what="acked updates")
        server.kill()
        killed_with = len(acked)
        await asyncio.sleep(0.2)  # typing on, into replicas that cannot send
        server = ServerProcess(data, "--auth", "open")
        server.start(port=int(url.rsplit(":", 1)[1].split("/")[0]))
        await eventually(lambda: len(acked) > killed_with + 20, timeout=10, what="acks again")
        stop.set()
        await asyncio.gather(*typing)

        def converged() -> bool:
            texts = {str(notes.text) for notes in replicas}
            return len(texts) == 1 and all(notes.unacked == 0 for notes in replicas)

        await eventually(converged, timeout=10, what="the three replicas converge")
        async with CollabClient(url, user="late", team="core") as late:
            fresh = await late.open_notes("plan")
            assert str(fresh.text) == str(replicas[0].text)
            state = fresh.doc.get_update()
        assert all(holds(state, update) for update in acked)
    finally:
        stop.set()
        for task in typing:
            task.cancel()
        await asyncio.gather(*typing, return_exceptions=True)
        for client in clients:
            await client.close()
        server.stop()


async def test_offline_edits_merge_on_reconnect_and_survive_quitting(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server()
    proxy = Proxy("127.0.0.1", server.port)
    await proxy.start()
    outbox_path = tmp_path / "alice" / "outbox.sqlite3"
    alice = CollabClient(
        proxy.url(),
        token=token("alice", "core"),
        outbox=Outbox(outbox_path, "alice-key"),
        backoff=fast_backoff(1),
        open_timeout_s=0.3,
    )
    async with CollabClient(server.url, token=token("bob", "core")) as bob:
        alice.start()
        await alice.wait_connected()
        await alice.create_board("Plan", 4, 4, board="plan")
        mine = await alice.open_notes("plan")
        theirs = await bob.open_notes("plan")
        mine.insert(0, "agenda\n")
        await eventually(lambda: str(theirs.text) == "agenda\n")

        proxy.freeze()  # new connections hang; the open one is cut
        proxy.cut()
        await eventually(lambda: alice.state.__class__.__name__ != "Connected")
        mine.insert(len(str(mine.text)), "- alice offline\n")
        theirs.insert(0, "# bob online\n")
        theirs.delete(len("# bob online\n"), len("# bob online\nagenda"))  # drops "agenda"
        await asyncio.sleep(0.1)
        await alice.close()  # quit while offline: only the data dir has her edit
        assert str(theirs.text) == "# bob online\n\n"

        again = CollabClient(
            proxy.url(),
            token=token("alice", "core"),
            outbox=Outbox(outbox_path, "alice-key"),
            backoff=fast_backoff(2),
            open_timeout_s=0.3,
        )
        again.start()  # while still offline
        try:
            reopened = await again.open_notes("plan")
            assert str(reopened.text) == "agenda\n- alice offline\n"  # from the data dir
            proxy.thaw()
            expected = "# bob online\n\n- alice offline\n"
            await eventually(lambda: str(reopened.text) == expected)
            await eventually(lambda: str(theirs.text) == expected)
            await eventually(lambda: reopened.unacked == 0)
        finally:
            await again.close()
    await proxy.close()
    with contextlib.suppress(Exception):
        await alice.close()

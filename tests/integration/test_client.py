"""CollabClient against real servers: events, reconnects, offline edits, crashes, refusals."""

from __future__ import annotations

import asyncio
import functools
import random
from pathlib import Path

import pytest

from server.app import CollabServer
from tests.conftest import StartServer, token
from tests.support.frames import welcome
from tests.support.process import ServerProcess
from tests.support.proxy import Proxy
from tests.support.waiting import eventually
from tui_collab.backoff import Backoff
from tui_collab.client import ClientError, CollabClient
from tui_collab.events import Closed, Connected, PendingChanged, Reconnecting, StateChanged
from tui_collab.protocol import CellChanged, Presence


def fast_backoff(seed: int = 0, cap_s: float = 0.2) -> Backoff:
    return Backoff(base_s=0.05, factor=2.0, cap_s=cap_s, rng=random.Random(seed))


async def test_join_edit_and_typed_events(server: CollabServer) -> None:
    async with (
        CollabClient(server.url, token=token("alice", "core")) as alice,
        CollabClient(server.url, token=token("bob", "core")) as bob,
    ):
        await alice.create_board("Plan", 8, 4, board="plan")
        await alice.join("plan")
        bob_board = await bob.join("plan")
        seen: list[CellChanged] = []
        unsubscribe = bob.on(CellChanged, seen.append)
        pending_marks: list[int] = []
        alice.on(PendingChanged, lambda e: pending_marks.append(len(alice.pending(e.board))))

        ack = await alice.set_cell("plan", 1, 2, "hello")
        assert (ack.applied, ack.version) == (True, 1)
        assert pending_marks == [1, 0]  # marked while in flight, cleared by the ack
        await eventually(lambda: bob_board.cells.value(1, 2) == "hello")
        assert [(e.x, e.y, e.value, e.by) for e in seen] == [(1, 2, "hello", "alice")]
        unsubscribe()
        await alice.set_cell("plan", 1, 2, "again")
        await eventually(lambda: bob_board.cells.value(1, 2) == "again")
        assert len(seen) == 1

        stream = bob.events()
        await alice.set_status("busy")
        async with asyncio.timeout(3):
            async for event in stream:
                if isinstance(event, Presence) and event.user == "alice":
                    assert event.status == "busy"
                    break
        await stream.aclose()  # type: ignore[attr-defined]

        alice.move_cursor("plan", 3, 3)
        await eventually(lambda: bob_board.cursors.get("alice") == (3, 3))
        with pytest.raises(ClientError) as refused:
            await alice.join("nope")
        assert refused.value.code == "not_found"


async def test_cursor_moves_are_throttled_and_the_last_one_lands(server: CollabServer) -> None:
    async with (
        CollabClient(server.url, token=token("alice", "core")) as alice,
        CollabClient(server.url, token=token("bob", "core")) as bob,
    ):
        await alice.create_board("Plan", 200, 4, board="plan")
        await alice.join("plan")
        board = await bob.join("plan")
        for x in range(200):
            alice.move_cursor("plan", x, 1)  # a burst: never blocks
        await eventually(lambda: board.cursors.get("alice") == (199, 1))


async def test_bad_token_closes_unauthorized_after_one_attempt(server: CollabServer) -> None:
    client = CollabClient(server.url, token="not-a-token", backoff=fast_backoff())
    with pytest.raises(ConnectionError, match="unauthorized"):
        async with client:
            pass
    assert client.attempts == 1
    assert isinstance(client.state, Closed)
    assert client.state.reason == "unauthorized"
    assert "refused the token" in client.state.detail


async def test_expired_token_in_hello_path_is_also_final(start_server: StartServer) -> None:
    server = await start_server(auth="open", secret=None)
    client = CollabClient(server.url, token="abc", backoff=fast_backoff())  # open server: 401
    with pytest.raises(ConnectionError, match="unauthorized"):
        await client.__aenter__()
    assert client.attempts == 1


async def test_backoff_delays_with_fake_sleep(unused_tcp_port: int) -> None:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    def run(seed: int) -> CollabClient:
        return CollabClient(
            f"ws://127.0.0.1:{unused_tcp_port}/ws",
            user="a",
            team="t",
            backoff=Backoff(rng=random.Random(seed)),
            max_attempts=12,
            sleep=fake_sleep,
        )

    client = run(42)
    client.start()
    with pytest.raises(ConnectionError, match="gave_up"):
        await client.wait_connected()
    await client.close()
    first = list(slept)
    assert len(first) == 12
    ceilings = [min(10.0, 2.0 ** (n - 1)) for n in range(1, 13)]
    assert all(0 <= d <= c for d, c in zip(first, ceilings, strict=True))
    assert max(first) > 1.0  # real backoff, not a constant
    slept.clear()
    again = run(42)
    again.start()
    with pytest.raises(ConnectionError):
        await again.wait_connected()
    await again.close()
    assert slept == first


async def test_converges_while_a_proxy_cuts_every_connection(server: CollabServer) -> None:
    proxy = Proxy("127.0.0.1", server.port)
    await proxy.start()
    clients = [
        CollabClient(
            proxy.url(), token=token(f"u{n}", "core"), client_id=f"c-{n}", backoff=fast_backoff(n)
        )
        for n in range(3)
    ]
    for client in clients:
        await client.__aenter__()
    await clients[0].create_board("Plan", 6, 6, board="plan")
    for client in clients:
        await client.join("plan")

    async def cutter() -> None:
        while True:
            await asyncio.sleep(0.3)  # kept: cuts at a steady pace while edits flow
            proxy.cut()

    async def edit(client: CollabClient, n: int) -> list[tuple[int, int, str]]:
        rng = random.Random(n)
        acked = []
        for i in range(60):
            x, y, value = rng.randrange(6), rng.randrange(6), f"u{n}-{i}"
            ack = await client.set_cell("plan", x, y, value)
            acked.append((x, y, value) if ack.applied else None)
            await asyncio.sleep(rng.uniform(0, 0.02))
        return [a for a in acked if a is not None]

    cutting = asyncio.create_task(cutter())
    reconnects = [0]
    for client in clients:
        client.on(
            StateChanged,
            lambda e: reconnects.__setitem__(0, reconnects[0] + isinstance(e.state, Reconnecting)),
        )
    results = await asyncio.gather(*(edit(c, n) for n, c in enumerate(clients)))
    cutting.cancel()
    assert reconnects[0] >= 3, "the proxy never cut a connection"

    stored = await server.store.load_cells("core", "plan")

    def caught_up(c: CollabClient) -> bool:
        return (
            isinstance(c.state, Connected)
            and c.joined["plan"].cells.digest() == CellMap(stored).digest()
        )

    for client in clients:
        await eventually(functools.partial(caught_up, client))
    by_cell = {(o.x, o.y): o for o in stored}
    sent_ops = 3 * 60
    board = await server.store.get_board("core", "plan")
    assert board is not None
    assert board.version <= sent_ops  # no op was applied twice
    assert sum(len(r) for r in results) <= board.version
    for n, acked in enumerate(results):
        client_id = f"c-{n}"
        for x, y, value in acked:
            winner = by_cell[(x, y)]
            assert winner.stamp >= (0, client_id, value)  # still in effect or beaten
    for client in clients:
        await client.close()
    await proxy.close()


from tui_collab.cells import CellMap  # noqa: E402  (used above, kept near its test)


async def test_reconnects_by_itself_after_sigkill_and_restart(tmp_path: Path) -> None:
    cap = 0.5
    server = ServerProcess(tmp_path / "data", "--auth", "open")
    url = server.start()
    port = server.port
    try:
        async with CollabClient(
            url, user="alice", team="core", backoff=fast_backoff(cap_s=cap)
        ) as alice:
            await alice.create_board("Plan", 4, 4, board="plan")
            await alice.join("plan")
            await alice.set_status("busy")
            await alice.set_cell("plan", 0, 0, "before")
            server.kill()
            await eventually(lambda: isinstance(alice.state, Reconnecting))
            await asyncio.sleep(1.0)  # down for a while: several attempts fail

            server = ServerProcess(tmp_path / "data", "--auth", "open")
            server.start(port=port)
            loop = asyncio.get_running_loop()
            back = loop.time()
            await eventually(
                lambda: (
                    isinstance(alice.state, Connected)
                    and alice.presence.get("alice") is not None
                    and alice.presence["alice"].status == "busy"
                    and alice.joined["plan"].cells.value(0, 0) == "before"
                ),
                timeout=2 * cap + 2,
            )
            assert loop.time() - back <= 2 * cap + 0.5
            assert [b for b in alice.boards] == ["plan"]
    finally:
        server.stop()


async def test_offline_edits_apply_in_order_and_survive_a_second_crash(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--auth", "open")
    url = server.start()
    port = server.port
    try:
        async with CollabClient(
            url, user="alice", team="core", client_id="c-alice", backoff=fast_backoff(cap_s=0.3)
        ) as alice:
            await alice.create_board("Plan", 4, 4, board="plan")
            await alice.join("plan")
            server.kill()
            await eventually(lambda: isinstance(alice.state, Reconnecting))
            offline = [
                asyncio.create_task(alice.set_cell("plan", 1, 1, f"v{n}")) for n in range(10)
            ]
            offline.append(asyncio.create_task(alice.set_cell("plan", 2, 2, "other")))
            await eventually(lambda: len(alice.pending("plan")) == 11, what="11 edits pending")
            assert len(alice.pending("plan")) == 11
            assert not any(task.done() for task in offline)

            server = ServerProcess(tmp_path / "data", "--auth", "open")
            server.start(port=port)
            acks = await asyncio.wait_for(asyncio.gather(*offline), 10)
            assert all(ack.applied for ack in acks)  # later clocks: each one wins in turn
            assert [ack.version for ack in acks] == list(range(1, 12))  # applied in order
            assert alice.pending("plan") == []
            server.kill()

        server = ServerProcess(tmp_path / "data", "--auth", "open")
        url = server.start(port=port)
        async with CollabClient(url, user="bob", team="core") as bob:
            board = await bob.join("plan")
            assert (board.cells.value(1, 1), board.cells.value(2, 2)) == ("v9", "other")
    finally:
        server.stop()


async def test_moves_out_at_most_30_a_second_and_the_last_always(unused_tcp_port: int) -> None:
    """Count what reaches the wire, with a minimal real server that speaks the handshake."""
    from websockets.asyncio.server import ServerConnection, serve

    from tui_collab import protocol as p

    moves: list[tuple[int, int]] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(welcome())
        async for frame in ws:
            message = p.decode(frame)
            if isinstance(message, p.CursorMove):
                moves.append((message.x, message.y))

    async with (
        serve(handler, "127.0.0.1", unused_tcp_port),
        CollabClient(f"ws://127.0.0.1:{unused_tcp_port}/ws", user="a", team="t") as client,
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        x = 0
        while loop.time() - started < 1.0:  # ~1,000 moves a second for one second
            client.move_cursor("plan", x % 200, 0)
            x += 1
            await asyncio.sleep(0.001)
        final = ((x - 1) % 200, 0)
        await eventually(lambda: moves and moves[-1] == final)
    assert x > 300
    assert len(moves) <= 33, f"{len(moves)} moves went out in one second"


async def test_moves_to_the_next_url_when_one_is_down(
    server: CollabServer, unused_tcp_port: int
) -> None:
    dead = f"ws://127.0.0.1:{unused_tcp_port}/ws"
    async with CollabClient(
        [dead, server.url], token=token("alice", "core"), backoff=fast_backoff()
    ) as client:
        assert client.state == Connected(server.url, client.welcome.session)  # type: ignore[union-attr]
        assert client.attempts == 2


async def test_reconnect_now_skips_the_backoff_wait(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--auth", "open")
    url = server.start()
    port = server.port
    try:
        slow = Backoff(base_s=30.0, cap_s=30.0, rng=random.Random(1))
        async with CollabClient(url, user="alice", team="core", backoff=slow) as alice:
            server.kill()
            await eventually(lambda: isinstance(alice.state, Reconnecting))
            assert alice.state.next_delay > 1.0  # type: ignore[union-attr]
            server = ServerProcess(tmp_path / "data", "--auth", "open")
            server.start(port=port)
            alice.reconnect_now()
            await eventually(lambda: isinstance(alice.state, Connected), timeout=3)
    finally:
        server.stop()

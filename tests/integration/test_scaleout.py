"""Several server processes on one real redis-server: one team, whichever node you reach.

Every node is a real `tui-collab-server serve --redis` subprocess; clients are spread
across them. Liveness timers are shrunk (`--node-ttl 2`) so a dead node is noticed in
seconds, as it would be in 15 by default.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.auth import SECRET_ENV
from server.redis_util import awaited
from tests.conftest import SECRET, token
from tests.support.board import create_board, join_board
from tests.support.mirror import mirror
from tests.support.peer import Peer
from tests.support.process import ServerProcess
from tests.support.proxy import Proxy
from tests.support.redis_server import RedisServer
from tests.support.roster import entries
from tests.support.waiting import eventually
from tui_collab.backoff import Backoff
from tui_collab.cells import CellMap
from tui_collab.client import CollabClient

NODE_TTL_S = 2.0


class Nodes:
    """N server processes on one Redis, each with its own log."""

    def __init__(self, root: Path, redis_url: str, count: int) -> None:
        self.redis_url = redis_url
        self.nodes = [
            ServerProcess(
                root / f"node{n}",
                "--redis",
                redis_url,
                "--node-ttl",
                str(NODE_TTL_S),
                env={SECRET_ENV: SECRET},
            )
            for n in range(count)
        ]

    def start(self) -> Nodes:
        for node in self.nodes:
            node.start()
        return self

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def logs(self) -> str:
        return "\n".join(node.log()[-3000:] for node in self.nodes)


@pytest.fixture
def nodes(redis_server: RedisServer, tmp_path: Path) -> Iterator[Nodes]:
    cluster = Nodes(tmp_path, redis_server.url, 3).start()
    yield cluster
    cluster.stop()


def online(peer: Peer) -> dict[str, str]:
    """Each user's latest presence status as `peer` saw it."""
    status = {m["user"]: m["status"] for m in peer.welcome.get("members", [])}
    for message in peer.log:
        for kind, entry in entries(message):
            if kind == "presence":
                status[entry["user"]] = entry["status"]
    return status


async def test_presence_boards_cursors_typing_and_cells_cross_nodes(nodes: Nodes) -> None:
    ada = await Peer.join(nodes.urls[0], token("ada", "core"), header=True)
    bob = await Peer.join(nodes.urls[1], token("bob", "core"), header=True)
    cy = await Peer.join(nodes.urls[2], token("cy", "core"), header=True)
    await eventually(
        lambda: online(ada).get("bob") == "online" and online(ada).get("cy") == "online",
        5,
        "ada (node 0) sees bob and cy online",
    )
    # Across nodes presence is eventually consistent: cy's welcome may predate ada's part.
    await eventually(lambda: online(cy).get("ada") == "online", 5, "cy sees ada online")

    await create_board(bob, "plan", 8, 8)
    await ada.next("board.created", timeout=5)
    await cy.next("board.created", timeout=5)
    for peer in (ada, bob, cy):
        await join_board(peer, "plan")
    await eventually(
        lambda: (
            {e["user"] for m in ada.log for k, e in entries(m) if k == "joined"} >= {"bob", "cy"}
        ),
        5,
        "ada sees bob and cy join the board",
    )
    late = await Peer.join(nodes.urls[0], token("dee", "core"), header=True)
    state = await join_board(late, "plan")
    assert {p["user"] for p in state["participants"]} == {"ada", "bob", "cy", "dee"}

    await bob.send({"type": "cursor.move", "board": "plan", "x": 3, "y": 4})
    for watcher in (ada, cy):
        frame = await watcher.next("cursors", timeout=5)
        assert {"user": "bob", "x": 3, "y": 4} in frame["cursors"]
    await cy.send({"type": "typing", "board": "plan", "x": 1, "y": 1, "active": True})
    assert (await ada.next("typing", timeout=5))["user"] == "cy"

    for n, peer in enumerate((ada, bob, cy)):
        await peer.send(
            {
                "type": "cell.set",
                "board": "plan",
                "x": n,
                "y": 0,
                "value": f"from-{n}",
                "op": f"o{n}",
                "clock": 1,
            }
        )
    for peer in (ada, bob, cy, late):
        await eventually(
            lambda peer=peer: (
                mirror(peer.log, "plan").values()  # type: ignore[misc]
                == {(0, 0): "from-0", (1, 0): "from-1", (2, 0): "from-2"}
            ),
            5,
            "every client sees every edit",
        )
    # One presence per user, however many nodes hold them.
    bob2 = await Peer.join(nodes.urls[2], token("bob", "core"), header=True)
    await eventually(
        lambda: any(
            k == "presence" and e["user"] == "bob" and e["connections"] == 2
            for m in ada.log
            for k, e in entries(m)
        ),
        5,
        "bob on two nodes counts two connections in one presence",
    )
    await bob2.close()
    for peer in (ada, bob, cy, late):
        await peer.close()


async def _edit(client: CollabClient, rng: random.Random, count: int, acked: list[Any]) -> None:
    for n in range(count):
        x, y = rng.randrange(6), rng.randrange(6)
        value = f"{client.client_id[-4:]}-{n}"
        try:
            ack = await asyncio.wait_for(client.set_cell("grid", x, y, value), 20)
        except (TimeoutError, ConnectionError):
            continue
        acked.append((x, y, value, ack.applied, ack.version))
        if rng.random() < 0.3:
            await asyncio.sleep(rng.random() * 0.01)


def assert_no_acked_edit_lost(acked: list[Any], grid: CellMap) -> None:
    """On every cell, the surviving value is the last acked one or came after it.

    Values are unique, so the store's version of an acked value is known from its ack:
    if the cell shows an acked value, no acked op on that cell may have a later version.
    """
    applied = [entry for entry in acked if entry[3]]
    assert applied
    version_of = {value: version for _, _, value, _, version in applied}
    latest: dict[tuple[int, int], int] = {}
    for x, y, _, _, version in applied:
        latest[(x, y)] = max(latest.get((x, y), 0), version)
    for (x, y), version in latest.items():
        cell = grid.get(x, y)
        assert cell is not None, f"acked edits at {x},{y} lost"
        shown = version_of.get(cell.value)
        assert shown is None or shown >= version, f"{x},{y} lost the edit at version {version}"


async def spread_clients(urls: list[str], count: int) -> list[CollabClient]:
    clients = []
    for n in range(count):
        ordered = urls[n % len(urls) :] + urls[: n % len(urls)]  # home node first
        client = CollabClient(
            ordered,
            token=token(f"u{n}", "core"),
            backoff=Backoff(base_s=0.05, cap_s=0.5),
        )
        client.start()
        await client.wait_connected()
        clients.append(client)
    return clients


async def converged(clients: list[CollabClient], timeout: float) -> CellMap:
    """Wait until every client's grid is the same; return it."""

    def describe() -> str:
        return "; ".join(
            f"{c.client_id[-4:]} {type(c.state).__name__}: {len(c.joined['grid'].cells)} "
            f"cells v{c.joined['grid'].version} {c.joined['grid'].cells.digest()[:8]} "
            f"pending {len(c.pending('grid'))}"
            for c in clients
        )

    try:
        await eventually(
            lambda: (
                len({c.joined["grid"].cells.digest() for c in clients}) == 1
                and not any(c.pending("grid") for c in clients)
            ),
            timeout,
            "all clients converge",
        )
    except AssertionError as exc:
        first = {
            (o.x, o.y): (o.clock, o.client[-4:], o.value, o.version)
            for o in clients[0].joined["grid"].cells
        }
        diffs = []
        for c in clients[1:]:
            other = {
                (o.x, o.y): (o.clock, o.client[-4:], o.value, o.version)
                for o in c.joined["grid"].cells
            }
            diffs.append(
                {
                    k: (first.get(k), other.get(k))
                    for k in first.keys() | other.keys()
                    if first.get(k) != other.get(k)
                }
            )
        raise AssertionError(f"{exc}: {describe()} DIFFS {diffs}") from None
    return clients[0].joined["grid"].cells


async def check_against_fresh_join(url: str, grid: CellMap) -> None:
    checker = await Peer.join(url, token("checker", "core"), header=True)
    await join_board(checker, "grid")
    assert mirror(checker.log, "grid").digest() == grid.digest()
    await checker.close()


@pytest.fixture
async def grid_clients(nodes: Nodes) -> AsyncIterator[list[CollabClient]]:
    clients = await spread_clients(nodes.urls, 6)
    await clients[0].create_board("Grid", 6, 6, board="grid")
    for client in clients:
        await client.join("grid")
    yield clients
    for client in clients:
        await client.close()


async def test_clients_on_three_nodes_converge(
    nodes: Nodes, grid_clients: list[CollabClient]
) -> None:
    rng = random.Random(3)
    acked: list[Any] = []
    await asyncio.gather(*(_edit(c, random.Random(rng.random()), 80, acked) for c in grid_clients))
    grid = await converged(grid_clients, 10)
    assert len(acked) == 6 * 80
    for url in nodes.urls:
        await check_against_fresh_join(url, grid)


async def test_a_killed_node_s_users_go_offline_and_its_clients_move_on(
    nodes: Nodes, grid_clients: list[CollabClient]
) -> None:
    watcher = await Peer.join(nodes.urls[0], token("watcher", "core"), header=True)
    victims = {f"u{n}" for n in range(6) if n % 3 == 1}  # homed on node 1
    rng = random.Random(5)
    acked: list[Any] = []
    edits = asyncio.gather(
        *(_edit(c, random.Random(rng.random()), 60, acked) for c in grid_clients)
    )
    await asyncio.sleep(0.3)  # kept: the kill lands while edits flow
    nodes.nodes[1].kill()
    await edits
    grid = await converged(grid_clients, 15)
    for client in grid_clients:
        assert client.welcome is not None
    assert_no_acked_edit_lost(acked, grid)
    await check_against_fresh_join(nodes.urls[0], grid)
    await eventually(
        lambda: all(online(watcher).get(user) == "online" for user in victims),
        10,
        "the killed node's users are back online through other nodes",
    )
    await watcher.close()


async def test_a_dead_node_s_users_go_offline_within_the_ttl(nodes: Nodes) -> None:
    watcher = await Peer.join(nodes.urls[0], token("watcher", "core"), header=True)
    stranded = await Peer.join(nodes.urls[1], token("stranded", "core"), header=True)
    await eventually(lambda: online(watcher).get("stranded") == "online", 5, "stranded seen online")
    nodes.nodes[1].kill()
    killed_at = time.monotonic()
    await eventually(
        lambda: online(watcher).get("stranded") == "offline",
        NODE_TTL_S * 3,
        "a SIGKILLed node's user goes offline on the others",
    )
    print(f"\noffline {time.monotonic() - killed_at:.2f} s after SIGKILL (ttl {NODE_TTL_S} s)")
    # And its entries are deleted from Redis, not only skipped.
    redis = Redis.from_url(nodes.redis_url, decode_responses=True)
    try:
        fields: list[str] = []

        async def deleted() -> bool:
            nonlocal fields
            fields = await awaited(redis.hkeys("tc:t:core:parts"))
            return not any(f.endswith("|stranded") for f in fields)

        await eventually(deleted, 4, "the dead node's parts are deleted from Redis")
        assert not any(f.endswith("|stranded") for f in fields), fields
    finally:
        await redis.aclose()
    del stranded
    await watcher.close()


async def test_a_redis_restart_loses_no_acked_edit(
    nodes: Nodes, redis_server: RedisServer, grid_clients: list[CollabClient]
) -> None:
    rng = random.Random(11)
    acked: list[Any] = []
    edits = asyncio.gather(
        *(_edit(c, random.Random(rng.random()), 60, acked) for c in grid_clients)
    )
    await asyncio.sleep(0.3)  # kept: the restart lands while edits flow
    await asyncio.to_thread(redis_server.restart)
    await edits
    grid = await converged(grid_clients, 20)
    assert_no_acked_edit_lost(acked, grid)
    for url in nodes.urls:
        await check_against_fresh_join(url, grid)


async def test_clients_converge_after_the_nodes_links_to_redis_are_cut(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    proxy = Proxy("127.0.0.1", redis_server.port)
    await proxy.start()
    # Started from a thread: the proxy runs on this event loop and must keep forwarding.
    cluster = await asyncio.to_thread(Nodes(tmp_path, f"redis://127.0.0.1:{proxy.port}/0", 2).start)
    try:
        clients = await spread_clients(cluster.urls, 4)
        await clients[0].create_board("Grid", 6, 6, board="grid")
        for client in clients:
            await client.join("grid")
        rng = random.Random(13)
        acked: list[Any] = []
        edits = asyncio.gather(*(_edit(c, random.Random(rng.random()), 60, acked) for c in clients))
        for _ in range(4):  # cut every link to Redis a few times while edits flow
            await asyncio.sleep(0.25)  # kept: the cuts land while edits flow
            proxy.cut()
        await edits
        grid = await converged(clients, 20)
        assert_no_acked_edit_lost(acked, grid)
        for client in clients:
            await client.close()
    finally:
        cluster.stop()
        await proxy.close()

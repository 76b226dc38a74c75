"""Shared cells over real sockets: convergence, retransmission, resume with since/epoch."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

from server.app import CollabServer
from tests.conftest import StartServer, token
from tests.support.board import create_board, join_board
from tests.support.mirror import mirror
from tests.support.peer import Peer
from tests.support.waiting import eventually
from tui_collab.cells import CellMap, CellOp


async def _send_edits(
    peer: Peer, user: int, count: int, rng: random.Random
) -> list[dict[str, Any]]:
    """Fire `count` cell.set without waiting, then collect every ack."""
    sent = []
    for n in range(count):
        op = {
            "type": "cell.set",
            "board": "plan",
            "x": rng.randrange(4),
            "y": rng.randrange(3),
            "value": f"u{user}-{n}",
            "op": f"u{user}-{n}",
            "clock": rng.randrange(1, 30),
        }
        sent.append(op)
        await peer.send(op)
    for op in sent:
        ack = await peer.next("ack", timeout=20, re=op["op"])
        op["applied"] = ack["applied"]
    return sent


async def test_five_clients_converge_on_overlapping_cells(server: CollabServer) -> None:
    peers = [
        await Peer.join(server.url, token(f"u{n}", "core"), client_id=f"c-{n}") for n in range(5)
    ]
    await create_board(peers[0], "plan", width=4, height=3)
    for peer in peers:
        await join_board(peer, "plan")
    rng = random.Random(7)
    batches = await asyncio.gather(
        *(_send_edits(peer, n, 200, random.Random(rng.random())) for n, peer in enumerate(peers))
    )
    stored = await server.store.load_cells("core", "plan")
    expected: dict[tuple[int, int], tuple[int, str, str]] = {}
    for n, batch in enumerate(batches):
        for op in batch:
            stamp = (op["clock"], f"c-{n}", op["value"])
            key = (op["x"], op["y"])
            expected[key] = max(expected.get(key, stamp), stamp)
    assert {(o.x, o.y): o.stamp for o in stored} == expected
    server_grid = CellMap(stored)
    # Every op's fan-out goes out before its ack, so after the last ack each mirror is whole
    # once each peer has read what is already on its way.
    await eventually(
        lambda: all(mirror(p.log, "plan").digest() == server_grid.digest() for p in peers),
        what="every peer's mirror matches the store",
    )
    for peer in peers:
        assert mirror(peer.log, "plan").digest() == server_grid.digest()
    applied = sum(op["applied"] for batch in batches for op in batch)
    assert applied == (await server.store.get_board("core", "plan")).version  # type: ignore[union-attr]
    for peer in peers:
        await peer.close()


async def test_a_resent_op_is_acked_but_changes_nothing(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"), client_id="c-alice")
    bob = await Peer.join(server.url, token("bob", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    await join_board(bob, "plan")
    op = {
        "type": "cell.set",
        "board": "plan",
        "x": 2,
        "y": 2,
        "value": "hi",
        "op": "o-1",
        "clock": 1,
    }
    await alice.send(op)
    first = await alice.next("ack", re="o-1")
    assert (first["applied"], first["version"]) == (True, 1)
    await bob.next("cell.changed")
    await alice.close()
    # Same op from a new connection of the same installation, as after a reconnect.
    alice = await Peer.join(server.url, token("alice", "core"), client_id="c-alice")
    await join_board(alice, "plan")
    await alice.send(op)
    again = await alice.next("ack", re="o-1")
    assert (again["applied"], again["version"]) == (False, 1)
    assert [m for m in await bob.drain(0.2) if m["type"] == "cell.changed"] == []
    assert len(await server.store.load_cells("core", "plan")) == 1


async def test_clearing_a_cell_is_an_op_like_any_other(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    for n, value in enumerate(["x", ""], start=1):
        await alice.send(
            {
                "type": "cell.set",
                "board": "plan",
                "x": 0,
                "y": 0,
                "value": value,
                "op": f"o{n}",
                "clock": n,
            }
        )
        await alice.next("ack", re=f"o{n}")
    state = await join_board(alice, "plan")
    assert [c["value"] for c in state["cells"]] == [""]
    assert mirror(alice.log, "plan").values() == {}


async def _edit(peer: Peer, x: int, y: int, value: str, clock: int) -> None:
    op_id = f"{value}-{clock}"
    await peer.send(
        {
            "type": "cell.set",
            "board": "plan",
            "x": x,
            "y": y,
            "value": value,
            "op": op_id,
            "clock": clock,
        }
    )
    assert (await peer.next("ack", re=op_id))["applied"]


async def test_rejoin_with_since_gets_only_what_changed(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    await create_board(alice, "plan", width=10, height=10)
    await join_board(alice, "plan")
    for n in range(30):
        await _edit(alice, n % 10, n // 10, f"old{n}", n + 1)
    before = await join_board(bob, "plan")
    assert before["complete"] is True
    assert len(before["cells"]) == 30
    bob_cells = mirror(bob.log, "plan")
    await bob.close()

    changed = set()
    for n in range(20):
        x, y = n % 10, (n // 10) * 4 + 1  # row 1 overwrites old cells, row 5 is new
        changed.add((x, y))
        await _edit(alice, x, y, f"new{n}", 100 + n)
    assert len(changed) == 20

    bob = await Peer.join(server.url, token("bob", "core"))
    delta = await join_board(bob, "plan", since=before["version"], epoch=before["epoch"])
    assert delta["complete"] is False
    assert {(c["x"], c["y"]) for c in delta["cells"]} == changed
    assert delta["version"] == before["version"] + 20
    for cell in delta["cells"]:
        bob_cells.apply(
            CellOp(cell["x"], cell["y"], cell["value"], cell["clock"], cell["client"], cell["by"])
        )

    fresh = await join_board(alice, "plan")
    assert fresh["complete"] is True
    assert bob_cells.digest() == mirror([fresh], "plan").digest()

    up_to_date = await join_board(bob, "plan", since=delta["version"], epoch=delta["epoch"])
    assert (up_to_date["complete"], up_to_date["cells"]) == (False, [])


async def test_since_from_another_epoch_or_the_future_gets_a_snapshot(
    start_server: StartServer, tmp_path: Path
) -> None:
    first = await start_server(data_dir=tmp_path / "one")
    alice = await Peer.join(first.url, token("alice", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    await _edit(alice, 1, 1, "a", 1)
    await _edit(alice, 2, 2, "b", 2)

    other_epoch = await join_board(alice, "plan", since=1, epoch="e-0000000000000000")
    assert other_epoch["complete"] is True
    assert len(other_epoch["cells"]) == 2
    beyond = await join_board(alice, "plan", since=99, epoch=first.store.epoch)
    assert beyond["complete"] is True
    assert len(beyond["cells"]) == 2

    # A replaced store (new data dir) has a new epoch: an old `since` never yields a delta.
    await alice.close()
    second = await start_server(data_dir=tmp_path / "two")
    assert second.store.epoch != first.store.epoch
    bob = await Peer.join(second.url, token("bob", "core"))
    await create_board(bob, "plan")
    state = await join_board(bob, "plan", since=1, epoch=first.store.epoch)
    assert (state["complete"], state["cells"], state["epoch"]) == (True, [], second.store.epoch)

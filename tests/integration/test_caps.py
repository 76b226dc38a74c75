"""Caps: connections (global, per user, unauthenticated per IP), boards, cells, backlog.

Over a connection cap the upgrade is refused with HTTP 503 before any WebSocket
exists, each refusal leaves one audit line, and a legitimate client still gets in.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.conftest import StartServer, token
from tests.support.board import cell_events, create_board, join_board, next_cell
from tests.support.metrics import sample
from tests.support.peer import Peer
from tests.support.refusals import audit_lines, refused_status
from tests.support.waiting import eventually
from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient


def bearer(user: str, team: str = "core") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, team)}"}


async def test_a_user_over_eight_connections_gets_503_and_the_ninth_fits_after_one_leaves(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server()
    peers = [await Peer.join(server.url, token("ada", "core"), header=True) for _ in range(8)]
    with caplog.at_level(logging.WARNING, "tui_collab.audit"):
        assert await refused_status(server.url, bearer("ada")) == 503
    assert any(
        "event=cap_refused" in line and "user=ada" in line and "cap=per_user" in line
        for line in audit_lines(caplog)
    )
    # The same cap holds for a token sent in hello: error, then 1013.
    late = await Peer.join_raw(server.url, {"type": "hello", "v": 1, "token": token("ada", "core")})
    refusal = await late.next("error")
    assert refusal["code"] == "rate_limited"
    assert await late.closed() == 1013
    # Another user is not affected, and ada gets in again once a connection ends.
    await (await Peer.join(server.url, token("bob", "core"), header=True)).close()
    await peers.pop().close()
    await eventually(
        lambda: len(server.hub.user_sessions("core", "ada")) == 7, what="ada's socket is gone"
    )
    peers.append(await Peer.join(server.url, token("ada", "core"), header=True))
    for peer in peers:
        await peer.close()


async def test_unauthenticated_sockets_per_ip_are_capped_but_a_bearer_client_connects(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(max_unauthenticated_per_ip=3)
    silent = [await Peer.open(server.url) for _ in range(3)]  # upgraded, never say hello
    with caplog.at_level(logging.WARNING, "tui_collab.audit"):
        assert await refused_status(server.url) == 503
    assert any("cap=unauthenticated_per_ip" in line for line in audit_lines(caplog))
    legit = await Peer.join(server.url, token("ada", "core"), header=True)
    assert legit.welcome["user"]["id"] == "ada"
    # A socket that authenticates with hello frees its slot.
    await silent[0].send({"type": "hello", "v": 1, "token": token("bob", "core")})
    await silent[0].next("welcome")
    another = await Peer.join(server.url, token("cy", "core"))
    for peer in [*silent, legit, another]:
        await peer.close()


async def test_the_global_cap_refuses_with_503_and_the_client_library_retries_until_in(
    start_server: StartServer,
) -> None:
    server = await start_server(max_connections=3)
    holders = [await Peer.join(server.url, token(f"u{n}", "core"), header=True) for n in range(3)]
    assert await refused_status(server.url, bearer("late")) == 503
    client = CollabClient(
        server.url, token=token("late", "core"), backoff=Backoff(base_s=0.05, cap_s=0.2)
    )
    client.start()
    await eventually(lambda: client.attempts >= 2, what="refused, retried")
    await holders.pop().close()
    await asyncio.wait_for(client.wait_connected(), 5)
    await client.close()
    for peer in holders:
        await peer.close()


async def test_auth_failures_are_audited_without_the_token(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server()
    forged = token("ada", "core")[:-4] + "AAAA"
    with caplog.at_level(logging.WARNING, "tui_collab.audit"):
        assert await refused_status(server.url, {"Authorization": f"Bearer {forged}"}) == 401
        peer = await Peer.join_raw(server.url, {"type": "hello", "v": 1, "token": forged})
        assert await peer.closed() == 4001
    lines = audit_lines(caplog)
    assert any("event=auth_failed" in line and "stage=upgrade" in line for line in lines)
    assert any("event=auth_failed" in line and "stage=hello" in line for line in lines)
    assert all(forged not in line and forged[:20] not in line for line in lines)


async def test_boards_per_team_are_capped(start_server: StartServer) -> None:
    server = await start_server(max_boards_per_team=2)
    ada = await Peer.join(server.url, token("ada", "core"))
    assert ada.welcome["limits"]["max_boards_per_team"] == 2
    await create_board(ada, "one")
    await create_board(ada, "two")
    refused = await _create(ada, "three")
    assert refused["type"] == "error"
    assert refused["code"] == "quota_exceeded"
    again = await _create(ada, "one")  # "open or create" an existing one still works
    assert again == {"type": "ack", "re": "create-one", "applied": False}
    other_team = await Peer.join(server.url, token("bob", "ops"))
    await create_board(other_team, "three")
    await ada.close()
    await other_team.close()


async def _create(peer: Peer, board: str) -> dict[str, object]:
    await peer.send(
        {
            "type": "board.create",
            "id": f"create-{board}",
            "board": board,
            "title": board,
            "width": 5,
            "height": 5,
        }
    )
    while True:
        reply = await peer.next()
        if reply.get("re") == f"create-{board}":
            return reply


async def test_non_empty_cells_per_board_are_capped(start_server: StartServer) -> None:
    server = await start_server(max_cells_per_board=3)
    ada = await Peer.join(server.url, token("ada", "core"))
    await create_board(ada, "plan")
    await join_board(ada, "plan")

    async def set_cell(x: int, value: str, op: str) -> dict[str, object]:
        await ada.send(
            {
                "type": "cell.set",
                "board": "plan",
                "x": x,
                "y": 0,
                "value": value,
                "op": op,
                "clock": int(op[1:]),
            }
        )
        while True:
            reply = await ada.next()
            if reply.get("re") == op:
                return reply

    for x in range(3):
        assert (await set_cell(x, f"v{x}", f"o{x + 1}"))["applied"] is True
    refused = await set_cell(3, "v3", "o4")
    assert refused["type"] == "error"
    assert refused["code"] == "quota_exceeded"
    assert (await set_cell(0, "overwrite", "o5"))["applied"] is True  # a filled cell may change
    assert (await set_cell(1, "", "o6"))["applied"] is True  # clearing frees one
    assert (await set_cell(3, "v3", "o7"))["applied"] is True
    await ada.close()


async def test_a_peer_over_the_hard_cap_is_closed_1013_at_once(start_server: StartServer) -> None:
    server = await start_server(
        send_high_water_bytes=8 * 1024,
        send_hard_cap_bytes=64 * 1024,
        slow_close_after_s=60,
        slow_close_grace_s=0.5,
    )
    writer = await Peer.join(server.url, token("ada", "core"))
    stuck = await Peer.join(server.url, token("bob", "core"))
    await create_board(writer, "plan", 50, 50)
    await join_board(writer, "plan")
    await join_board(stuck, "plan")
    stuck.ws.transport.pause_reading()  # reads nothing from now on
    # The kernel takes in several hundred KB before anything piles up in the server, and
    # the sweep that also counts the kernel's queue runs twice a second: keep writing
    # until the cap is noticed, within a deadline.
    deadline = asyncio.get_running_loop().time() + 5
    for n in range(1, 20_000):
        assert asyncio.get_running_loop().time() < deadline, "never closed"
        value = "x" * 250
        await writer.send(
            {
                "type": "cell.set",
                "board": "plan",
                "x": n % 50,
                "y": (n // 50) % 50,
                "value": value,
                "op": f"o{n}",
                "clock": n,
            }
        )
        if n % 200 == 0:
            await writer.next("ack", re=f"o{n}", timeout=5)
            if sample(server.metrics, "tui_collab_slow_consumer_drops_total"):
                break
    assert sample(server.metrics, "tui_collab_slow_consumer_drops_total") == 1
    # The writer is unaffected and bob's socket is gone within the grace period.
    await writer.send({"type": "presence.query", "id": "still-here"})
    await writer.next("presence.snapshot", re="still-here")
    await eventually(lambda: server.hub.connection_count == 1, 1.0, "bob's socket is gone")
    await writer.close()


async def test_a_peer_behind_skips_cursors_then_gets_every_position_when_it_catches_up(
    start_server: StartServer,
) -> None:
    server = await start_server(send_high_water_bytes=4096, slow_close_after_s=30)
    writer = await Peer.join(server.url, token("ada", "core"))
    behind = await Peer.join(server.url, token("bob", "core"))
    await create_board(writer, "plan", 50, 50)
    await join_board(writer, "plan")
    await join_board(behind, "plan")
    behind.ws.transport.pause_reading()
    n = 0
    while not sample(server.metrics, "tui_collab_shed_frames_total"):
        n += 1
        assert n < 5000, "the peer never fell behind"
        await writer.send(
            {
                "type": "cell.set",
                "board": "plan",
                "x": n % 50,
                "y": 0,
                "value": "x" * 250,
                "op": f"o{n}",
                "clock": n,
            }
        )
        await writer.send({"type": "cursor.move", "board": "plan", "x": n % 50, "y": 1})
        if n % 50 == 0:
            await writer.next("ack", re=f"o{n}")
    # Kept: no assertion follows these pauses. They give the server's cursor flush (every
    # `cursor_interval_s`) time to queue positions behind bob's backlog, so that skipping is
    # exercised; the reads below wait for their frames whatever the timing.
    await asyncio.sleep(0.1)
    await writer.send({"type": "cursor.move", "board": "plan", "x": 7, "y": 7})
    await asyncio.sleep(0.1)
    behind.ws.transport.resume_reading()
    # Every cell change arrives (none is ever skipped), then the current cursor.
    await next_cell(behind, clock=n, timeout=5)
    cursor = await behind.next("cursors", timeout=5)
    while cursor["cursors"] != [{"user": "ada", "x": 7, "y": 7}]:
        cursor = await behind.next("cursors", timeout=5)
    changed = [cell["clock"] for cell in cell_events(behind.log)]
    assert changed == list(range(1, n + 1))
    assert server.hub.connection_count == 2
    await writer.close()
    await behind.close()


async def test_a_user_reconnecting_in_a_tight_loop_is_refused_503_then_let_back_in(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    # One connect back every 2 s: the five joins, the refusal and the late hello below
    # all fit in that on a loaded machine (at five a second, a join that took 0.2 s had
    # already earned the sixth connect back).
    server = await start_server(connects_per_user_s=0.5, connect_burst=5)
    for _ in range(5):
        await (await Peer.join(server.url, token("ada", "core"), header=True)).close()
    with caplog.at_level(logging.WARNING, "tui_collab.audit"):
        assert await refused_status(server.url, bearer("ada")) == 503
        late = await Peer.join_raw(
            server.url, {"type": "hello", "v": 1, "token": token("ada", "core")}
        )
        assert (await late.next("error"))["code"] == "rate_limited"
        assert await late.closed() == 1013
    assert any("cap=connect_rate" in line for line in audit_lines(caplog))
    bob = await Peer.join(server.url, token("bob", "core"), header=True)  # others unaffected
    # A delay is the point here: the bucket refills in real time, one every 2 s.
    await asyncio.sleep(2.1)
    ada = await Peer.join(server.url, token("ada", "core"), header=True)
    await ada.close()
    await bob.close()

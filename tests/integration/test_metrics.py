"""GET /metrics: Prometheus text that moves with what the server does."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from server.app import CollabServer
from tests.conftest import token
from tests.support.board import create_board, join_board
from tests.support.peer import Peer


def scrape(server: CollabServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics") as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def test_metrics_follow_connections_messages_errors_and_commits(
    server: CollabServer,
) -> None:
    before = await asyncio.to_thread(scrape, server)  # urllib blocks: not on the loop
    assert before[("tui_collab_connections", ())] == 0
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    await join_board(bob, "plan")
    for n in range(3):
        await alice.send(
            {
                "type": "cell.set",
                "board": "plan",
                "x": n,
                "y": 0,
                "value": "v",
                "op": f"o{n}",
                "clock": n + 1,
            }
        )
        await alice.next("ack", re=f"o{n}")
    await alice.send({"type": "cursor.move", "board": "plan", "x": 1, "y": 1})
    await bob.next("cursors")
    await alice.send_raw("not json")
    await alice.next("error")

    after = await asyncio.to_thread(scrape, server)
    assert after[("tui_collab_connections", ())] == 2
    assert after[("tui_collab_users_online", ())] == 2
    assert after[("tui_collab_messages_in_total", (("type", "cell.set"),))] == 3
    assert after[("tui_collab_messages_in_total", (("type", "invalid"),))] == 1
    # Each cell.changed went to both participants; each ack to alice alone.
    assert after[("tui_collab_messages_out_total", (("type", "cell.changed"),))] == 6
    assert after[("tui_collab_messages_out_total", (("type", "ack"),))] >= 3
    assert after[("tui_collab_errors_total", (("code", "bad_request"),))] == 1
    assert after[("tui_collab_cursor_flush_seconds_count", ())] >= 1
    assert after[("tui_collab_store_commit_seconds_count", ())] >= 4
    assert after[("tui_collab_fanout_frame_bytes_count", ())] > 0
    await alice.close()
    await bob.close()

"""Storms of joins: every participant gets O(1) frames per 50 ms window, not one per
joiner, and ends with the server's roster and presence list.

A real server on a loopback port (one process, then two on a real redis-server) and
real WebSocket peers; a `CollabClient` among the watchers checks that the client
library unpacks the batches into the same state.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.app import CollabServer
from tests.conftest import StartServer, token
from tests.integration.test_scaleout import Nodes
from tests.support.board import create_board, join_board
from tests.support.peer import Closed, Message, Peer
from tests.support.redis_server import RedisServer
from tests.support.roster import entries, presence_seen, roster_seen
from tests.support.waiting import eventually
from tui_collab.client import CollabClient

WINDOW_S = 0.05
ROSTER = ("participant.joined", "participant.left", "participants")
PRESENCE = ("presence", "presence.batch")


class Timed:
    """Every frame a peer receives from now on, with the loop time it arrived."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.frames: list[tuple[float, Message]] = []
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, peer: Peer) -> Timed:
        """From now on: what arrived before is read and left out."""
        await peer.drain(0.01)
        return cls(peer)

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                message = await self.peer.next(None, timeout=60)
                self.frames.append((loop.time(), message))
        except (Closed, TimeoutError):
            pass

    def times(self, kinds: tuple[str, ...]) -> list[float]:
        return [at for at, m in self.frames if m["type"] in kinds]

    def users(self, kind: str) -> set[str]:
        return {e["user"] for _, m in self.frames for k, e in entries(m) if k == kind}

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def assert_one_per_window(times: list[float], since: float, changes: int, what: str) -> None:
    """At most one frame per window and the leading one, counted from `since` (before the
    first change) to the last arrival, which bounds the server's own span however late
    this process reads; and fewer frames than changes."""
    assert times, f"no {what} frames"
    span = times[-1] - since
    assert len(times) <= span / WINDOW_S + 2, f"{len(times)} {what} frames in {span:.2f} s"
    assert len(times) < changes, f"{len(times)} {what} frames for {changes} changes"


def server_roster(server: CollabServer) -> dict[str, str]:
    room = server.rooms.get("core", "plan")
    assert room is not None
    return {p.user: p.color for p in room.participant_list()}


def server_presence(server: CollabServer) -> dict[str, Message]:
    return {
        m.user: m.model_dump(mode="json", exclude_none=True)
        for m in server.presence.members("core")
    }


async def test_a_storm_of_50_joiners_is_o1_frames_per_window_for_everyone(
    server: CollabServer,
) -> None:
    watchers = [await Peer.join(server.url, token(f"w{n}", "core")) for n in range(3)]
    await create_board(watchers[0], "plan")
    for watcher in watchers:
        await join_board(watcher, "plan")
    async with CollabClient(server.url, token=token("lib", "core")) as lib:
        await lib.join("plan")
        await asyncio.sleep(0.2)
        timed = [await Timed.start(w) for w in watchers]
        names = [f"j{n:02d}" for n in range(50)]
        started = asyncio.get_running_loop().time()
        joiners = await asyncio.gather(
            *(Peer.join(server.url, token(u, "core"), header=True) for u in names)
        )
        await asyncio.gather(*(join_board(j, "plan") for j in joiners))
        await eventually(
            lambda: all(t.users("joined") >= set(names) for t in timed),
            10,
            "every watcher hears of every joiner",
        )
        for t in timed:
            assert_one_per_window(t.times(ROSTER), started, len(names), "participant")
            assert_one_per_window(t.times(PRESENCE), started, len(names), "presence")
        # Half of them leave at once: the same, the other way.
        leaving = asyncio.get_running_loop().time()
        await asyncio.gather(*(j.close() for j in joiners[::2]))
        await eventually(
            lambda: all(t.users("left") >= set(names[::2]) for t in timed),
            10,
            "every watcher hears of every leaver",
        )
        for t in timed:
            await t.stop()
            left = [at for at in t.times(ROSTER) if at > leaving]
            assert_one_per_window(left, leaving, len(names) // 2, "participant.left")
        await asyncio.sleep(0.2)  # the last windows close
        for peer in [*watchers, *joiners[1::2]]:
            assert roster_seen(peer, "plan") == server_roster(server)
            assert presence_seen(peer) == server_presence(server)
        assert {u: p.color for u, p in lib.joined["plan"].participants.items()} == (
            server_roster(server)
        )
        assert lib.presence == {m.user: m for m in server.presence.members("core")}
    for peer in [*watchers, *joiners[1::2]]:
        await peer.close()


async def test_a_lone_join_goes_at_once_and_the_next_waits_for_the_window(
    start_server: StartServer,
) -> None:
    server = await start_server(cursor_interval_s=1.0)  # the board's windows: 1 s
    wes = await Peer.join(server.url, token("wes", "core"))
    ada = await Peer.join(server.url, token("ada", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    await create_board(wes, "plan")
    await join_board(wes, "plan")
    await asyncio.sleep(1.1)  # wes's own join opened a window: let it pass
    watching = await Timed.start(wes)
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await join_board(ada, "plan")
    await join_board(bob, "plan")
    await eventually(lambda: watching.users("joined") >= {"ada", "bob"}, 3, "both joins")
    first, second = watching.times(ROSTER)
    assert first - sent < 0.5  # the leading edge: no wait
    assert second - sent > 0.8  # inside the window: at its end
    await watching.stop()
    for peer in (wes, ada, bob):
        await peer.close()


async def test_presence_lone_change_is_not_held_for_a_second_one(server: CollabServer) -> None:
    wes = await Peer.join(server.url, token("wes", "core"))
    ada = await Peer.join(server.url, token("ada", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    await asyncio.sleep(0.2)
    watching = await Timed.start(wes)
    await ada.send({"type": "presence.set", "status": "busy"})
    await bob.send({"type": "presence.set", "status": "away"})
    await eventually(lambda: len(watching.times(PRESENCE)) == 2, 3, "both changes")
    [(_, first), (_, second)] = watching.frames
    # ada's went out alone as it came; bob's, right behind it, waited for the window
    # (had ada's waited, the two would share one frame).
    assert first == {**first, "type": "presence", "user": "ada", "status": "busy"}
    assert [e["user"] for _, e in entries(second)] == ["bob"]
    await watching.stop()
    for peer in (wes, ada, bob):
        await peer.close()


# --- two nodes on one Redis ---------------------------------------------------------


@pytest.fixture
def two_nodes(redis_server: RedisServer, tmp_path: Path) -> Iterator[Nodes]:
    cluster = Nodes(tmp_path, redis_server.url, 2).start()
    yield cluster
    cluster.stop()


async def test_two_nodes_a_storm_ends_equal_and_cursors_are_one_frame_a_window(
    two_nodes: Nodes,
) -> None:
    urls = two_nodes.urls
    watchers = [await Peer.join(urls[n], token(f"w{n}", "core"), header=True) for n in (0, 1)]
    await create_board(watchers[0], "plan")
    await watchers[1].next("board.created", timeout=5)
    for watcher in watchers:
        await join_board(watcher, "plan")
    names = [f"j{n:02d}" for n in range(12)]
    joiners = await asyncio.gather(
        *(Peer.join(urls[n % 2], token(u, "core"), header=True) for n, u in enumerate(names))
    )
    await asyncio.gather(*(join_board(j, "plan") for j in joiners))
    await asyncio.gather(*(j.close() for j in joiners[::3]))
    everyone = [*watchers, *(j for n, j in enumerate(joiners) if n % 3)]

    # The server's view, read again on one connection at each try (a connection per try
    # would soon be over the per-user connect rate on a busy machine).
    late = await Peer.join(urls[0], token("late", "core"), header=True)
    queries = itertools.count()

    differences: list[str] = []

    async def equal() -> bool:
        state = await join_board(late, "plan")  # a rejoin: a fresh board.state
        query = f"q{next(queries)}"
        await late.send({"type": "presence.query", "id": query})
        members = (await late.next("presence.snapshot", re=query))["members"]
        roster = {p["user"]: p["color"] for p in state["participants"]} | {}
        roster.pop("late")
        presence = {m["user"]: m for m in members if m["user"] != "late"}
        differences.clear()
        for peer in everyone:
            who = peer.welcome["user"]["id"]
            seen = {u: c for u, c in roster_seen(peer, "plan").items() if u != "late"}
            if seen != roster:
                differences.append(f"{who}'s roster: {sorted(seen.items() ^ roster.items())}")
            held = {u: m for u, m in presence_seen(peer).items() if u != "late"}
            if held != presence:
                users = sorted(
                    u for u in held.keys() | presence.keys() if held.get(u) != presence.get(u)
                )
                differences.append(
                    f"{who}'s presence of {users}: "
                    f"{[(held.get(u), presence.get(u)) for u in users]}"
                )
        return not differences

    try:
        await eventually(equal, 10, "every client's roster and presence equal the servers'")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still different: {differences[:6]}") from None
    await late.close()

    # Cursors: movers on both nodes, a watcher on each gets one frame a window.
    await asyncio.sleep(0.2)
    timed = [await Timed.start(w) for w in watchers]
    movers = [j for n, j in enumerate(joiners) if n % 3][:4]  # two on each node
    loop = asyncio.get_running_loop()
    started = loop.time()
    end = started + 1.0
    step = 0
    while loop.time() < end:
        step += 1
        for mover in movers:
            await mover.send({"type": "cursor.move", "board": "plan", "x": step % 10, "y": 1})
        await asyncio.sleep(0.01)
    await eventually(
        lambda: all(
            t.times(("cursors",)) and t.times(("cursors",))[-1] < loop.time() - 0.3 for t in timed
        ),
        5,
        "the moves settle",
    )
    for t in timed:
        await t.stop()
        times = t.times(("cursors",))
        span = times[-1] - started
        # Before the merge: each node's flush, so about twice this.
        assert len(times) <= span / WINDOW_S + 2, f"{len(times)} cursors frames in {span:.2f} s"
        last: dict[str, int] = {}
        for _, m in t.frames:
            if m["type"] == "cursors":
                last.update({c["user"]: c["x"] for c in m["cursors"]})
        assert all(last.get(f"j{joiners.index(m):02d}") == step % 10 for m in movers)
    for peer in everyone:
        await peer.close()

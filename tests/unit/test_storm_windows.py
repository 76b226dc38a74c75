"""Presence and participant windows at the edges of `welcome` and `board.state`.

The server's core with real presence and rooms (a real SQLite store, recording peers),
and the client's `ClientState` fed what a joiner received: a change that its `welcome`
or `board.state` already shows reaches it again in the window's frame, and must be no
event there; a change after it must never be lost. Windows are 50 ms, as served.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from server.cluster_sync import ClusterSync
from server.hub import BASE_AUDIENCE, Session, Window, grows_with
from server.wire import CellEvent
from tests.unit.doubles import RecordingPeer
from tests.unit.server_core import Core
from tui_collab.cells import CellOp
from tui_collab.client_state import ClientState
from tui_collab.events import EventBus
from tui_collab.protocol import (
    ParticipantJoined,
    ParticipantLeft,
    Presence,
    Welcome,
    decode_server,
    encode,
)

WINDOW_S = 0.05
PAST_WINDOW_S = 0.12


class Watcher:
    """A `ClientState` fed a recording peer's frames, with the events it emitted."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.state = ClientState(self.bus, lambda delay, call: None)
        self.events: list[Any] = []
        for kind in (Presence, ParticipantJoined, ParticipantLeft):
            self.bus.on(kind, self.events.append)

    def feed(self, frames: list[dict[str, Any]]) -> None:
        for frame in frames:
            message = decode_server(json.dumps(frame))
            if isinstance(message, Welcome):
                self.state.welcomed(message)
            else:
                self.state.handle(message)

    def take(self) -> list[tuple[str, str]]:
        events, self.events = self.events, []
        return [(type(e).__name__, e.user) for e in events]


def roster(core: Core, board: str = "plan") -> dict[str, tuple[str, str]]:
    room = core.rooms.get("core", board)
    assert room is not None
    return {p.user: (p.name, p.color) for p in room.participant_list()}


def held(watcher: Watcher, board: str = "plan") -> dict[str, tuple[str, str]]:
    mirror = watcher.state.joined[board]
    return {u: (p.name, p.color) for u, p in mirror.participants.items()}


async def test_presence_lone_change_goes_at_once_and_a_window_is_one_batch(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path, batch_s=WINDOW_S) as core:
        _, watching = await core.connect("wes")
        await asyncio.sleep(PAST_WINDOW_S)
        await core.connect("ada")
        # Leading edge: sent in the same step, no wait for the window.
        assert [(f["type"], f["user"]) for f in watching.take()] == [("presence", "ada")]
        for user in ("bob", "cy", "dee"):
            await core.connect(user)
        assert watching.take() == []
        await asyncio.sleep(PAST_WINDOW_S)
        [batch] = watching.take()
        assert batch["type"] == "presence.batch"
        assert [m["user"] for m in batch["members"]] == ["bob", "cy", "dee"]


async def test_a_change_the_welcome_shows_is_no_event_and_one_after_it_is(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path, batch_s=WINDOW_S) as core:
        _, watching = await core.connect("wes")
        await asyncio.sleep(PAST_WINDOW_S)
        ada, _ = await core.connect("ada")  # opens a window
        bob, _ = await core.connect("bob")  # waits in it
        await core.send(ada, {"type": "presence.set", "status": "busy"})  # waits too
        _, joining = await core.connect("jo")  # its welcome shows all of it
        joiner = Watcher()
        joiner.feed([core.welcomes["jo"]])
        await core.send(bob, {"type": "presence.set", "status": "away"})  # after the welcome
        await asyncio.sleep(PAST_WINDOW_S)
        [batch] = joining.take()
        assert sorted(m["user"] for m in batch["members"]) == ["ada", "bob", "jo"]
        joiner.feed([batch])
        # ada's busy and jo's own arrival were in the welcome; bob's away was not.
        assert joiner.take() == [("Presence", "bob")]
        assert joiner.state.presence["bob"].status == "away"
        assert joiner.state.presence == {m.user: m for m in core.presence.members("core")}
        # The teammate who saw every step ends equal too.
        wes = Watcher()
        wes.feed([core.welcomes["wes"], *watching.take()])
        assert wes.state.presence == {m.user: m for m in core.presence.members("core")}


async def join(core: Core, session: Session, board: str = "plan") -> None:
    await core.send(session, {"type": "board.join", "id": f"j-{session.user}", "board": board})


async def test_a_join_the_board_state_shows_is_no_event_and_one_after_it_is(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path, batch_s=WINDOW_S) as core:
        users = {}
        peers = {}
        for user in ("wes", "ada", "bob", "cy", "jo", "kim"):
            users[user], peers[user] = await core.connect(user)
        await core.send(
            users["wes"],
            {"type": "board.create", "board": "plan", "title": "Plan", "width": 4, "height": 4},
        )
        await join(core, users["wes"])
        await join(core, users["cy"])
        await asyncio.sleep(PAST_WINDOW_S)
        for peer in peers.values():
            peer.take()
        wes = Watcher()
        wes.feed([core.welcomes["wes"]])
        await join(core, users["wes"])  # a rejoin: a fresh board.state for the watcher
        wes.feed(peers["wes"].take())
        await join(core, users["ada"])  # the lone change: at once, not to the joiner
        assert [f["type"] for f in peers["wes"].frames] == ["participant.joined"]
        assert [f["type"] for f in peers["ada"].frames] == ["board.state"]
        await join(core, users["bob"])  # waits for the window
        core.disconnect(users["cy"])  # cy leaves ...
        users["cy"], peers["cy"] = await core.connect("cy")
        await join(core, users["cy"])  # ... and comes back within the window
        await join(core, users["jo"])  # jo's board.state shows all of it
        jo = Watcher()
        jo.feed([core.welcomes["jo"], *peers["jo"].take()])
        assert set(held(jo)) == {"wes", "ada", "bob", "cy", "jo"}
        jo.take()
        await join(core, users["kim"])  # after jo's board.state: news for jo
        await core.send(users["kim"], {"type": "board.leave", "id": "l", "board": "plan"})
        await asyncio.sleep(PAST_WINDOW_S)
        frames = [f for f in peers["jo"].take() if f["type"] != "presence"]
        assert [f["type"] for f in frames] == ["participants"]
        [batch] = frames
        assert {p["user"] for p in batch["joined"]} == {"bob", "cy", "jo"}
        assert {p["user"] for p in batch["left"]} == {"cy", "kim"}  # cy: left and back
        jo.feed([batch])
        # kim joined and left after jo's snapshot: net nothing, so no event; the rest
        # was in the snapshot already.
        assert jo.take() == []
        assert held(jo) == roster(core)
        wes.feed(peers["wes"].take())
        assert held(wes) == roster(core)
        assert ("ParticipantJoined", "bob") in wes.take()


async def wes_on_a_board_ada_and_bob_online(
    core: Core,
) -> tuple[Session, Session, RecordingPeer, Session]:
    """wes, ada (with what she receives) and bob online; wes made board `plan` and is on it."""
    wes, _ = await core.connect("wes")
    ada, ada_peer = await core.connect("ada")
    bob, _ = await core.connect("bob")
    await core.send(
        wes, {"type": "board.create", "board": "plan", "title": "P", "width": 4, "height": 4}
    )
    await join(core, wes)
    return wes, ada, ada_peer, bob


async def test_a_join_then_a_leave_after_the_snapshot_reach_the_joiner(tmp_path: Path) -> None:
    async with Core(tmp_path, batch_s=WINDOW_S) as core:
        wes, ada, ada_peer, bob = await wes_on_a_board_ada_and_bob_online(core)
        await asyncio.sleep(PAST_WINDOW_S)
        await join(core, ada)  # at once
        await join(core, bob)  # in the window, after ada's snapshot
        watcher = Watcher()
        watcher.feed([core.welcomes["ada"], *ada_peer.take()])
        assert set(held(watcher)) == {"wes", "ada"}
        core.disconnect(wes)  # in the window too
        await asyncio.sleep(PAST_WINDOW_S)
        watcher.feed(ada_peer.take())
        events = watcher.take()
        assert ("ParticipantJoined", "bob") in events
        assert ("ParticipantLeft", "wes") in events
        assert held(watcher) == roster(core)


async def test_the_lists_kept_encoded_are_what_the_models_encode(tmp_path: Path) -> None:
    """`welcome.members` and `board.state`'s participants and cursors are spliced from
    JSON kept between changes: after joins, leaves, moves and a status, it is what the
    models would encode."""
    async with Core(tmp_path, batch_s=WINDOW_S) as core:
        sessions = {user: (await core.connect(user))[0] for user in ("ada", "bob", "cy")}
        await core.send(
            sessions["ada"],
            {"type": "board.create", "board": "plan", "title": "P", "width": 4, "height": 4},
        )
        for session in sessions.values():
            await join(core, session)
        room = core.rooms.get("core", "plan")
        assert room is not None
        for step, (user, x) in enumerate([("ada", 1), ("bob", 2), ("ada", 3)]):
            room.move_cursor(user, x, step)
            assert json.loads(room.cursors_json()) == [c.model_dump() for c in room.cursor_list()]
        core.disconnect(sessions["bob"])
        await core.send(sessions["cy"], {"type": "presence.set", "status": "busy"})
        assert json.loads(room.participants_json()) == [
            p.model_dump() for p in room.participant_list()
        ]
        assert json.loads(room.cursors_json()) == [c.model_dump() for c in room.cursor_list()]
        members = core.presence.members("core")
        assert json.loads(core.presence.members_json("core")) == [
            json.loads(encode(m)) for m in members
        ]
        await core.connect("dee")
        assert [m["user"] for m in core.welcomes["dee"]["members"]] == [
            "ada",
            "bob",
            "cy",
            "dee",
        ]
        assert core.welcomes["dee"]["members"][2]["status"] == "busy"


async def test_a_move_by_someone_known_leaves_the_joins_in_their_window(tmp_path: Path) -> None:
    roster_window_s = 0.3  # longer than the cursors' 50 ms, so the two do not meet
    async with Core(tmp_path, batch_s=roster_window_s) as core:
        wes, ada, ada_peer, bob = await wes_on_a_board_ada_and_bob_online(core)
        await join(core, ada)
        await asyncio.sleep(roster_window_s + PAST_WINDOW_S)
        await join(core, bob)  # the lone change: at once
        await core.send(bob, {"type": "board.leave", "id": "l", "board": "plan"})
        await join(core, bob)  # bob's return waits for the roster window
        ada_peer.take()
        await core.send(wes, {"type": "cursor.move", "board": "plan", "x": 1, "y": 1})
        # wes is no news to anyone: the cursors go at once, the roster keeps its window.
        assert [f["type"] for f in ada_peer.take() if f["type"] != "presence"] == ["cursors"]
        await core.send(bob, {"type": "cursor.move", "board": "plan", "x": 2, "y": 2})
        await asyncio.sleep(PAST_WINDOW_S)
        # bob's cursor is: the news of his return goes first.
        kinds = [f["type"] for f in ada_peer.take() if f["type"] != "presence"]
        assert kinds == ["participants", "cursors"]


def test_a_window_of_news_grows_with_its_audience_beyond_200() -> None:
    audience = [10]
    window = Window(grows_with(WINDOW_S, lambda: audience[0]), lambda: True)
    assert window.interval_s == WINDOW_S
    audience[0] = BASE_AUDIENCE
    assert window.interval_s == WINDOW_S
    audience[0] = 1_000
    assert window.interval_s == 5 * WINDOW_S
    assert Window(WINDOW_S, lambda: True).interval_s == WINDOW_S  # cursors: fixed


async def test_a_join_on_another_node_while_the_room_opens_here_is_kept(tmp_path: Path) -> None:
    """The room's roster is read once its board is watched; a join another node sends
    while the room is still loading its cells must reach the room, not be dropped."""
    async with Core(tmp_path, batch_s=WINDOW_S) as core:
        wes, _ = await core.connect("wes")
        await core.send(
            wes, {"type": "board.create", "board": "plan", "title": "P", "width": 4, "height": 4}
        )
        record = (await core.boards.team("core"))["plan"]
        assert core.rooms.get("core", "plan") is None
        opening = asyncio.ensure_future(core.rooms.open(record))
        await asyncio.sleep(0)  # watched; now loading the cells from the store
        assert core.rooms.get("core", "plan") is None
        joined = encode(ParticipantJoined(board="plan", user="ada", name="Ada", color="#98c379"))
        core.rooms.when_open("core", "plan", lambda room: room.remote_frame("n-other", joined))
        room = await opening
        assert [p["user"] for p in json.loads(room.participants_json())] == ["ada"]


async def test_a_cell_op_from_another_node_while_the_room_opens_here_is_kept(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path, batch_s=WINDOW_S) as core:
        wes, _ = await core.connect("wes")
        await core.send(
            wes, {"type": "board.create", "board": "plan", "title": "P", "width": 4, "height": 4}
        )
        record = (await core.boards.team("core"))["plan"]
        opening = asyncio.ensure_future(core.rooms.open(record))
        await asyncio.sleep(0)  # watched; now loading the cells from the store
        op = CellOp(1, 1, "from n-other", clock=1, client="c-ada", by="ada", version=1)
        ClusterSync(core.ctx).on_cell_event("core", "plan", CellEvent("n-other", 1, op))
        room = await opening
        room.cells.refresh()
        assert b"from n-other" in room.cells.fragment(1, 1)

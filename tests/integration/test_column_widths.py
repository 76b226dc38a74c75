"""Column widths in `board.update`: merged from several people, announced, kept."""

from __future__ import annotations

from server.app import CollabServer
from tests.conftest import StartServer, token
from tests.support.board import create_board, join_board
from tests.support.peer import Message, Peer


async def _update(peer: Peer, id_: str, **fields: object) -> Message:
    await peer.send({"type": "board.update", "id": id_, "board": "plan", **fields})
    return await peer.next(re=id_)


async def test_widths_from_two_people_merge_and_reach_everyone(
    start_server: StartServer,
) -> None:
    server = await start_server()
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    carol = await Peer.join(server.url, token("carol", "core"))
    await create_board(alice, "plan")
    await join_board(carol, "plan")

    ack = await _update(alice, "u1", widths=[{"x": 0, "width": 20}, {"x": 3, "width": 5}])
    assert ack == {"type": "ack", "re": "u1"}
    # The default width (10) removes a column's entry; title and widths go together.
    await _update(bob, "u2", title="Q3", widths=[{"x": 3, "width": 10}, {"x": 7, "width": 64}])
    merged = [{"x": 0, "width": 20}, {"x": 7, "width": 64}]
    updates = [await carol.next("board.updated") for _ in range(2)]
    assert [u["board"].get("widths") for u in updates] == [
        [{"x": 0, "width": 20}, {"x": 3, "width": 5}],
        merged,
    ]
    assert updates[1]["board"]["title"] == "Q3"

    dave = await Peer.join(server.url, token("dave", "core"))
    (meta,) = dave.welcome["boards"]
    assert meta["widths"] == merged
    assert (await join_board(dave, "plan"))["board"]["widths"] == merged
    await _update(alice, "u3", title="Q4")  # a title alone keeps the widths
    assert (await join_board(dave, "plan"))["board"]["widths"] == merged
    await server.stop()

    again = await start_server()
    erin = await Peer.join(again.url, token("erin", "core"))
    assert erin.welcome["boards"][0]["widths"] == merged
    await _update(erin, "u4", widths=[{"x": 0, "width": 10}, {"x": 7, "width": 10}])
    state = await join_board(erin, "plan")
    assert "widths" not in state["board"]  # every column at the default again
    assert state["board"]["title"] == "Q4"


async def test_widths_outside_the_board_or_the_range_are_refused(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    await create_board(alice, "plan")
    outside = await _update(alice, "u1", widths=[{"x": 1, "width": 12}, {"x": 10, "width": 12}])
    assert outside["code"] == "bad_request"
    assert outside["message"] == "widths[1]: column 10 is outside the 10-column board"
    for width in (2, 65):
        error = await _update(alice, f"w{width}", widths=[{"x": 0, "width": width}])
        assert error["code"] == "bad_request"
        assert error["message"].startswith("widths.0.width")
    state = await join_board(alice, "plan")
    assert "widths" not in state["board"]

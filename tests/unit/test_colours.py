"""The colour rule: least used first, palette order on ties, your old colour if free."""

from collections import Counter
from pathlib import Path

from server.boards import PALETTE, pick_colour
from tests.unit.server_core import Core
from tui_collab.protocol import ParticipantJoined, encode


def test_empty_board_gets_first_colour() -> None:
    assert pick_colour(Counter(), None) == PALETTE[0]


def test_least_used_wins_with_palette_order_on_ties() -> None:
    assert pick_colour(Counter(PALETTE[:5]), None) == PALETTE[5]
    assert pick_colour(Counter([*PALETTE, PALETTE[0], PALETTE[2]]), None) == PALETTE[1]


def test_previous_colour_is_reused_only_if_free() -> None:
    assert pick_colour(Counter([PALETTE[0]]), PALETTE[7]) == PALETTE[7]
    assert pick_colour(Counter([PALETTE[7]]), PALETTE[7]) == PALETTE[0]


def test_a_colour_whose_users_left_counts_as_free() -> None:
    assert pick_colour(Counter({PALETTE[7]: 0, PALETTE[0]: 1}), PALETTE[7]) == PALETTE[7]


def test_palette_is_twelve_distinct_hex_colours() -> None:
    assert len(set(PALETTE)) == 12
    assert all(len(c) == 7 and c.startswith("#") and int(c[1:], 16) >= 0 for c in PALETTE)


async def test_a_room_counts_the_colours_of_who_is_there_here_and_on_other_nodes(
    tmp_path: Path,
) -> None:
    """The room keeps its count of colours in use as people come and go, on this node
    and on others: a colour is free again once its last holder is gone."""
    async with Core(tmp_path) as core:
        sessions = [(await core.connect(f"u{n:02d}"))[0] for n in range(11)]
        await core.send(
            sessions[0],
            {"type": "board.create", "board": "plan", "title": "P", "width": 4, "height": 4},
        )

        async def join(session_index: int) -> str:
            session = sessions[session_index]
            await core.send(session, {"type": "board.join", "id": "j", "board": "plan"})
            room = core.rooms.get("core", "plan")
            assert room is not None
            return room.participants[session.user].colour

        assert [await join(n) for n in range(11)] == list(PALETTE[:11])
        room = core.rooms.get("core", "plan")
        assert room is not None
        other = ParticipantJoined(board="plan", user="zed", name="Zed", color=PALETTE[11])
        room.remote_frame("n-other", encode(other))
        core.disconnect(sessions[3])  # frees PALETTE[3], the only free colour
        sessions.append((await core.connect("newcomer"))[0])
        assert await join(11) == PALETTE[3]
        room.node_down("n-other")  # zed's PALETTE[11] is free again
        sessions.append((await core.connect("later"))[0])
        assert await join(12) == PALETTE[11]
        sessions.append((await core.connect("last"))[0])  # all taken once: palette order
        assert await join(13) == PALETTE[0]

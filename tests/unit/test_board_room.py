"""A board room's version watermark: which versions a node knows it has."""

from __future__ import annotations

from server.boards import BoardRoom
from server.outbound import BacklogPolicy, Outbound
from server.snapshot import EncodedCells
from server.store.base import BoardRecord


def test_a_rooms_watermark_moves_over_versions_seen_before_a_refill() -> None:
    room = BoardRoom(
        BoardRecord("core", "plan", "Plan", 4, 4, "ada"),
        EncodedCells(),
        0.05,
        Outbound(BacklogPolicy()),
    )
    room.saw(1)
    room.saw(3)
    room.saw(5)  # 2 and 4 missing
    assert (room.watermark, room.seen_above) == (1, {3, 5})
    room.caught_up(4)  # a store read at version 4: 5 was already here, so all is whole
    assert (room.watermark, room.seen_above) == (5, set())

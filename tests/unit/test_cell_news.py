"""A board's cell events go out in leading-edge windows, each ack after its op's frame."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.cell_news import NEWS_BYTES, WINDOWED_FROM, CellNews
from tests.support.waiting import eventually
from tui_collab.cells import CellOp
from tui_collab.protocol import MAX_BATCH_OPS

WINDOW_S = 0.05


class Wire:
    """What the room would send, in order, with the replies run in between."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.sizes: list[int] = []

    def send(self, frame: str) -> None:
        self.log.append(("frame", json.loads(frame)))
        self.sizes.append(len(frame.encode()))

    def reply(self, name: str) -> Any:
        return lambda: self.log.append(("reply", name))

    def frames(self) -> list[dict[str, Any]]:
        return [item for kind, item in self.log if kind == "frame"]


def crowded(wire: Wire) -> CellNews:
    """The news of a board with enough connections for the window."""
    return CellNews("plan", WINDOW_S, wire.send, lambda: WINDOWED_FROM)


def op(version: int, value: str = "v") -> CellOp:
    return CellOp(version % 50, version // 50, value, version, "c-1", "ada", version, at=1)


def values(frame: dict[str, Any]) -> list[int]:
    cells = frame["cells"] if frame["type"] == "cells.changed" else [frame]
    return [cell["version"] for cell in cells]


async def test_a_lone_op_goes_at_once_and_its_reply_after_it() -> None:
    wire = Wire()
    news = crowded(wire)
    news.publish([op(1)])
    news.after(wire.reply("o1"))
    assert [kind for kind, _ in wire.log] == ["frame", "reply"]
    assert wire.frames()[0]["type"] == "cell.changed"
    assert wire.frames()[0]["version"] == 1
    news.close()


async def test_ops_within_the_window_go_in_one_frame_in_order_then_their_replies() -> None:
    wire = Wire()
    news = crowded(wire)
    news.publish([op(1)])
    news.after(wire.reply("o1"))
    for version in (2, 3, 4):
        news.publish([op(version)])
        news.after(wire.reply(f"o{version}"))
    assert news.waiting == 3
    assert len(wire.frames()) == 1  # the rest wait for the window's end
    await eventually(lambda: len(wire.frames()) == 2, 2, "the window's frame")
    second = wire.frames()[1]
    assert second["type"] == "cells.changed"
    assert values(second) == [2, 3, 4]
    assert second["version"] == 4
    kinds = [kind if kind == "frame" else item for kind, item in wire.log]
    assert kinds == ["frame", "o1", "frame", "o2", "o3", "o4"]
    news.close()


async def test_a_reply_with_nothing_waiting_goes_at_once_even_inside_a_window() -> None:
    wire = Wire()
    news = crowded(wire)
    news.publish([op(1)])
    news.publish([])  # an op that lost its cell: nothing to send
    news.after(wire.reply("lost"))
    assert wire.log[-1] == ("reply", "lost")
    news.close()


async def test_a_batch_is_a_cells_changed_even_alone() -> None:
    wire = Wire()
    news = crowded(wire)
    news.publish([op(1)], batch=True)
    assert wire.frames()[0]["type"] == "cells.changed"
    news.close()


@pytest.mark.parametrize("now", ["flush", "close"])
async def test_flush_and_close_send_what_waits_then_its_replies(now: str) -> None:
    """`flush`: before a joiner's snapshot is taken; `close`: the room or server ends."""
    wire = Wire()
    news = crowded(wire)
    news.publish([op(1)])
    news.publish([op(2)])
    news.after(wire.reply("o2"))
    getattr(news, now)()
    assert [values(f) for f in wire.frames()] == [[1], [2]]
    assert wire.log[-1] == ("reply", "o2")
    assert news.waiting == 0
    news.close()


async def test_a_batch_that_would_overflow_the_frame_goes_whole_after_the_others() -> None:
    wire = Wire()
    news = crowded(wire)
    news.publish([op(1)])  # starts the window
    news.publish([op(v) for v in range(2, 2 + MAX_BATCH_OPS - 5)])
    batch = [op(v) for v in range(2 + MAX_BATCH_OPS - 5, 2 + MAX_BATCH_OPS + 5)]
    news.publish(batch, batch=True)
    assert [len(values(f)) for f in wire.frames()] == [1, MAX_BATCH_OPS - 5]
    await eventually(lambda: len(wire.frames()) == 3, 2, "the batch's frame")
    assert values(wire.frames()[2]) == [o.version for o in batch]
    news.close()


async def test_a_refill_larger_than_a_frame_goes_in_several() -> None:
    wire = Wire()
    news = crowded(wire)
    news.publish([op(v) for v in range(1, 2 * MAX_BATCH_OPS + 501)])
    news.close()
    sizes = [len(values(f)) for f in wire.frames()]
    assert sizes == [MAX_BATCH_OPS, MAX_BATCH_OPS, 500]
    assert [v for f in wire.frames() for v in values(f)] == list(range(1, 2 * MAX_BATCH_OPS + 501))


async def test_long_values_from_many_writers_make_no_frame_over_the_byte_bound() -> None:
    wire = Wire()
    news = crowded(wire)
    long = "é" * 256  # 512 bytes
    news.publish([op(1, long)])
    for version in range(2, 600):
        news.publish([op(version, long)])
    news.close()
    frames = wire.frames()
    assert len(frames) > 2
    assert max(wire.sizes) <= NEWS_BYTES
    assert [v for f in frames for v in values(f)] == list(range(1, 600))

"""The client's state without a socket: frames go to a list, delayed resends to another."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tui_collab.client_state import (
    RATE_LIMITED_RETRY_S,
    ClientError,
    ClientState,
    NotConnected,
)
from tui_collab.events import EventBus, OpRefused, PendingChanged
from tui_collab.outbox import Outbox
from tui_collab.protocol import (
    Ack,
    BoardMeta,
    BoardState,
    Cell,
    CellChanged,
    CellSet,
    ErrorCode,
    ErrorMessage,
    Participant,
    PresenceQuery,
    ServerMessage,
)

BOARD = BoardMeta(id="plan", title="Plan", width=4, height=3, created_by="ana")


class Harness:
    """A `ClientState` with its sends and scheduled resends recorded, and its events."""

    def __init__(self, outbox: Outbox | None = None) -> None:
        self.bus = EventBus()
        self.later: list[tuple[float, Callable[[], None]]] = []
        self.events: list[Any] = []
        for kind in (PendingChanged, OpRefused, BoardState, ErrorMessage):
            self.bus.on(kind, self.events.append)
        self.state = ClientState(self.bus, self._later, outbox)
        self.sent: list[dict[str, Any]] = []

    def _later(self, delay_s: float, callback: Callable[[], None]) -> None:
        self.later.append((delay_s, callback))

    def connect(self) -> None:
        self.state.attach(lambda frame: self.sent.append(json.loads(frame)))

    def run_later(self) -> None:
        due, self.later = self.later, []
        for _, callback in due:
            callback()

    def join(self, board: BoardMeta = BOARD, re: str | None = None, **fields: Any) -> None:
        self.state.handle(snapshot(board, re, **fields))

    def edit(self, x: int, y: int, value: str) -> asyncio.Future[Ack]:
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self.state.add_edit(BOARD.id, x, y, value, future)
        return future


def snapshot(board: BoardMeta = BOARD, re: str | None = None, **fields: Any) -> BoardState:
    values: dict[str, Any] = {
        "board": board,
        "re": re,
        "epoch": "e1",
        "version": 3,
        "complete": True,
        "cells": [],
        "participants": [Participant(user="ana", name="Ana", color="red")],
        "cursors": [],
    }
    values.update(fields)
    return BoardState(**values)


def cell_sets(frames: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    return [(f["x"], f["y"], f["value"]) for f in frames if f["type"] == "cell.set"]


async def test_an_edit_goes_out_at_once_and_its_ack_settles_it() -> None:
    h = Harness()
    h.connect()
    h.join()
    future = h.edit(1, 2, "hi")
    assert cell_sets(h.sent) == [(1, 2, "hi")]
    assert h.state.unsaved_count == 1
    assert [op.value for op in h.state.joined["plan"].pending.values()] == ["hi"]
    h.state.handle(Ack(re=h.sent[-1]["op"], version=4, applied=True))
    assert future.result().applied
    assert h.state.unsaved_count == 0
    assert h.events.count(PendingChanged("plan")) == 2  # queued, then settled


async def test_offline_edits_wait_and_go_out_after_status_and_rejoins() -> None:
    h = Harness()
    h.join()
    h.state.status = "busy"
    h.edit(0, 0, "a")
    h.edit(1, 0, "b")
    assert h.sent == []  # offline: nothing sent
    h.connect()
    assert [f["type"] for f in h.sent] == ["presence.set", "board.join", "cell.set", "cell.set"]
    assert h.sent[1]["since"] == 3
    assert cell_sets(h.sent) == [(0, 0, "a"), (1, 0, "b")]


async def test_a_value_the_protocol_refuses_is_not_queued() -> None:
    h = Harness()
    h.connect()
    h.join()
    with pytest.raises(ClientError) as refused:
        h.edit(0, 0, "x" * 10_000)
    assert refused.value.code == ErrorCode.BAD_REQUEST
    with pytest.raises(ClientError):
        h.edit(-1, 0, "x")
    assert h.sent == []
    assert h.state.unsaved_count == 0


@pytest.mark.parametrize("code", [ErrorCode.INTERNAL, ErrorCode.RATE_LIMITED])
async def test_a_retryable_error_keeps_the_edit_and_sends_it_again(code: ErrorCode) -> None:
    h = Harness()
    h.connect()
    h.join()
    future = h.edit(2, 2, "again")
    op_id = h.sent[-1]["op"]
    h.state.handle(ErrorMessage(code=code, message="try later", re=op_id))
    assert not future.done()
    assert [delay for delay, _ in h.later] == [1.0]
    h.run_later()
    assert [f["op"] for f in h.sent if f["type"] == "cell.set"] == [op_id, op_id]


async def test_a_refused_edit_fails_its_caller_and_says_so() -> None:
    h = Harness()
    h.connect()
    h.join()
    future = h.edit(0, 1, "no")
    op_id = h.sent[-1]["op"]
    h.state.handle(ErrorMessage(code=ErrorCode.FORBIDDEN, message="read only", re=op_id))
    with pytest.raises(ClientError) as refused:
        future.result()
    assert refused.value.code == ErrorCode.FORBIDDEN
    assert OpRefused("plan", op_id, 0, 1, "no", ErrorCode.FORBIDDEN, "read only") in h.events
    assert h.state.unsaved_count == 0


async def test_requests_are_matched_to_their_replies_by_id() -> None:
    h = Harness()
    with pytest.raises(NotConnected):
        h.state.open_request(PresenceQuery(), asyncio.get_running_loop().create_future())
    h.connect()
    loop = asyncio.get_running_loop()
    first: asyncio.Future[ServerMessage] = loop.create_future()
    second: asyncio.Future[ServerMessage] = loop.create_future()
    first_id = h.state.open_request(PresenceQuery(), first)
    second_id = h.state.open_request(PresenceQuery(), second)
    assert [f["id"] for f in h.sent] == [first_id, second_id]
    h.state.handle(ErrorMessage(code=ErrorCode.NOT_FOUND, message="who?", re=second_id))
    h.state.handle(Ack(re=first_id))
    assert first.result() == Ack(re=first_id)
    with pytest.raises(ClientError):
        second.result()


async def test_a_lost_connection_fails_requests_in_flight() -> None:
    h = Harness()
    h.connect()
    future: asyncio.Future[ServerMessage] = asyncio.get_running_loop().create_future()
    h.state.open_request(PresenceQuery(), future)
    h.state.detach()
    assert h.state.send is None
    with pytest.raises(NotConnected):
        future.result()


async def test_a_snapshot_in_parts_completes_the_join_at_the_last() -> None:
    h = Harness()
    joined: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    h.state.joins["plan"] = [joined]
    cell = Cell(x=0, y=0, value="a", clock=1, client="c-1", by="ana")
    h.join(part=0, parts=2, cells=[cell])
    assert not joined.done()
    h.state.handle(
        CellChanged(board="plan", x=1, y=0, value="b", clock=2, client="c-1", by="ana", version=4)
    )
    h.join(part=1, parts=2, complete=False, participants=[], cells=[])
    mirror = joined.result()
    assert mirror is h.state.joined["plan"]
    assert mirror.version == 4
    assert [e.part for e in h.events if isinstance(e, BoardState)] == [1]  # told once


async def test_a_rejoin_the_rate_limit_refused_is_asked_again() -> None:
    h = Harness()
    h.join()
    h.connect()
    rejoin_id = h.sent[0]["id"]
    h.state.handle(ErrorMessage(code=ErrorCode.RATE_LIMITED, message="slow", re=rejoin_id))
    assert [delay for delay, _ in h.later] == [RATE_LIMITED_RETRY_S]
    h.run_later()
    assert [f["id"] for f in h.sent] == [rejoin_id, rejoin_id]


async def test_a_board_that_cannot_be_rejoined_refuses_its_edits() -> None:
    h = Harness()
    h.join()
    future = h.edit(0, 0, "lost")
    h.connect()
    rejoin_id = h.sent[0]["id"]
    h.state.handle(ErrorMessage(code=ErrorCode.NOT_FOUND, message="gone", re=rejoin_id))
    assert "plan" not in h.state.joined
    with pytest.raises(ClientError):
        future.result()
    assert any(isinstance(e, OpRefused) for e in h.events)


async def test_discard_unsaved_cancels_every_edit() -> None:
    h = Harness()
    h.join()
    futures = [h.edit(0, 0, "a"), h.edit(1, 1, "b")]
    assert h.state.discard_unsaved() == 2
    assert all(f.cancelled() for f in futures)
    assert h.state.joined["plan"].pending == {}


async def test_kept_edits_are_restored_sent_and_their_board_left(tmp_path: Path) -> None:
    outbox = Outbox.in_dir(tmp_path, "ws://x/ws", "team", "ana")
    outbox.add(CellSet(board="plan", x=1, y=1, value="kept", op="o1-1", clock=1, id="o1-1"))
    h = Harness(outbox)
    assert h.state.restored == 1
    assert "plan" in h.state.restore_only
    h.connect()
    assert [f["type"] for f in h.sent] == ["board.join", "cell.set"]
    h.join(re=h.sent[0]["id"])
    h.state.handle(Ack(re="o1-1", version=4, applied=True))
    assert outbox.count() == 0
    assert h.sent[-1]["type"] == "board.leave"
    assert "plan" not in h.state.joined
    outbox.close()

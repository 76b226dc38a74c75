"""The kept snapshot: what its parts hold is what the cell map holds, in bounded parts."""

from __future__ import annotations

import json
import random

from hypothesis import given
from hypothesis import strategies as st

from server.cell_news import op_time
from server.snapshot import EncodedCells, encode_cell, pack
from tui_collab.cells import CellMap, CellOp
from tui_collab.protocol import Cell, encode


def decoded(parts: list[bytes]) -> dict[tuple[int, int], str]:
    cells = json.loads(b"[" + b",".join(p for p in parts if p) + b"]")
    return {(c["x"], c["y"]): c["value"] for c in cells}


def test_a_cell_encodes_as_the_protocol_model_does() -> None:
    op = CellOp(3, 4, 'a "quoted" \\ 😀 value', 7, "c-1", "ada")
    model = Cell(x=3, y=4, value=op.value, clock=7, client="c-1", by="ada")
    assert json.loads(encode_cell(op)) == json.loads(encode(model))


def test_a_cells_time_encodes_as_the_protocol_model_does() -> None:
    op = CellOp(3, 4, "v", 7, "c-1", "ada", at=1_764_329_400_123)
    model = Cell(x=3, y=4, value="v", clock=7, client="c-1", by="ada", at=op_time(op))
    assert encode_cell(op).decode() == encode(model)
    assert Cell.model_validate_json(encode_cell(op)).at == op_time(op)


@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 7), st.integers(0, 40)),
        min_size=1,
        max_size=200,
    )
)
def test_parts_hold_every_cell_once_and_stay_under_the_limit(
    writes: list[tuple[int, int, int]],
) -> None:
    limit = 512
    kept, plain = EncodedCells(limit=limit), CellMap()
    rng = random.Random(len(writes))
    for clock, (x, y, size) in enumerate(writes, start=1):
        op = CellOp(x, y, "é" * size, clock, "c-1", "ada", clock)
        kept.apply(op)
        plain.apply(op)
        if rng.random() < 0.3:  # snapshots taken between writes, as joins would
            kept.refresh()
            kept.parts()
    kept.refresh()
    parts = kept.parts()
    assert decoded(parts) == {(op.x, op.y): op.value for op in plain}
    assert all(len(part) <= limit for part in parts)


def test_parts_are_reused_until_a_cell_changes() -> None:
    cells = EncodedCells([CellOp(x, 0, "v", x + 1, "c-1", "ada", x + 1) for x in range(50)])
    assert cells.stale == 50
    assert cells.refresh(20) == 20
    assert cells.refresh() == 30
    first = cells.parts()
    assert cells.parts() is first
    cells.apply(CellOp(0, 0, "w", 100, "c-1", "ada", 51))
    assert cells.stale == 1
    cells.refresh()
    assert cells.parts() is not first
    assert decoded(cells.parts())[(0, 0)] == "w"


def test_pack_keeps_order_and_size() -> None:
    fragments = [b"x" * 10 for _ in range(10)]
    parts = pack(fragments, limit=33)
    assert parts == [b",".join([b"x" * 10] * 3)] * 3 + [b"x" * 10]

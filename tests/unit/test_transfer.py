"""CSV, TSV and JSON import/export, without a server: parsing, placing, checking, writing."""

from __future__ import annotations

import json

import pytest

from tui_collab.cells import CellOp
from tui_collab.transfer import (
    SourceCell,
    TransferError,
    check,
    format_board,
    format_table,
    grid_rows,
    guess_format,
    parse,
    parse_cell_name,
)


def _op(x: int, y: int, value: str, at: int = 0) -> CellOp:
    return CellOp(x, y, value, 1, "c-1", "ana", 1, at)


def test_cell_names_count_from_a1() -> None:
    assert parse_cell_name("A1") == (0, 0)
    assert parse_cell_name("b2") == (1, 1)
    assert parse_cell_name("AA10") == (26, 9)
    for bad in ("", "1A", "A0", "A", "B-2"):
        with pytest.raises(TransferError):
            parse_cell_name(bad)


def test_the_format_follows_the_extension() -> None:
    assert guess_format("plan.JSON") == "json"
    assert guess_format("plan.tsv") == "tsv"
    assert guess_format("plan.csv") == "csv"
    assert guess_format("plan.txt") == "csv"


def test_csv_lands_at_its_anchor_and_skips_empty_fields() -> None:
    cells = parse('a,,"c, with comma"\n,"say ""hi"""\n', "csv", at=(1, 1))
    assert [(c.x, c.y, c.value, c.where) for c in cells] == [
        (1, 1, "a", "row 1, column 1"),
        (3, 1, "c, with comma", "row 1, column 3"),
        (2, 2, 'say "hi"', "row 2, column 2"),
    ]
    clearing = parse("a,\n", "csv", clear_empty=True)
    assert [(c.x, c.value) for c in clearing] == [(0, "a"), (1, "")]


def test_tsv_and_a_byte_order_mark() -> None:
    cells = parse("\ufeffx\ty\r\nz\n", "tsv")
    assert [(c.x, c.y, c.value) for c in cells] == [(0, 0, "x"), (1, 0, "y"), (0, 1, "z")]


def test_json_cells_are_placed_relative_to_the_anchor() -> None:
    text = json.dumps({"cells": [{"x": 0, "y": 2, "value": "v", "by": "ana"}]})
    assert parse(text, "json", at=(1, 0)) == [SourceCell(1, 2, "v", "cells[0]")]
    for bad in ("[", "[]", '{"cells": [{"x": true, "y": 0, "value": ""}]}'):
        with pytest.raises(TransferError):
            parse(bad, "json")


def test_a_refused_character_is_named_by_row_and_column() -> None:
    cells = parse("ok,fine\nstill,ok\nx,bell\x07\n", "csv")
    with pytest.raises(TransferError) as refused:
        check(cells)
    assert str(refused.value) == (
        "row 3, column 2: contains the control character U+0007, which a cell cannot hold"
    )
    with pytest.raises(TransferError, match="row 1, column 1: too long"):
        check(parse("x" * 300, "csv"))


def test_cells_outside_the_board_are_named_with_the_board_size() -> None:
    cells = parse("a,b,c\nd,e,f\n", "csv", at=(1, 0))
    check(cells, width=4, height=2)
    with pytest.raises(TransferError) as refused:
        check(cells, width=3, height=1, board="board plan")
    message = str(refused.value)
    assert message.startswith("4 cells fall outside board plan (3 columns A-C, 1 rows)")
    assert "row 1, column 3 would land on D1" in message
    assert "and 1 more" in message


def test_csv_export_is_the_rectangle_from_a1() -> None:
    values = {(2, 1): "c", (0, 0): "a", (1, 3): ""}
    assert grid_rows(values) == [["a", "", ""], ["", "", "c"]]
    assert format_table(values, "csv") == "a,,\n,,c\n"
    assert format_table({(0, 0): 'x, "y"'}, "tsv") == 'x, "y"\n'
    assert format_table({(0, 0): "a,b"}, "csv") == '"a,b"\n'
    assert format_table({}, "csv") == ""


def test_export_then_parse_gives_the_same_cells() -> None:
    ops = [_op(0, 0, "a,b"), _op(3, 2, 'q"uote'), _op(1, 1, "ünï 😀")]
    for fmt in ("csv", "tsv", "json"):
        text = format_board(fmt, board="p", title="P", width=5, height=5, version=3, cells=ops)
        parsed = {(c.x, c.y): c.value for c in parse(text, fmt)}
        assert parsed == {(op.x, op.y): op.value for op in ops}, fmt


def test_json_export_names_writer_and_time() -> None:
    text = format_board(
        "json",
        board="p",
        title="P",
        width=5,
        height=4,
        version=9,
        cells=[_op(1, 0, "b", at=1_700_000_000_123), _op(0, 0, "a"), _op(2, 0, "")],
    )
    document = json.loads(text)
    assert document["format"] == "tui-collab.board/1"
    assert (document["width"], document["height"], document["version"]) == (5, 4, 9)
    assert document["cells"] == [
        {"x": 0, "y": 0, "cell": "A1", "value": "a", "by": "ana", "at": None},
        {"x": 1, "y": 0, "cell": "B1", "value": "b", "by": "ana", "at": "2023-11-14T22:13:20.123Z"},
    ]

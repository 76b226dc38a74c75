"""Rectangles, TSV both ways, and where a pasted block lands."""

from __future__ import annotations

from tui_collab.selection import Rect, parse_tsv, plan_paste, to_tsv


def test_a_rect_from_any_two_corners() -> None:
    rect = Rect.between((3, 5), (1, 2))
    assert (rect.left, rect.top, rect.right, rect.bottom) == (1, 2, 3, 5)
    assert (rect.width, rect.height, rect.size) == (3, 4, 12)
    assert rect.describe() == "3×4 cells"  # noqa: RUF001
    assert Rect.between((0, 0), (0, 0)).describe() == "1 cell"
    assert list(Rect.between((0, 0), (1, 1)).cells()) == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert rect.contains(2, 3)
    assert not rect.contains(0, 3)


def test_tsv_round_trip() -> None:
    values = {(0, 0): "a", (1, 0): "b", (1, 1): "d"}
    tsv = to_tsv(Rect(0, 0, 1, 1), lambda x, y: values.get((x, y), ""))
    assert tsv == "a\tb\n\td"
    assert parse_tsv(tsv) == [["a", "b"], ["", "d"]]
    assert to_tsv(Rect(1, 0, 1, 0), lambda x, y: values.get((x, y), "")) == "b"


def test_parse_tsv_takes_any_line_break_and_one_trailing_one() -> None:
    assert parse_tsv("a\tb\r\nc\td\r\n") == [["a", "b"], ["c", "d"]]
    assert parse_tsv("one\ntwo\n") == [["one"], ["two"]]
    assert parse_tsv("x") == [["x"]]
    assert parse_tsv("a\n\nb") == [["a"], [""], ["b"]]


def test_a_paste_is_clipped_at_the_board_edge() -> None:
    rows = [["1", "2", "3"], ["4", "5", "6"]]
    plan = plan_paste(rows, x=3, y=9, width=5, height=10, max_chars=256)
    assert plan.edits == [(3, 9, "1"), (4, 9, "2")]
    assert plan.outside == 4
    assert plan.notice == "pasted 2 cells; 4 fell outside the board"


def test_a_paste_cleans_values_a_cell_cannot_hold() -> None:
    plan = plan_paste([["ok", "bell\x07", "x" * 10]], 0, 0, 10, 10, max_chars=5)
    assert plan.edits == [(0, 0, "ok"), (1, 0, "bell"), (2, 0, "xxxxx")]
    assert plan.cleaned == 2
    assert plan.notice == "pasted 3 cells; 2 values changed to fit a cell"

"""Search: case-insensitive, reading order, wrapping both ways."""

from __future__ import annotations

from tui_collab.search import Search, find

CELLS = [(2, 0, "Foo"), (0, 1, "food"), (5, 0, "bar"), (1, 3, "a FOO b"), (0, 0, "")]


def test_find_is_case_insensitive_in_reading_order() -> None:
    assert find(CELLS, "foo") == [(2, 0), (0, 1), (1, 3)]
    assert find(CELLS, "") == []
    assert find(CELLS, "zzz") == []


def test_enter_goes_to_the_first_match_after_the_cursor_and_n_wraps() -> None:
    search = Search("foo", find(CELLS, "foo"))
    assert search.first_after((3, 0)) == (0, 1)
    assert search.describe() == "match 2 of 3 for 'foo'"
    assert search.step((0, 1), forward=True) == (1, 3)
    assert search.step((1, 3), forward=True) == (2, 0)  # wraps to the top
    assert search.step((2, 0), forward=False) == (1, 3)  # and back to the bottom
    assert search.step((9, 9), forward=True) == (2, 0)  # off a match: the next one after
    assert search.step((0, 2), forward=False) == (0, 1)


def test_no_matches_says_so() -> None:
    search = Search("zzz", [])
    assert search.first_after((0, 0)) is None
    assert search.describe() == "no matches for 'zzz'"

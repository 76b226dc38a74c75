"""The colour rule: least used first, palette order on ties, your old colour if free."""

from server.boards import PALETTE, pick_colour


def test_empty_board_gets_first_colour() -> None:
    assert pick_colour([], None) == PALETTE[0]


def test_least_used_wins_with_palette_order_on_ties() -> None:
    assert pick_colour(list(PALETTE[:5]), None) == PALETTE[5]
    assert pick_colour([*PALETTE, PALETTE[0], PALETTE[2]], None) == PALETTE[1]


def test_previous_colour_is_reused_only_if_free() -> None:
    assert pick_colour([PALETTE[0]], PALETTE[7]) == PALETTE[7]
    assert pick_colour([PALETTE[7]], PALETTE[7]) == PALETTE[0]


def test_palette_is_twelve_distinct_hex_colours() -> None:
    assert len(set(PALETTE)) == 12
    assert all(len(c) == 7 and c.startswith("#") and int(c[1:], 16) >= 0 for c in PALETTE)

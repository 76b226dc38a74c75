"""Counts in words, for what a person reads."""

from __future__ import annotations


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 edit', '3 edits'; `many` for a plural that is not `one` + 's'."""
    return f"{n} {one if n == 1 else (many or one + 's')}"

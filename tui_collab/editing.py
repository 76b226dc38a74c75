"""Cell editor text clean-up: what a paste becomes before it reaches the editor.

A cell holds one line of printable text. Pasted text is made to fit instead of being
refused: every tab and line break becomes one space (CR LF is one line break, and so
are U+2028 and U+2029), and any other character a cell cannot hold (control, bidi and
zero-width characters; the two joiners stay) is removed. `Cleaned.notice` says what
was changed, in words, so the person sees it; it is None when nothing was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from tui_collab.protocol import CELL_REFUSED
from tui_collab.words import plural

_LINE_BREAK: Final = re.compile("\r\n|\r|\n|\u2028|\u2029")
"""Line breaks, including Unicode's line and paragraph separators."""


@dataclass(frozen=True)
class Cleaned:
    text: str
    notice: str | None
    """What was changed, for a person ('1 tab and 2 line breaks became spaces'); None
    when the text was already fine."""


def clean_paste(text: str) -> Cleaned:
    """Make pasted text fit a cell: tabs and line breaks to spaces, other controls out."""
    text, breaks = _LINE_BREAK.subn(" ", text)
    tabs = text.count("\t")
    text = text.replace("\t", " ")
    text, removed = CELL_REFUSED.subn("", text)
    spaced = [
        part
        for part in (
            plural(tabs, "tab") if tabs else "",
            plural(breaks, "line break") if breaks else "",
        )
        if part
    ]
    said: list[str] = []
    if spaced:
        verb = "became a space" if tabs + breaks == 1 else "became spaces"
        said.append(f"{' and '.join(spaced)} {verb}")
    if removed:
        said.append(f"{plural(removed, 'control character')} removed")
    return Cleaned(text, "; ".join(said) if said else None)

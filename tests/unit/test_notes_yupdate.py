"""Yjs v1 updates read, checked and split without applying them (tui_collab.yupdate).

Every update here is made by a real pycrdt document, and every piece `split_update`
makes is applied by a real one: the pieces must be updates Yrs reads, each within the
limit, that together do exactly what the whole did, in order or not.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from tui_collab.yupdate import (
    EMPTY_UPDATE,
    UpdateError,
    check_notes_update,
    is_panic,
    parse_update,
    split_update,
    state_vector,
    text_problem,
)

EDITS = st.lists(
    st.tuples(
        st.booleans(),
        st.integers(0, 10_000),
        st.text(alphabet="ab é😀\n", min_size=1, max_size=300),
    ),
    min_size=1,
    max_size=12,
)


def notes(client_id: int = 1) -> tuple[Doc[Any], Text]:
    doc: Doc[Any] = Doc(client_id=client_id)
    return doc, doc.get("notes", type=Text)


def edit(text: Text, insert: bool, where: int, value: str) -> None:
    """An insert or a deletion at a character position (pycrdt counts UTF-8 bytes)."""
    current = str(text)
    at = min(where, len(current))
    offset = len(current[:at].encode())
    if insert:
        text.insert(offset, value)
    else:
        end = len(current[: at + len(value)].encode())
        if end > offset:
            del text[offset:end]


@settings(max_examples=40)
@given(edits=EDITS, limit=st.integers(128, 2_000), reverse=st.booleans())
def test_pieces_fit_the_limit_and_rebuild_the_document(
    edits: list[tuple[bool, int, str]], limit: int, reverse: bool
) -> None:
    doc, text = notes()
    for insert, where, value in edits:
        edit(text, insert, where, value)
    whole = doc.get_update()
    check_notes_update(whole)
    pieces = split_update(whole, limit)
    assert all(len(piece) <= limit for piece in pieces) or pieces == [whole]
    copy, copy_text = notes(2)
    for piece in reversed(pieces) if reverse else pieces:
        check_notes_update(piece)
        copy.apply_update(piece)
    assert str(copy_text) == str(text)
    assert copy.get_state() == doc.get_state()


def test_an_update_that_fits_is_left_as_it_is() -> None:
    doc, text = notes()
    text.insert(0, "short")
    update = doc.get_update()
    assert split_update(update, 1_000) == [update]


def test_one_long_string_is_cut_between_characters_never_inside_a_pair() -> None:
    doc, text = notes()
    text.insert(0, "😀" * 3_000)
    pieces = split_update(doc.get_update(), 500)
    assert len(pieces) > 20
    copy, copy_text = notes(2)
    for piece in pieces:
        copy.apply_update(piece)
    assert str(copy_text) == "😀" * 3_000


def test_what_an_update_inserts_is_counted_in_utf8_bytes() -> None:
    doc, text = notes()
    text.insert(0, "é😀a")
    assert parse_update(doc.get_update()).inserted_bytes == 7
    assert parse_update(EMPTY_UPDATE).inserted_bytes == 0
    # What a document already holds is not new to it.
    have = state_vector(doc.get_state())
    before = doc.get_state()
    text.insert(0, "xy")
    both = parse_update(doc.get_update())
    assert both.inserted_bytes == 9
    assert both.new_bytes(have) == 2
    assert parse_update(doc.get_update(before)).new_bytes(have) == 2


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda t, d: t.insert(0, "a\x00b"), "U+0000"),
        (lambda t, d: t.insert(0, "\r\n"), "U+000D"),
        (lambda t, d: t.insert(0, "esc \x1b[2J"), "U+001B"),
        (lambda t, d: t.insert(0, "c1 \x9b"), "U+009B"),
        (lambda t, d: t.insert(0, "x\x7f"), "U+007F"),
        (lambda t, d: (t.insert(0, "ab"), t.format(0, 1, {"bold": True})), "formatting"),
        (lambda t, d: t.insert_embed(0, {"img": 1}), "embed"),
        (lambda t, d: d.get("other", type=Map).__setitem__("k", 1), "root text 'notes'"),
        (lambda t, d: d.get("other", type=Text).insert(0, "x"), "root text 'notes'"),
    ],
)
def test_what_notes_cannot_hold_is_refused(make: Any, says: str) -> None:
    doc, text = notes()
    make(text, doc)
    with pytest.raises(UpdateError, match=re.escape(says)):
        check_notes_update(doc.get_update())


def test_tabs_and_newlines_are_text() -> None:
    doc, text = notes()
    text.insert(0, "- [ ] item\n\tindented\n")
    assert check_notes_update(doc.get_update()).inserted_bytes == 21
    assert text_problem("\t\n") is None


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "ends in the middle"),
        (b"\x01\x01\x07\x00\x04\x01\x05not", "ends in the middle of a string"),
        (b"\x01\x01\x07\x00\x04\x01\x02\xff\xfe\x01a\x00", "not UTF-8"),
        (EMPTY_UPDATE + b"\x00", "1 bytes after its end"),
        (b"\x01\x01\x07\x00\x04\x00\x07\x01\x01a\x00", "no nested types"),
        (b"\xff" * 11, "longer than 64 bits"),
    ],
)
def test_malformed_bytes_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(UpdateError, match=says):
        parse_update(data)


def test_a_yrs_panic_is_told_apart_from_other_errors() -> None:
    _doc, text = notes()
    text.insert(0, "ab")
    with pytest.raises(BaseException) as raised:  # noqa: PT011 - pyo3's panic is not importable
        del text[1:5]
    assert is_panic(raised.value)
    assert not isinstance(raised.value, Exception)
    assert not is_panic(ValueError("x"))

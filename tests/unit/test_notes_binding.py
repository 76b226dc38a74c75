"""The notes binding: local edits become CRDT operations, every other change comes back
as editor edits that leave the local selection where it was.

Real pycrdt documents exchange real updates; the "editor" is a plain string that
applies the `ViewChange`s the binding hands it, as the TextArea does.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Doc, Text

from tui_collab.notes_binding import (
    SHOWN_FOR_SEPARATOR,
    Location,
    NotesBinding,
    ViewChange,
    advance_bytes,
    cleaned,
    location_of,
    offset_of,
)
from tui_collab.notes_tools import sendable_caret


class Editor:
    """What the TextArea holds: its text and selection, changed only as told."""

    def __init__(self, text: Text, capture_ms: int = 0) -> None:
        self.text = ""
        self.anchor: Location = (0, 0)
        self.head: Location = (0, 0)
        self.changes: list[ViewChange] = []
        self.binding = NotesBinding(text, self.apply, capture_ms=capture_ms)
        self.text = self.binding.shown_text

    def apply(self, change: ViewChange) -> None:
        for edit in change.edits:
            a = offset_of(self.text, edit.start)
            b = offset_of(self.text, edit.end)
            self.text = self.text[:a] + edit.text + self.text[b:]
        self.anchor, self.head = change.anchor, change.head
        self.changes.append(change)

    def type(self, at: int, inserted: str, delete: int = 0) -> None:
        """Replace `delete` code points at offset `at` with `inserted`, as keys would."""
        start = location_of(self.text, at)
        end = location_of(self.text, at + delete)
        self.binding.local_edit(start, end, inserted)
        self.text = self.text[:at] + inserted + self.text[at + delete :]
        self.select(at + len(inserted), at + len(inserted))

    def select(self, anchor: int, head: int) -> None:
        self.anchor = location_of(self.text, anchor)
        self.head = location_of(self.text, head)
        self.binding.select(self.anchor, self.head)

    @property
    def selected(self) -> str:
        a, b = sorted((offset_of(self.text, self.anchor), offset_of(self.text, self.head)))
        return self.text[a:b]


def replica(initial: str = "") -> tuple[Doc[Any], Text]:
    doc: Doc[Any] = Doc()
    text = doc.get("notes", type=Text)
    if initial:
        text += initial
    return doc, text


def sync(source: Doc[Any], target: Doc[Any]) -> None:
    target.apply_update(source.get_update(target.get_state()))


def pair(initial: str) -> tuple[Doc[Any], Text, Doc[Any], Text]:
    """Two replicas holding `initial` (one created it, the other synced it)."""
    mine, my_text = replica(initial)
    theirs, their_text = replica()
    sync(mine, theirs)
    return mine, my_text, theirs, their_text


def remote_insert(
    theirs: Doc[Any], their_text: Text, mine: Doc[Any], at: int, inserted: str
) -> None:
    """A teammate inserts at code point `at` of their copy; the update reaches mine."""
    value = str(their_text)
    their_text.insert(len(value[:at].encode()), inserted)
    sync(theirs, mine)


def test_local_typing_reaches_the_shared_text_in_bytes_across_lines_and_wide_chars() -> None:
    _doc, text = replica("héllo\n日本語 😀 end")
    editor = Editor(text)
    editor.type(len("héllo\n日本"), "X")  # inside a line of 3-byte characters
    editor.type(len("héllo\n日本X語 😀"), "Y")  # after a 4-byte one
    editor.type(1, "", delete=1)  # the é, two bytes
    assert str(text) == "hllo\n日本X語 😀Y end"
    assert editor.text == str(text)
    assert editor.changes == []  # own typing is never echoed back to the editor


def test_a_remote_insert_before_the_selection_moves_it_along() -> None:
    mine, my_text, theirs, their_text = pair("one two three")
    editor = Editor(my_text)
    editor.select(4, 7)  # "two"
    remote_insert(theirs, their_text, mine, 0, "zero ")
    assert editor.text == "zero one two three"
    assert editor.selected == "two"
    assert (editor.anchor, editor.head) == ((0, 9), (0, 12))


def test_a_remote_insert_after_the_selection_leaves_it() -> None:
    mine, my_text, theirs, their_text = pair("one two three")
    editor = Editor(my_text)
    editor.select(7, 4)  # "two", selected backwards
    remote_insert(theirs, their_text, mine, 13, " four")
    assert editor.text == "one two three four"
    assert (editor.anchor, editor.head) == ((0, 7), (0, 4))


def test_a_remote_insert_inside_the_selection_grows_it_and_at_its_edges_does_not() -> None:
    mine, my_text, theirs, their_text = pair("one two three")
    editor = Editor(my_text)
    editor.select(4, 7)
    remote_insert(theirs, their_text, mine, 5, "--")
    assert editor.selected == "t--wo"
    remote_insert(theirs, their_text, mine, 4, "[")  # at its start: before it
    remote_insert(theirs, their_text, mine, 10, "]")  # at its end: after it
    assert editor.text == "one [t--wo] three"
    assert editor.selected == "t--wo"


def test_a_remote_insert_at_the_caret_lands_after_it_so_words_do_not_interleave() -> None:
    mine, my_text, theirs, their_text = pair("ab")
    editor = Editor(my_text)
    editor.select(1, 1)
    remote_insert(theirs, their_text, mine, 1, "XYZ")
    assert editor.text == "aXYZb"
    assert editor.head == (0, 1)
    editor.type(1, "me")
    assert editor.text == "ameXYZb"


def test_remote_changes_elsewhere_with_wide_chars_keep_the_caret_on_its_character() -> None:
    mine, my_text, theirs, their_text = pair("日本\n😀 caret here\nend")
    editor = Editor(my_text)
    at = len("日本\n😀 caret ")
    editor.select(at, at)
    remote_insert(theirs, their_text, mine, 0, "新しい\n")
    remote_insert(theirs, their_text, mine, len("新しい\n日本\n"), "é😀")
    assert editor.text == "新しい\n日本\né😀😀 caret here\nend"
    assert editor.head == (2, len("é😀😀 caret "))
    assert editor.text == str(my_text)


def test_a_remote_delete_around_the_caret_puts_it_where_the_text_was() -> None:
    mine, my_text, theirs, their_text = pair("keep this gone keep")
    editor = Editor(my_text)
    editor.select(12, 12)  # inside "gone"
    del their_text[len("keep this ") : len("keep this gone ")]
    sync(theirs, mine)
    assert editor.text == "keep this keep"
    assert editor.head == (0, 10)


def test_concurrent_typing_at_the_same_place_converges_with_both_texts() -> None:
    mine, my_text, theirs, their_text = pair("say: !")
    me, them = Editor(my_text), Editor(their_text)
    for editor in (me, them):
        editor.select(5, 5)
    for a, b in zip("hello", "world", strict=True):
        me.type(offset_of(me.text, me.head), a)
        them.type(offset_of(them.text, them.head), b)
        sync(mine, theirs)
        sync(theirs, mine)
    assert me.text == them.text == str(my_text) == str(their_text)
    # Each typist's word stays whole: a teammate's keys land after one's own caret.
    assert me.text in ("say: helloworld!", "say: worldhello!")


def test_undo_takes_back_own_edits_only_and_redo_writes_them_again() -> None:
    mine, my_text, theirs, their_text = pair("base")
    editor = Editor(my_text)
    editor.type(4, " mine")
    remote_insert(theirs, their_text, mine, 0, "theirs ")
    assert editor.text == "theirs base mine"
    assert editor.binding.undo()
    assert editor.text == str(my_text) == "theirs base"
    assert editor.changes[-1].own
    assert editor.head == (0, len("theirs base"))
    assert not editor.binding.undo()  # the teammate's insert is not this user's to undo
    assert editor.binding.redo()
    assert editor.text == str(my_text) == "theirs base mine"
    sync(mine, theirs)
    assert str(their_text) == "theirs base mine"


def test_keys_typed_in_quick_succession_undo_as_one_step() -> None:
    _doc, text = replica("")
    editor = Editor(text, capture_ms=60_000)
    for n, key in enumerate("word"):
        editor.type(n, key)
    assert editor.binding.undo()
    assert editor.text == str(text) == ""


def test_line_separators_other_than_newline_show_as_one_placeholder_each() -> None:
    mine, my_text, theirs, their_text = pair("a\nb")
    editor = Editor(my_text)
    remote_insert(theirs, their_text, mine, 1, "\u2028x\r")
    assert editor.text == f"a{SHOWN_FOR_SEPARATOR}x{SHOWN_FOR_SEPARATOR}\nb"
    editor.type(len(editor.text), "!")  # after a separator: offsets still agree
    assert str(my_text) == "a\u2028x\r\nb!"


def test_index_conversions() -> None:
    text = "a😀\nbé日"
    assert location_of(text, 0) == (0, 0)
    assert location_of(text, 3) == (1, 0)
    assert location_of(text, 99) == (1, 3)
    assert offset_of(text, (1, 2)) == 5
    assert offset_of(text, (0, 99)) == 2  # clamped to its row
    assert offset_of(text, (9, 0)) == len(text)
    assert advance_bytes(text, 0, 5) == 2
    with pytest.raises(ValueError, match="past the end"):
        advance_bytes(text, 0, 99)
    with pytest.raises(UnicodeDecodeError):
        advance_bytes(text, 0, 3)  # inside the emoji


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.integers(0, 40),
            st.integers(0, 3),
            st.text(alphabet="ab\n é日😀", max_size=4),
        ),
        max_size=25,
    )
)
def test_any_mix_of_local_and_remote_edits_keeps_editor_and_text_equal(
    steps: list[tuple[bool, int, int, str]],
) -> None:
    mine, my_text, theirs, their_text = pair("start\n")
    editor = Editor(my_text)
    for local, at, delete, inserted in steps:
        if local:
            at = min(at, len(editor.text))
            editor.type(at, inserted, delete=min(delete, len(editor.text) - at))
            sync(mine, theirs)
        else:
            value = str(their_text)
            at = min(at, len(value))
            start = len(value[:at].encode())
            gone = len(value[at : at + delete].encode())
            with theirs.transaction():
                del their_text[start : start + gone]
                their_text.insert(start, inserted)
            sync(theirs, mine)
        assert editor.text == str(my_text)
        assert 0 <= offset_of(editor.text, editor.head) <= len(editor.text)


def test_a_change_that_does_not_fit_the_text_held_reloads_the_whole_text() -> None:
    mine, my_text, theirs, their_text = pair("abcdef")
    editor = Editor(my_text)
    editor.binding.value = "ab"  # held text out of step (never expected): recover
    editor.text = "ab"
    remote_insert(theirs, their_text, mine, 6, "!")
    assert editor.text == str(my_text) == "abcdef!"


def test_pasted_control_characters_are_left_out_and_counted() -> None:
    assert cleaned("plain\ttext\n") == ("plain\ttext\n", 0)
    assert cleaned("a\r\nb\rc") == ("a\nb\nc", 0)  # line breaks kept, as "\n"
    assert cleaned("bell\x07 esc\x1b[31m nel\x85 del\x7f") == ("bell esc[31m nel del", 4)


def test_an_edit_past_the_cap_is_told_before_it_is_made() -> None:
    _doc, text = replica("héllo")  # 6 bytes
    editor = Editor(text)
    editor.binding.max_bytes = 8
    assert not editor.binding.too_big((0, 5), (0, 5), "ab")  # 8 bytes: fits
    assert editor.binding.too_big((0, 5), (0, 5), "é!")  # 9 bytes
    assert not editor.binding.too_big((0, 0), (0, 2), "abc")  # replaces "hé": 7 bytes
    assert not editor.binding.too_big((0, 0), (0, 5), "")  # deleting always fits


def test_a_caret_is_sent_as_an_index_shared_notes_can_place() -> None:
    """`SharedNotes.set_caret` makes a UTF-8 offset of the index and pycrdt reads it as
    UTF-16 units, failing at or past the end: the app sends what lands right (or just
    before, at the end) and never past it."""
    assert sendable_caret("", 0) == 0
    assert [sendable_caret("abc", i) for i in range(4)] == [0, 1, 2, 2]
    for text in ("héllo wörld", "a😀b\n日本語"):
        total = len(text.encode("utf-16-le")) // 2
        for index in range(len(text) + 1):
            sent = sendable_caret(text, index)
            assert sent is not None
            assert len(text[:sent].encode()) < total
    assert sendable_caret("héllo", 4) == 3  # "hél" is 4 bytes as "héll" is 4 units: exact

"""The schema: every message round-trips, every bound holds, every error is typed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_collab import protocol as p

CONTROL = st.sampled_from(
    [chr(c) for c in range(0x20)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)]
)

CLIENT_EXAMPLES: list[p._Message] = [
    p.Hello(v=1, token="t.o.k", client="tui-collab/0.1", client_id="c-1", id="h"),
    p.Hello(v=1, user="alice", team="core", name="Alice Ng"),
    p.PresenceSet(
        status="busy",
        activity=p.Activity(kind="reviewing", board="plan", detail="PR #12 — ünïcode ok"),
    ),
    p.PresenceQuery(user="bob", id="q"),
    p.BoardCreate(board="plan", title="Plan", width=26, height=100),
    p.BoardUpdate(board="plan", title="Roadmap"),
    p.BoardJoin(board="plan", since=12, epoch="e-abc"),
    p.BoardLeave(board="plan"),
    p.CursorMove(board="plan", x=0, y=4095),
    p.CellSet(board="plan", x=255, y=0, value="", op="c-1:7", clock=p.MAX_CLOCK),
    p.TypingSet(board="plan", x=1, y=2, active=False),
    p.AuthRefresh(token="new"),
    p.CellsSet(id="b-1", board="plan", ops=[p.CellEdit(x=1, y=2, value="v", op="c-1:8", clock=3)]),
    p.CellHistoryQuery(board="plan", x=1, y=2, id="h-1"),
    p.NotesOpen(board="plan", sv="AA==", id="n-1"),
    p.NotesUpdate(board="plan", update="AQHkx9KGv+vSCwAEAQVub3RlcwVoZWxsbwA=", id="n-2"),
    p.NotesCaret(board="plan", anchor="AAGcAQA=", head=None),
    p.NotesClose(board="plan"),
]

MEMBER = p.Presence(
    user="alice",
    name="Alice",
    status="offline",
    last_seen=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    connections=0,
)
META = p.BoardMeta(id="plan", title="Plan", width=4, height=4, created_by="alice", version=3)
SERVER_EXAMPLES: list[p._Message] = [
    p.Welcome(
        session="s-1",
        client_id="c-1",
        user=p.UserRef(id="alice", name="Alice"),
        team="core",
        server=p.ServerInfo(node="n", version="0.1.0", epoch="e"),
        limits=p.Limits(),
        members=[MEMBER],
        boards=[META],
    ),
    MEMBER,
    p.PresenceBatch(members=[MEMBER, MEMBER.model_copy(update={"user": "bob", "name": "Bob"})]),
    p.PresenceSnapshot(re="q", members=[MEMBER]),
    p.BoardCreated(board=META),
    p.BoardUpdated(board=META),
    p.BoardState(
        board=META,
        epoch="e",
        version=3,
        complete=False,
        cells=[p.Cell(x=1, y=1, value="v", clock=2, client="c-1", by="alice")],
        participants=[p.Participant(user="alice", name="Alice", color="#e06c75")],
        cursors=[p.CursorPosition(user="alice", x=1, y=1)],
    ),
    p.ParticipantJoined(board="plan", user="bob", name="Bob", color="#98c379"),
    p.ParticipantLeft(board="plan", user="bob", name="Bob", color="#98c379"),
    p.ParticipantsChanged(
        board="plan",
        joined=[p.Participant(user="bob", name="Bob", color="#98c379")],
        left=[p.Participant(user="cy", name="Cy", color="#e5c07b")],
    ),
    p.Cursors(board="plan", cursors=[p.CursorPosition(user="bob", x=0, y=0)]),
    p.CellChanged(board="plan", x=1, y=1, value="v", clock=2, client="c-1", by="alice", version=4),
    p.CellsChanged(
        board="plan",
        version=5,
        cells=[p.ChangedCell(x=1, y=1, value="v", clock=2, client="c-1", by="bob", version=5)],
    ),
    p.CellHistory(
        re="h-1",
        board="plan",
        x=1,
        y=1,
        entries=[p.HistoryEntry(value="v", clock=2, client="c-1", by="bob", version=5)],
    ),
    p.Typing(board="plan", user="bob", x=1, y=1, active=True),
    p.NotesState(
        re="n-1",
        board="plan",
        update="AAA=",
        sv="AA==",
        carets=[p.NoteCaret(user="bob", anchor="AAGcAQA=", head="AAGcAQA=")],
    ),
    p.NotesUpdated(board="plan", update="AAA=", by="bob"),
    p.NotesCarets(board="plan", carets=[p.NoteCaret(user="bob")]),
    p.Ack(re="op-1", version=4, applied=True),
    p.ErrorMessage(code=p.ErrorCode.NOT_FOUND, message="no board 'x'", re="q"),
]


@pytest.mark.parametrize("message", CLIENT_EXAMPLES, ids=lambda m: m.type)
def test_client_messages_round_trip(message: p._Message) -> None:
    assert p.decode(p.encode(message)) == message


@pytest.mark.parametrize("message", SERVER_EXAMPLES, ids=lambda m: m.type)
def test_server_messages_round_trip(message: p._Message) -> None:
    assert p.decode_server(p.encode(message)) == message


def test_every_protocol_type_has_an_example() -> None:
    schema = p.json_schema()
    client_types = {m.type for m in CLIENT_EXAMPLES}  # type: ignore[attr-defined]
    server_types = {m.type for m in SERVER_EXAMPLES}  # type: ignore[attr-defined]
    assert client_types == set(schema["client_to_server"]["discriminator"]["mapping"])
    assert server_types == set(schema["server_to_client"]["discriminator"]["mapping"])


def test_every_server_type_is_in_the_reference_and_has_an_example_frame() -> None:
    """docs/protocol.md lists each server message type in §4.2 and shows it on the wire."""
    doc = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()
    reference = doc[doc.index("### 4.2") : doc.index("## 5.")]
    for kind in p.json_schema()["server_to_client"]["discriminator"]["mapping"]:
        assert f"| `{kind}` |" in reference, kind
        assert f'{{"type":"{kind}"' in doc, f"no example frame of {kind}"


def test_last_seen_is_iso_8601_utc() -> None:
    assert json.loads(p.encode(MEMBER))["last_seen"] == "2026-01-02T03:04:05Z"


def test_unknown_fields_are_ignored() -> None:
    message = p.decode('{"type": "board.leave", "board": "plan", "future": {"x": 1}}')
    assert message == p.BoardLeave(board="plan")


@given(prefix=st.text(max_size=5), control=CONTROL, suffix=st.text(max_size=5))
def test_control_characters_are_refused_in_every_text_field(
    prefix: str, control: str, suffix: str
) -> None:
    text = prefix + control + suffix
    for frame in (
        {"type": "cell.set", "board": "b", "x": 0, "y": 0, "value": text, "op": "o", "clock": 1},
        {"type": "presence.set", "activity": {"kind": "editing", "detail": text}},
        {"type": "board.create", "title": text or "t", "width": 1, "height": 1},
        {"type": "hello", "v": 1, "user": "u", "team": "t", "name": text},
        {"type": "hello", "v": 1, "client": text},
        {"type": "presence.query", "id": text},
    ):
        with pytest.raises(p.ProtocolError) as refused:
            p.decode(json.dumps(frame))
        assert refused.value.code is p.ErrorCode.BAD_REQUEST
        assert p.printable(refused.value.message) == refused.value.message


BIDI = [*"\u061c\u200e\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
JOINERS = ["\u200c", "\u200d"]
SEPARATORS = ["\u2028", "\u2029"]
SPOOFING = BIDI + ZERO_WIDTH + SEPARATORS
CELL_REFUSED = [c for c in SPOOFING if c not in JOINERS]


def text_fields(text: str) -> dict[str, dict[str, object]]:
    """Every text field a client sends, each holding `text`."""
    cell = {"type": "cell.set", "board": "b", "x": 0, "y": 0, "op": "o", "clock": 1}
    return {
        "hello.name": {"type": "hello", "v": 1, "user": "u", "team": "t", "name": text},
        "hello.client": {"type": "hello", "v": 1, "client": text},
        "hello.user": {"type": "hello", "v": 1, "user": text, "team": "t"},
        "hello.team": {"type": "hello", "v": 1, "user": "u", "team": text},
        "hello.client_id": {"type": "hello", "v": 1, "client_id": text},
        "request id": {"type": "presence.query", "id": text},
        "presence.query.user": {"type": "presence.query", "user": text},
        "activity.detail": {"type": "presence.set", "activity": {"kind": "idle", "detail": text}},
        "activity.board": {"type": "presence.set", "activity": {"kind": "idle", "board": text}},
        "board.create.title": {"type": "board.create", "title": text, "width": 1, "height": 1},
        "board.create.board": {
            "type": "board.create",
            "board": text,
            "title": "t",
            "width": 1,
            "height": 1,
        },
        "board.update.title": {"type": "board.update", "board": "b", "title": text},
        "board.join.board": {"type": "board.join", "board": text},
        "board.join.epoch": {"type": "board.join", "board": "b", "epoch": text},
        "board.leave.board": {"type": "board.leave", "board": text},
        "cursor.move.board": {"type": "cursor.move", "board": text, "x": 0, "y": 0},
        "typing.board": {"type": "typing", "board": text, "x": 0, "y": 0, "active": True},
        "cell.set.value": {**cell, "value": text},
        "cell.set.op": {**cell, "value": "v", "op": text},
        "cell.set.board": {**cell, "value": "v", "board": text},
    }


@pytest.mark.parametrize("char", SPOOFING, ids=lambda c: f"U+{ord(c):04X}")
def test_bidi_zero_width_and_separators_are_refused_in_every_text_field(char: str) -> None:
    for field, frame in text_fields(f"Bob{char}by").items():
        if field == "cell.set.value" and char in JOINERS:
            assert p.decode(json.dumps(frame)).value == f"Bob{char}by"  # type: ignore[union-attr]
            continue
        with pytest.raises(p.ProtocolError) as refused:
            p.decode(json.dumps(frame))
        assert refused.value.code is p.ErrorCode.BAD_REQUEST, field
        assert p.printable(refused.value.message) == refused.value.message
        assert char not in refused.value.message


def test_a_refused_character_is_named_in_words() -> None:
    frame = text_fields("abc\u202etxt.exe")["hello.name"]
    with pytest.raises(p.ProtocolError) as refused:
        p.decode(json.dumps(frame))
    assert refused.value.message == (
        "name: contains a text direction control (U+202E), which is not allowed"
    )
    assert p.cell_value_problem("exe.\u202etxt") == (
        "contains a text direction control (U+202E), which a cell cannot hold"
    )
    assert p.cell_value_problem("a\u2028b") == (
        "contains a line separator (U+2028), which a cell cannot hold"
    )
    assert p.cell_value_problem("a\u2029b") == (
        "contains a paragraph separator (U+2029), which a cell cannot hold"
    )
    assert p.cell_value_problem("a\u200bb") == (
        "contains an invisible zero-width character (U+200B), which a cell cannot hold"
    )
    # Emoji sequences and Persian spelling need the joiners: a cell keeps them.
    assert p.cell_value_problem("\U0001f469\u200d\U0001f4bb") is None
    assert p.cell_value_problem("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645") is None
    # A joiner next to a refused character: the message names the refused one.
    with pytest.raises(p.ProtocolError) as refused:
        p.decode(json.dumps({**text_fields("\u200d\u2066")["cell.set.value"]}))
    assert "U+2066" in refused.value.message


@pytest.mark.parametrize("char", SPOOFING, ids=lambda c: f"U+{ord(c):04X}")
def test_printable_shows_spoofing_characters_escaped(char: str) -> None:
    assert p.printable(f"a{char}b") == f"a\\u{ord(char):04x}b"


def test_text_stored_before_the_rule_is_still_delivered() -> None:
    """Server messages carry stored text as it is: only control characters never pass."""
    frame = {
        "type": "cell.changed",
        "board": "b",
        "x": 0,
        "y": 0,
        "value": "a\u202eb",
        "clock": 1,
        "client": "c",
        "by": "u",
        "version": 1,
    }
    assert p.decode_server(json.dumps(frame)).value == "a\u202eb"  # type: ignore[union-attr]


@given(
    value=st.text(
        alphabet=st.characters(
            blacklist_categories=["Cc", "Cs"], blacklist_characters=CELL_REFUSED
        ),
        max_size=256,
    )
)
def test_any_printable_value_up_to_the_limit_is_accepted(value: str) -> None:
    message = p.decode(
        json.dumps(
            {
                "type": "cell.set",
                "board": "b",
                "x": 0,
                "y": 0,
                "value": value,
                "op": "o",
                "clock": 1,
            }
        )
    )
    assert isinstance(message, p.CellSet)
    assert message.value == value


@given(junk=st.binary(max_size=200) | st.text(max_size=200))
def test_decode_never_raises_anything_but_protocol_error(junk: bytes | str) -> None:
    with pytest.raises(p.ProtocolError) as refused:  # no random junk is a valid message
        p.decode(junk)
    assert refused.value.code is p.ErrorCode.BAD_REQUEST


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_wrong_shapes_get_bad_request(shape: object) -> None:
    frame = {"type": "cell.set", "board": shape, "x": shape, "y": 0, "value": shape}
    with pytest.raises(p.ProtocolError) as refused:
        p.decode(json.dumps(frame))
    assert refused.value.code is p.ErrorCode.BAD_REQUEST


def test_error_messages_never_echo_control_characters() -> None:
    with pytest.raises(p.ProtocolError) as refused:
        p.decode('{"type": "\\u001b]0;owned\\u0007"}')
    assert "\x1b" not in refused.value.message
    assert "\\x1b" in refused.value.message


def test_request_id_is_recovered_for_errors() -> None:
    with pytest.raises(p.ProtocolError) as refused:
        p.decode('{"type": "cursor.move", "id": "m-1", "board": "b", "x": -1, "y": 0}')
    assert refused.value.re == "m-1"
    with pytest.raises(p.ProtocolError) as refused:
        p.decode('{"type": "cursor.move", "id": "\\u001b", "board": "b", "x": -1, "y": 0}')
    assert refused.value.re is None

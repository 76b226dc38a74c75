"""Board notes over the wire: open, update, fan-out, ack, late joiners and every refusal.

Raw protocol peers on a real server and SQLite file; the updates are real Yjs updates
made by pycrdt documents, as a client in any language would send them.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from server.app import CollabServer
from tests.conftest import StartServer, token
from tests.support.board import create_board, join_board
from tests.support.peer import Message, Peer
from tests.support.waiting import eventually
from tui_collab.client import ClientError, CollabClient
from tui_collab.events import NotesCaretsChanged, NotesChanged, OutboxFailed
from tui_collab.notes import SharedNotes
from tui_collab.outbox import Outbox
from tui_collab.yupdate import EMPTY_UPDATE, split_update


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def replica(client_id: int) -> tuple[Doc[Any], Text]:
    doc: Doc[Any] = Doc(client_id=client_id)
    return doc, doc.get("notes", type=Text)


async def open_notes(peer: Peer, board: str, doc: Doc[Any] | None = None) -> Message:
    sv = b64(doc.get_state()) if doc is not None else "AA=="
    await peer.send({"type": "notes.open", "id": f"open-{board}", "board": board, "sv": sv})
    return await peer.next("notes.state", re=f"open-{board}")


async def send_update(peer: Peer, board: str, update: bytes, id_: str) -> Message:
    """Send one update; return the reply that cites it (its ack or its error)."""
    await peer.send({"type": "notes.update", "id": id_, "board": board, "update": b64(update)})
    while True:
        reply = await peer.next()
        if reply.get("re") == id_ and reply["type"] in ("ack", "error"):
            return reply


async def two_on_plan(server: CollabServer) -> tuple[Peer, Peer]:
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    await create_board(alice, "plan")
    for peer in (alice, bob):
        await join_board(peer, "plan")
    return alice, bob


async def test_open_update_fan_out_ack_and_a_late_joiner_gets_only_what_it_lacks(
    server: CollabServer,
) -> None:
    alice, bob = await two_on_plan(server)
    state = await open_notes(alice, "plan")
    assert base64.b64decode(state["update"]) == EMPTY_UPDATE
    assert state["carets"] == []
    await open_notes(bob, "plan")

    doc, text = replica(1)
    text.insert(0, "hello")
    first = doc.get_update()
    assert await send_update(alice, "plan", first, "u1") == {"type": "ack", "re": "u1"}
    got = await bob.next("notes.updated")
    assert got == {"type": "notes.updated", "board": "plan", "update": b64(first), "by": "alice"}
    assert not [m for m in alice.log if m["type"] == "notes.updated"]  # not echoed back

    # A joiner that already has "hello" is sent only the later " world".
    old_sv = doc.get_state()
    text.insert(5, " world")
    await send_update(alice, "plan", doc.get_update(old_sv), "u2")
    carol = await Peer.join(server.url, token("carol", "core"))
    await join_board(carol, "plan")
    mine, mine_text = replica(3)
    mine.apply_update(first)
    state = await open_notes(carol, "plan", mine)
    delta = base64.b64decode(state["update"])
    assert len(delta) < len(doc.get_update())
    mine.apply_update(delta)
    assert str(mine_text) == "hello world"
    # The server's state vector tells the joiner what to send: its own offline text.
    server_sv = base64.b64decode(state["sv"])
    mine_text.insert(0, "> ")
    assert await send_update(carol, "plan", mine.get_update(server_sv), "c1") == {
        "type": "ack",
        "re": "c1",
    }
    theirs = await bob.next("notes.updated", by="carol")
    bob_doc, bob_text = replica(2)
    bob_doc.apply_update(doc.get_update())
    bob_doc.apply_update(base64.b64decode(theirs["update"]))
    assert str(bob_text) == "> hello world"


async def test_carets_are_relayed_in_windows_without_echo_and_cleared_on_close(
    server: CollabServer,
) -> None:
    alice, bob = await two_on_plan(server)
    await open_notes(alice, "plan")
    await open_notes(bob, "plan")
    caret = {"type": "notes.caret", "board": "plan", "anchor": "AAcBAA==", "head": "AAcCAA=="}
    await alice.send(caret)
    got = await bob.next("notes.carets")
    assert got["carets"] == [{"user": "alice", "anchor": "AAcBAA==", "head": "AAcCAA=="}]
    # A caret open before a later joiner opens comes in its `notes.state`.
    carol = await Peer.join(server.url, token("carol", "core"))
    await join_board(carol, "plan")
    state = await open_notes(carol, "plan")
    assert state["carets"] == got["carets"]
    await alice.send({"type": "notes.close", "board": "plan"})
    cleared = await bob.next("notes.carets")
    assert cleared["carets"] == [{"user": "alice"}]
    assert not [m for m in alice.log if m["type"] == "notes.carets"]
    # Leaving the board clears too.
    await bob.send({"type": "notes.caret", "board": "plan", "anchor": None, "head": "AAcBAA=="})
    await carol.next("notes.carets", carets=[{"user": "bob", "head": "AAcBAA=="}])
    await bob.send({"type": "board.leave", "board": "plan", "id": "bye"})
    await carol.next("notes.carets", carets=[{"user": "bob"}])


def _bad_updates() -> list[tuple[str, Any, str, str]]:
    doc, text = replica(5)
    text.insert(0, "bell \x07 here")
    control = doc.get_update()
    return [
        ("not base64", "%%%", "bad_request", "update: "),
        ("bad padding", "AAA", "bad_request", "update: not valid base64"),
        ("malformed", b64(b"\x01\x05\x07"), "bad_request", "update: update ends"),
        ("control", b64(control), "bad_request", "control character U+0007"),
    ]


@pytest.mark.parametrize(("case", "update", "code", "says"), _bad_updates())
async def test_a_bad_update_is_refused_with_its_code_and_changes_nothing(
    server: CollabServer, case: str, update: Any, code: str, says: str
) -> None:
    alice, bob = await two_on_plan(server)
    await open_notes(alice, "plan")
    await open_notes(bob, "plan")
    await alice.send({"type": "notes.update", "id": "bad", "board": "plan", "update": update})
    error = await alice.next("error", re="bad")
    assert error["code"] == code, case
    assert says in error["message"], error["message"]
    carol = await Peer.join(server.url, token("carol", "core"))
    await join_board(carol, "plan")
    state = await open_notes(carol, "plan")
    assert base64.b64decode(state["update"]) == EMPTY_UPDATE
    assert not [m for m in bob.log if m["type"] == "notes.updated"]


async def test_oversize_full_not_joined_not_opened_and_bad_sv_are_refused(
    start_server: StartServer,
) -> None:
    server = await start_server(notes_max_bytes=1_000, notes_update_max_bytes=600)
    assert server.limits.notes_max_bytes == 1_000
    alice = await Peer.join(server.url, token("alice", "core"))
    assert alice.welcome["limits"]["notes_update_max_bytes"] == 600
    await create_board(alice, "plan")
    doc, text = replica(1)
    text.insert(0, "x" * 700)
    whole = doc.get_update()

    # Not joined: as for every other board request.
    await alice.send({"type": "notes.open", "id": "o", "board": "plan", "sv": "AA=="})
    assert (await alice.next("error", re="o"))["code"] == "forbidden"
    await join_board(alice, "plan")
    # Joined but not opened.
    reply = await send_update(alice, "plan", whole, "early")
    assert reply["code"] == "forbidden"
    assert "notes.open" in reply["message"]
    await alice.send({"type": "notes.open", "id": "sv", "board": "plan", "sv": b64(b"\xff\xff")})
    assert (await alice.next("error", re="sv"))["code"] == "bad_request"
    await open_notes(alice, "plan")

    reply = await send_update(alice, "plan", whole, "big")
    assert reply["code"] == "too_large"
    assert "at most 600" in reply["message"]
    pieces = split_update(whole, 600)
    assert len(pieces) == 2
    for n, piece in enumerate(pieces):
        assert (await send_update(alice, "plan", piece, f"p{n}"))["type"] == "ack"
    more_sv = doc.get_state()
    text.insert(0, "y" * 400)
    reply = await send_update(alice, "plan", doc.get_update(more_sv), "full")
    assert reply["code"] == "quota_exceeded"
    assert "1000 bytes" in reply["message"]
    # Sending again what the server holds (a re-sync after a reconnect) adds nothing.
    assert (await send_update(alice, "plan", pieces[0], "again"))["type"] == "ack"


async def test_a_notes_update_over_the_rate_is_refused_rate_limited(
    start_server: StartServer,
) -> None:
    server = await start_server(rate_per_s=20, burst=20, flood_close_after_s=30)
    alice = await Peer.join(server.url, token("alice", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    await open_notes(alice, "plan")
    doc, text = replica(1)
    for n in range(40):
        before = doc.get_state()
        text.insert(n, "k")
        update = b64(doc.get_update(before))
        await alice.send({"type": "notes.update", "id": f"k{n}", "board": "plan", "update": update})
    error = await alice.next("error", code="rate_limited")
    assert error["re"].startswith("k")


@asynccontextmanager
async def alice_and_bob_in_plans_notes(
    server: CollabServer,
) -> AsyncIterator[tuple[CollabClient, SharedNotes, SharedNotes]]:
    """Bob's library client, and the notes of board `plan` (alice made it) open for alice
    and for bob."""
    async with (
        CollabClient(server.url, token=token("alice", "core")) as alice,
        CollabClient(server.url, token=token("bob", "core")) as bob,
    ):
        await alice.create_board("Plan", 8, 4, board="plan")
        yield bob, await alice.open_notes("plan"), await bob.open_notes("plan")


async def test_client_library_syncs_edits_carets_and_events(server: CollabServer) -> None:
    async with alice_and_bob_in_plans_notes(server) as (bob, a, b):
        changes: list[NotesChanged] = []
        bob.on(NotesChanged, changes.append)
        caret_events: list[NotesCaretsChanged] = []
        bob.on(NotesCaretsChanged, caret_events.append)
        a.insert(0, "naïve 😀 ")
        b.insert(0, "ok")
        await eventually(lambda: str(a.text) == str(b.text) and len(str(a.text)) == 10)
        assert NotesChanged("plan", "alice", remote=True) in changes
        assert NotesChanged("plan", "bob", remote=False) in changes
        await eventually(lambda: a.unacked == 0 and b.unacked == 0)
        # Character indexes, though pycrdt counts UTF-8 bytes.
        a.set_caret(3, 8)
        await eventually(lambda: b.carets().get("alice") is not None)
        assert b.carets()["alice"] == (3, 8)
        assert caret_events
        # Bob types before alice's caret: it moves with the text.
        b.insert(0, ">>")
        await eventually(lambda: b.carets()["alice"] == (5, 10))
        # A paste far over one update's limit goes out in pieces and arrives whole.
        a.insert(len(str(a.text)), "line of notes\n" * 5_000)
        await eventually(lambda: str(b.text) == str(a.text), timeout=10)
        await eventually(lambda: a.unacked == 0)
        await a.close()
        await eventually(lambda: "alice" not in b.carets())
        with pytest.raises(ClientError) as refused:
            await bob.open_notes("nope")
        assert refused.value.code == "not_found"


async def test_notes_sync_when_the_data_dir_cannot_keep_them(
    server: CollabServer, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "alice" / "outbox.sqlite3", "alice-key")
    (tmp_path / "alice" / "notes.sqlite3").mkdir()  # no file can be made there
    failures: list[OutboxFailed] = []
    async with CollabClient(server.url, token=token("alice", "core"), outbox=outbox) as alice:
        alice.on(OutboxFailed, failures.append)
        await alice.create_board("Plan", 4, 4, board="plan")
        notes = await alice.open_notes("plan")
        notes.insert(0, "still synced")
        await eventually(lambda: notes.unacked == 0 and notes.synced)
        carol = await Peer.join(server.url, token("carol", "core"))
        await join_board(carol, "plan")
        state = await open_notes(carol, "plan")
        copy, copy_text = replica(9)
        copy.apply_update(base64.b64decode(state["update"]))
        assert str(copy_text) == "still synced"
    assert len(failures) == 1
    assert "cannot keep the notes on disk" in failures[0].message


async def test_updates_that_wait_for_a_missing_one_count_against_the_cap(
    start_server: StartServer,
) -> None:
    server = await start_server(notes_max_bytes=1_000)
    alice = await Peer.join(server.url, token("alice", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    await open_notes(alice, "plan")
    doc, text = replica(1)
    text.insert(0, "never sent")  # what every later update builds on
    for n in range(5):
        before = doc.get_state()
        text.insert(len(text), "w" * 180)
        reply = await send_update(alice, "plan", doc.get_update(before), f"w{n}")
        assert reply["type"] == "ack"  # stored, held back: nothing to build on yet
    before = doc.get_state()
    text.insert(len(text), "w" * 150)
    reply = await send_update(alice, "plan", doc.get_update(before), "over")
    assert reply["code"] == "quota_exceeded"
    live = server.notes.get("core", "plan")
    assert live is not None
    assert str(live.text) == ""
    assert len(live.queue.held) == 5


async def test_a_caret_anywhere_is_sent_or_left_out_never_fatal(server: CollabServer) -> None:
    """Yrs panics for some positions (the end, after multi-byte text two people typed):
    every index of such a text gives a caret or none, and the other side places every
    caret it gets within the text; in ASCII text exactly where it was set."""
    async with alice_and_bob_in_plans_notes(server) as (_, a, b):
        a.set_caret(0, 0)  # an empty text
        a.insert(0, "plain text")
        await eventually(lambda: str(b.text) == "plain text")
        for index in range(len("plain text") + 1):
            a.set_caret(index, index)
            await eventually(lambda i=index: b.carets().get("alice") == (i, i))  # type: ignore[misc]
        b.insert(0, "€€")
        a.insert(len(str(a.text)), " é日😀")
        await eventually(lambda: str(a.text) == str(b.text) and len(str(a.text)) == 16)
        for index in range(len(str(a.text)) + 1):
            a.set_caret(index, len(str(a.text)) - index)
            for anchor, head in b.carets().values():
                assert 0 <= anchor <= len(str(b.text))
                assert 0 <= head <= len(str(b.text))

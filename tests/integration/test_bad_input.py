"""Every bad input gets its documented error or close code, and the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from server.app import CollabServer
from server.config import ServerConfig
from tests.conftest import SECRET, StartServer, token
from tests.support.board import create_board, join_board
from tests.support.peer import Peer
from tui_collab.protocol import printable

ESCAPES = ["\x1b[31mred", "\x1b]0;pwned\x07", "\x9b2J", "nul\x00byte", "del\x7f", "\x85next"]


@pytest.fixture
async def on_board(server: CollabServer) -> tuple[Peer, Peer]:
    """Alice on board `plan` (10x10), and Bob watching it."""
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    await create_board(alice, "plan")
    await join_board(alice, "plan")
    await join_board(bob, "plan")
    return alice, bob


BAD_FRAMES: list[tuple[str, str | bytes]] = [
    ("not json", "hello there"),
    ("truncated json", '{"type": "cursor.move", "board": '),
    ("json array", "[1, 2, 3]"),
    ("json string", '"cursor.move"'),
    ("json null", "null"),
    ("binary frame", b'{"type": "presence.query"}'),
    ("no type", '{"board": "plan"}'),
    ("unknown type", '{"type": "board.destroy", "board": "plan"}'),
    ("type not a string", '{"type": 7}'),
    ("missing field", '{"type": "cursor.move", "board": "plan", "x": 1}'),
    ("string for int", '{"type": "cursor.move", "board": "plan", "x": "1", "y": 1}'),
    ("float for int", '{"type": "cursor.move", "board": "plan", "x": 1.0, "y": 1}'),
    ("bool for int", '{"type": "cursor.move", "board": "plan", "x": true, "y": 1}'),
    ("negative x", '{"type": "cursor.move", "board": "plan", "x": -1, "y": 1}'),
    ("huge int", '{"type": "cursor.move", "board": "plan", "x": 1' + "0" * 400 + ', "y": 1}'),
    (
        "huge clock",
        '{"type": "cell.set", "board": "plan", "x": 1, "y": 1, "value": "v",'
        ' "op": "o", "clock": 99999999999999999999999999}',
    ),
    (
        "zero clock",
        '{"type": "cell.set", "board": "plan", "x": 1, "y": 1, "value": "v",'
        ' "op": "o", "clock": 0}',
    ),
    ("deep nesting", '{"type": "presence.set", "activity": ' + "[" * 5000 + "]" * 5000 + "}"),
    ("bad status", '{"type": "presence.set", "status": "invisible"}'),
    ("bad activity kind", '{"type": "presence.set", "activity": {"kind": "hacking"}}'),
    (
        "long detail",
        json.dumps({"type": "presence.set", "activity": {"kind": "editing", "detail": "d" * 81}}),
    ),
    (
        "long value",
        json.dumps(
            {
                "type": "cell.set",
                "board": "plan",
                "x": 1,
                "y": 1,
                "value": "v" * 257,
                "op": "o",
                "clock": 1,
            }
        ),
    ),
    (
        "long op",
        json.dumps(
            {
                "type": "cell.set",
                "board": "plan",
                "x": 1,
                "y": 1,
                "value": "v",
                "op": "o" * 65,
                "clock": 1,
            }
        ),
    ),
    ("board id with spaces", '{"type": "board.join", "board": "my plan"}'),
    ("huge board", '{"type": "board.create", "title": "t", "width": 100000, "height": 5}'),
    (
        "lone surrogate",
        '{"type": "cell.set", "board": "plan", "x": 1, "y": 1,'
        ' "value": "\\ud800", "op": "o", "clock": 1}',
    ),
]
BAD_FRAMES += [
    (
        f"control chars in value {text!r}",
        json.dumps(
            {
                "type": "cell.set",
                "board": "plan",
                "x": 1,
                "y": 1,
                "value": text,
                "op": "o",
                "clock": 1,
            }
        ),
    )
    for text in ESCAPES
]
BAD_FRAMES += [
    (
        f"control chars in detail {text!r}",
        json.dumps({"type": "presence.set", "activity": {"kind": "editing", "detail": text}}),
    )
    for text in ESCAPES
]
BAD_FRAMES += [
    (
        f"control chars in title {text!r}",
        json.dumps({"type": "board.create", "title": text, "width": 3, "height": 3}),
    )
    for text in ESCAPES
]


@pytest.mark.parametrize(("case", "frame"), BAD_FRAMES, ids=[c for c, _ in BAD_FRAMES])
async def test_bad_frame_is_answered_with_bad_request(
    on_board: tuple[Peer, Peer], case: str, frame: str | bytes
) -> None:
    alice, bob = on_board
    await alice.send_raw(frame)
    error = await alice.next("error")
    assert error["code"] == "bad_request", error
    assert printable(error["message"]) == error["message"], error
    # Nothing reached the teammate, and the connection still works.
    await alice.send({"type": "cursor.move", "board": "plan", "x": 9, "y": 9})
    assert (await bob.next("cursors"))["cursors"] == [{"user": "alice", "x": 9, "y": 9}]
    assert [
        m["type"]
        for m in bob.log
        if m["type"]
        not in (
            "cursors",
            "participant.joined",
            "participants",
            "welcome",
            "presence",
            "presence.batch",
            "board.created",
            "board.state",
        )
    ] == []


async def test_error_cites_the_request_id(on_board: tuple[Peer, Peer]) -> None:
    alice, _ = on_board
    await alice.send({"type": "cursor.move", "board": "plan", "x": "nope", "y": 1, "id": "r-7"})
    error = await alice.next("error")
    assert (error["code"], error["re"]) == ("bad_request", "r-7")
    assert error["message"].startswith("x:")


async def test_cell_set_errors_cite_the_op(on_board: tuple[Peer, Peer]) -> None:
    alice, _ = on_board
    await alice.send(
        {
            "type": "cell.set",
            "board": "plan",
            "x": 1,
            "y": 1,
            "value": "\x1b[2J",
            "op": "op-9",
            "clock": 1,
            "id": "ignored",
        }
    )
    error = await alice.next("error")
    assert (error["code"], error["re"]) == ("bad_request", "op-9")


async def test_cell_outside_the_board_changes_nothing(on_board: tuple[Peer, Peer]) -> None:
    alice, bob = on_board
    for x, y in [(10, 0), (0, 10), (255, 4095)]:
        await alice.send(
            {
                "type": "cell.set",
                "board": "plan",
                "x": x,
                "y": y,
                "value": "v",
                "op": f"o-{x}-{y}",
                "clock": 1,
            }
        )
        error = await alice.next("error", re=f"o-{x}-{y}")
        assert error["code"] == "bad_request"
        assert "outside" in error["message"]
    await alice.send({"type": "cursor.move", "board": "plan", "x": 10, "y": 0, "id": "c"})
    assert (await alice.next("error", re="c"))["code"] == "bad_request"
    await alice.send(
        {"type": "typing", "board": "plan", "x": 0, "y": 10, "active": True, "id": "t"}
    )
    assert (await alice.next("error", re="t"))["code"] == "bad_request"
    assert [m for m in bob.log if m["type"] in ("cell.changed", "cursors", "typing")] == []


async def test_clock_beyond_the_bound_is_refused(on_board: tuple[Peer, Peer]) -> None:
    alice, bob = on_board
    await alice.send(
        {
            "type": "cell.set",
            "board": "plan",
            "x": 1,
            "y": 1,
            "value": "v",
            "op": "far",
            "clock": 100_001,
        }
    )
    assert (await alice.next("error", re="far"))["code"] == "bad_request"
    await alice.send(
        {
            "type": "cell.set",
            "board": "plan",
            "x": 1,
            "y": 1,
            "value": "v",
            "op": "near",
            "clock": 100_000,
        }
    )
    assert (await alice.next("ack", re="near"))["applied"] is True
    changed = await bob.next("cell.changed")
    assert changed["clock"] == 100_000


async def test_other_teams_board_is_exactly_like_a_missing_one(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    await create_board(alice, "plan")
    eve = await Peer.join(server.url, token("eve", "rivals"))
    answers: dict[object, Any] = {}
    for board in ("plan", "no-such-board"):
        for message in (
            {"type": "board.join", "board": board},
            {"type": "board.leave", "board": board},
            {"type": "board.update", "board": board, "title": "mine"},
            {"type": "cursor.move", "board": board, "x": 1, "y": 1},
            {"type": "typing", "board": board, "x": 1, "y": 1, "active": True},
        ):
            await eve.send({**message, "id": "q"})
            error = await eve.next("error", re="q")
            answers.setdefault(message["type"], []).append(
                (error["code"], error["message"].replace(board, "B"))
            )
        await eve.send(
            {
                "type": "cell.set",
                "board": board,
                "x": 1,
                "y": 1,
                "value": "v",
                "op": "o1",
                "clock": 1,
            }
        )
        error = await eve.next("error", re="o1")
        answers.setdefault("cell.set", []).append(
            (error["code"], error["message"].replace(board, "B"))
        )
    for kind, (existing, missing) in answers.items():
        assert existing == missing, kind
        assert existing[0] == "not_found", kind


async def test_own_board_not_joined_is_forbidden(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    await create_board(alice, "plan")
    for message in (
        {"type": "cursor.move", "board": "plan", "x": 1, "y": 1, "id": "m"},
        {"type": "typing", "board": "plan", "x": 1, "y": 1, "active": True, "id": "m"},
        {"type": "board.leave", "board": "plan", "id": "m"},
    ):
        await alice.send(message)
        assert (await alice.next("error", re="m"))["code"] == "forbidden"
    await alice.send(
        {"type": "cell.set", "board": "plan", "x": 1, "y": 1, "value": "v", "op": "o1", "clock": 1}
    )
    assert (await alice.next("error", re="o1"))["code"] == "forbidden"


async def test_repeated_malformed_input_closes_1008(server: CollabServer) -> None:
    alice = await Peer.join(server.url, token("alice", "core"))
    bob = await Peer.join(server.url, token("bob", "core"))
    for _ in range(server.config.malformed_close_after):
        await alice.send_raw("garbage")
    assert await alice.closed() == 1008
    await bob.send({"type": "presence.query", "id": "q"})
    await bob.next("presence.snapshot", re="q")


async def test_frame_over_64_kib_closes_1009(on_board: tuple[Peer, Peer]) -> None:
    alice, bob = on_board
    await alice.send_raw(json.dumps({"type": "presence.query", "pad": "x" * 70_000}))
    assert await alice.closed() == 1009
    await bob.send({"type": "presence.query", "id": "q"})
    await bob.next("presence.snapshot", re="q")


# --- handshake ---------------------------------------------------------------------


async def test_no_hello_within_the_deadline_closes_4001(start_server: StartServer) -> None:
    server = await start_server(hello_timeout_s=0.3)
    peer = await Peer.open(server.url)
    assert await peer.closed(timeout=3) == 4001


async def test_message_before_hello_closes_4001(server: CollabServer) -> None:
    peer = await Peer.open(server.url)
    await peer.send({"type": "presence.query", "id": "early"})
    error = await peer.next("error")
    assert (error["code"], error["re"]) == ("unauthorized", "early")
    assert await peer.closed() == 4001


async def test_malformed_hello_closes_4001(server: CollabServer) -> None:
    peer = await Peer.open(server.url)
    await peer.send_raw("{not json")
    assert (await peer.next("error"))["code"] == "bad_request"
    assert await peer.closed() == 4001


def _forged_tokens() -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "alice", "team": "core", "exp": now + 600}
    no_key: Any = None  # alg "none" takes no key; PyJWT's types do not say so
    unsigned = jwt.encode(claims, key=no_key, algorithm="none")
    return {
        "garbage": "not-a-jwt",
        "wrong secret": jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256"),
        "alg none": unsigned,
        "alg none, signature kept": unsigned + "c2lnbmF0dXJl",
        "expired": jwt.encode({**claims, "exp": now - 5}, SECRET, algorithm="HS256"),
        "no exp": jwt.encode({"sub": "alice", "team": "core"}, SECRET, algorithm="HS256"),
        "no team": jwt.encode({"sub": "alice", "exp": now + 600}, SECRET, algorithm="HS256"),
        "bad user id": jwt.encode({**claims, "sub": "al ice\x1b"}, SECRET, algorithm="HS256"),
        "HS512": jwt.encode(claims, SECRET, algorithm="HS512"),
        "tampered": token("alice", "core")[:-4] + "AAAA",
    }


FORGED = _forged_tokens()


@pytest.mark.parametrize("kind", list(FORGED))
async def test_bad_token_in_hello_closes_4001(server: CollabServer, kind: str) -> None:
    peer = await Peer.open(server.url)
    await peer.send({"type": "hello", "v": 1, "token": FORGED[kind]})
    error = await peer.next("error")
    assert error["code"] == "unauthorized"
    assert await peer.closed() == 4001


@pytest.mark.parametrize("kind", list(FORGED))
async def test_bad_token_in_header_is_refused_before_upgrade(
    server: CollabServer, kind: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url, additional_headers={"Authorization": f"Bearer {FORGED[kind]}"})
    assert refused.value.response.status_code == 401


async def test_good_token_in_header_needs_no_token_in_hello(server: CollabServer) -> None:
    peer = await Peer.join(server.url, token("alice", "core", "Alice"), header=True)
    assert peer.welcome["user"] == {"id": "alice", "name": "Alice"}
    await peer.close()


async def test_missing_token_closes_4001(server: CollabServer) -> None:
    peer = await Peer.open(server.url)
    await peer.send({"type": "hello", "v": 1, "user": "alice", "team": "core"})
    assert (await peer.next("error"))["code"] == "unauthorized"
    assert await peer.closed() == 4001


async def test_unsupported_version_closes_4002(server: CollabServer) -> None:
    peer = await Peer.open(server.url)
    await peer.send({"type": "hello", "v": 2, "token": token("alice", "core"), "id": "h"})
    error = await peer.next("error")
    assert (error["code"], error["re"]) == ("unsupported_version", "h")
    assert await peer.closed() == 4002


async def test_second_hello_is_a_bad_request(server: CollabServer) -> None:
    peer = await Peer.join(server.url, token("alice", "core"))
    await peer.send({"type": "hello", "v": 1, "token": token("bob", "core"), "id": "h2"})
    assert (await peer.next("error", re="h2"))["code"] == "bad_request"
    await peer.send({"type": "presence.query", "id": "q"})
    members = (await peer.next("presence.snapshot", re="q"))["members"]
    assert [m["user"] for m in members] == ["alice"]


# --- open mode and origins ------------------------------------------------------------


def test_open_auth_on_a_public_host_is_refused(tmp_path: Any) -> None:
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            ServerConfig(data_dir=tmp_path, host=host, auth="open")
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        ServerConfig(data_dir=tmp_path, host=host, auth="open")


async def test_open_mode_refuses_browser_origins(start_server: StartServer) -> None:
    server = await start_server(auth="open", secret=None, allowed_origins=("https://team.example",))
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url, origin="https://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    allowed = await connect(server.url, origin="https://team.example")  # type: ignore[arg-type]
    await allowed.close()
    peer = await Peer.join(server.url, user="alice", team="core", name="Alice")
    assert peer.welcome["user"] == {"id": "alice", "name": "Alice"}
    await peer.close()


async def test_open_mode_hello_without_user_closes_4001(start_server: StartServer) -> None:
    server = await start_server(auth="open", secret=None)
    peer = await Peer.open(server.url)
    await peer.send({"type": "hello", "v": 1, "team": "core"})
    assert (await peer.next("error"))["code"] == "unauthorized"
    assert await peer.closed() == 4001


async def test_token_mode_accepts_any_origin_unless_narrowed(start_server: StartServer) -> None:
    server = await start_server()
    ws = await connect(server.url, origin="https://anywhere.example")  # type: ignore[arg-type]
    await ws.close()
    narrowed = await start_server(allowed_origins=("https://team.example",))
    with pytest.raises(InvalidStatus):
        await connect(narrowed.url, origin="https://evil.example")  # type: ignore[arg-type]


async def test_bad_clients_do_not_stop_good_ones(server: CollabServer) -> None:
    good = await Peer.join(server.url, token("good", "core"))
    await create_board(good, "plan")
    await join_board(good, "plan")
    bad = [await Peer.open(server.url) for _ in range(5)]
    for n, peer in enumerate(bad):
        frames: list[str | bytes] = ["x", b"\x00", "[]", '{"type":"hello","v":9}', "{}"]
        await peer.send_raw(frames[n])
    await asyncio.gather(*(p.closed() for p in bad))
    await good.send({"type": "cursor.move", "board": "plan", "x": 1, "y": 1})
    assert (await good.next("cursors"))["cursors"] == [{"user": "good", "x": 1, "y": 1}]

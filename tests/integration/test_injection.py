"""Terminal escapes never cross the wire: whatever a hostile client puts in a name, a
title, an activity or a cell, no other client receives a control character.

A terminal interprets ESC (CSI colours, OSC 8 links, OSC 52 clipboard writes), the
8-bit C1 forms (0x9b is CSI by itself) and BEL. The observer below records every
frame it gets, raw, and the test looks for any of them in any string.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jwt
import pytest

from server.app import CollabServer
from tests.conftest import SECRET, StartServer, token
from tests.support.board import create_board, join_board
from tests.support.peer import Peer

PAYLOADS = [
    "\x1b[31mred\x1b[0m",
    "\x1b]52;c;cm0gLXJmIH4=\x07",  # OSC 52: write the victim's clipboard
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x9b2J",  # C1 CSI: clear screen without an ESC
    "\x1bP+q\x1b\\",  # DCS request
    "bell\x07",
    "del\x7f",
    "cr\roverwrite",
    "nul\x00",
    "\x85next-line",
    # Visual spoofing: text that reads other than it is, or looks like another name.
    "\u202eexe.txt",  # right-to-left override
    "\u2066isolate\u2069",
    "\u200fmark",
    "zero\u200bwidth",
    "word\u2060joiner",
    "\ufeffbom",
    "line\u2028separator",
    "paragraph\u2029separator",
]
CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff]"
)
"""What no other client may receive: control characters, bidi controls, zero-width
characters other than the joiners a cell may hold, line and paragraph separators."""


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [key, *strings(item)]]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def assert_clean(peer: Peer) -> None:
    """Neither the raw frames nor any string inside them holds a control character."""
    assert peer.raw
    for frame in peer.raw:
        assert isinstance(frame, str)
        assert not CONTROL.search(frame), f"raw control character on the wire: {frame!r}"
        for text in strings(json.loads(frame)):
            assert not CONTROL.search(text), f"control character in {frame!r}"


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_escapes_in_every_text_field_never_reach_another_client(
    start_server: StartServer, payload: str
) -> None:
    server = await start_server()
    watcher = await Peer.join(server.url, token("watcher", "core"))
    await create_board(watcher, "plan")
    await join_board(watcher, "plan")

    attacker = await Peer.join(server.url, token("mallory", "core"))
    await join_board(attacker, "plan")
    attempts: list[dict[str, Any]] = [
        {"type": "presence.set", "id": "p", "activity": {"kind": "editing", "detail": payload}},
        {
            "type": "board.create",
            "id": "c",
            "board": "evil",
            "title": payload,
            "width": 3,
            "height": 3,
        },
        {"type": "board.update", "id": "u", "board": "plan", "title": payload},
        {
            "type": "cell.set",
            "board": "plan",
            "x": 0,
            "y": 0,
            "value": payload,
            "op": "o1",
            "clock": 1,
        },
        {
            "type": "board.create",
            "id": payload,
            "board": "b",
            "title": "t",
            "width": 3,
            "height": 3,
        },
        {"type": "board.join", "id": "j", "board": payload},
    ]
    for attempt in attempts:
        await attacker.send(attempt)
        error = await attacker.next("error")
        assert error["code"] == "bad_request"
        assert not CONTROL.search(error["message"])
    # The same bytes escaped in JSON (\u001b) are decoded, then refused alike.
    await attacker.send_raw(
        '{"type":"presence.set","id":"q","activity":{"kind":"editing","detail":'
        + json.dumps(payload)
        + "}}"
    )
    assert (await attacker.next("error"))["code"] == "bad_request"

    # A hello name with escapes is refused too (open mode, and inside a signed token).
    forged_name = jwt.encode(
        {"sub": "eve", "team": "core", "name": payload, "exp": 4_000_000_000},
        SECRET,
        algorithm="HS256",
    )
    eve = await Peer.join_raw(server.url, {"type": "hello", "v": 1, "token": forged_name})
    assert await eve.closed() == 4001

    # Printable text on the same paths does arrive: the watcher is really listening.
    await attacker.send(
        {
            "type": "cell.set",
            "board": "plan",
            "x": 0,
            "y": 0,
            "value": "ok ✓ 漢字 \U0001f469\u200d\U0001f4bb",
            "op": "o2",
            "clock": 2,
        }
    )
    assert (await watcher.next("cell.changed", op=None, clock=2))[
        "value"
    ] == "ok ✓ 漢字 \U0001f469\u200d\U0001f4bb"
    await watcher.send({"type": "presence.query", "id": "sync"})
    await watcher.next("presence.snapshot", re="sync")
    assert_clean(watcher)
    await attacker.close()
    await watcher.close()


async def test_escapes_in_an_open_mode_hello_name_are_refused(tmp_path: Any) -> None:
    from tests.conftest import fast_config

    async with CollabServer(fast_config(tmp_path / "data", auth="open", secret=None)) as server:
        watcher = await Peer.join(server.url, user="watcher", team="core")
        # A name may not hold the joiners either (a cell value may).
        for payload in [*PAYLOADS, "wat\u200dcher", "wat\u200ccher"]:
            peer = await Peer.join_raw(
                server.url,
                {"type": "hello", "v": 1, "user": "eve", "team": "core", "name": payload},
            )
            assert await peer.closed() in (4001, 1008)
        await watcher.send({"type": "presence.query", "id": "sync"})
        await watcher.next("presence.snapshot", re="sync")
        assert_clean(watcher)
        assert all(m.get("user") != "eve" for m in watcher.log)
        await watcher.close()

"""Waiting for one user's presence or participant change, whether it came alone or in a
window's batch (`presence.batch`, `participants`)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.peer import Message, Peer


def entries(message: Message) -> list[tuple[str, Message]]:
    """(kind, entry) for each change a frame carries: kind is `presence`, `joined` or
    `left`; a frame of another type carries none."""
    kind = message.get("type")
    if kind == "presence":
        return [("presence", message)]
    if kind == "presence.batch":
        return [("presence", m) for m in message["members"]]
    if kind == "participant.joined":
        return [("joined", message)]
    if kind == "participant.left":
        return [("left", message)]
    if kind == "participants":
        return [("left", p) for p in message["left"]] + [("joined", p) for p in message["joined"]]
    return []


async def next_entry(peer: Peer, kind: str, timeout: float = 3.0, **where: Any) -> Message:
    """The next change of `kind` whose fields equal `where`, alone or in a batch."""
    async with asyncio.timeout(timeout):
        while True:
            message = await peer.next(None, timeout=timeout)
            for found, entry in entries(message):
                if found == kind and all(entry.get(k) == v for k, v in where.items()):
                    return entry


def roster_seen(peer: Peer, board: str) -> dict[str, str]:
    """user → colour on `board` as `peer` holds it: its last `board.state` of the board
    (part 0), then every change after it, each batch's `left` before its `joined`."""
    roster: dict[str, str] = {}
    for message in peer.log:
        if message.get("type") == "board.state" and message["board"]["id"] == board:
            if message.get("part", 0) == 0:
                roster = {p["user"]: p["color"] for p in message["participants"]}
            continue
        if message.get("board") != board:
            continue
        for kind, entry in entries(message):
            if kind == "left":
                roster.pop(entry["user"], None)
            elif kind == "joined":
                roster[entry["user"]] = entry["color"]
    return roster


def presence_seen(peer: Peer) -> dict[str, Message]:
    """user → presence as `peer` holds it: its `welcome.members`, then every change."""
    members = {m["user"]: m for m in peer.welcome.get("members", [])}
    for message in peer.log:
        for kind, entry in entries(message):
            if kind == "presence":
                members[entry["user"]] = entry
    return members

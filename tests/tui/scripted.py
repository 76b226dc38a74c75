"""A real WebSocket server that answers with scripted frames, for pixel-stable snapshots.

The app and its CollabClient run unchanged over a real socket; only the server's answers
are fixed (names, colours, timestamps), so every run paints the same screen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from tui_collab import protocol as p

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)

TEAM: list[tuple[str, str, p.PresenceStatus, p.Activity | None]] = [
    ("alice", "Alice Ng", "online", p.Activity(kind="viewing", board="plan")),
    ("ada", "Ada Lovelace", "online", p.Activity(kind="editing", board="plan", detail="budget")),
    ("grace", "Grace Hopper", "busy", p.Activity(kind="reviewing", board="plan")),
    ("linus", "Linus T.", "online", p.Activity(kind="running_automation", board="ops")),
    ("margaret", "Margaret H.", "away", None),
    ("ken", "Ken T.", "offline", None),
    ("barbara", "Barbara L.", "offline", None),
]
PLAN = p.BoardMeta(id="plan", title="Q3 plan", width=12, height=30, created_by="ada", version=9)
OPS = p.BoardMeta(id="ops", title="Ops rota", width=8, height=10, created_by="linus", version=2)
PARTICIPANTS = [
    p.Participant(user="alice", name="Alice Ng", color="#e06c75"),
    p.Participant(user="ada", name="Ada Lovelace", color="#98c379"),
    p.Participant(user="grace", name="Grace Hopper", color="#e5c07b"),
    p.Participant(user="linus", name="Linus T.", color="#61afef"),
]
CELLS = [
    (0, 0, "Item"),
    (1, 0, "Owner"),
    (2, 0, "Budget"),
    (3, 0, "Status"),
    (0, 1, "Servers"),
    (1, 1, "ada"),
    (2, 1, "€ 1,200"),
    (3, 1, "done"),
    (0, 2, "Laptops"),
    (1, 2, "grace"),
    (2, 2, "€ 9,800"),
    (3, 2, "TODO"),
    (0, 3, "Training"),
    (1, 3, "linus"),
    (2, 3, "€ 450"),
]


def members() -> list[p.Presence]:
    out = []
    for n, (user, name, status, activity) in enumerate(TEAM):
        out.append(
            p.Presence(
                user=user,
                name=name,
                status=status,
                activity=activity,
                last_seen=NOW - timedelta(minutes=5 + 70 * n) if status == "offline" else None,
                connections=0 if status == "offline" else 1,
            )
        )
    return out


class ScriptedServer:
    """Answers hello and board.join from the script; `push` sends more frames later."""

    def __init__(self) -> None:
        self.received: list[p.ClientMessage] = []
        self.connections: set[ServerConnection] = set()
        self.url = ""

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections.add(ws)
        try:
            async for frame in ws:
                message = p.decode(frame)
                self.received.append(message)
                for reply in self._answer(message):
                    await ws.send(p.encode(reply))
        finally:
            self.connections.discard(ws)

    def _answer(self, message: p.ClientMessage) -> list[Any]:
        if isinstance(message, p.Hello):
            return [
                p.Welcome(
                    session="s-snapshot",
                    client_id="c-alice",
                    user=p.UserRef(id="alice", name="Alice Ng"),
                    team="core",
                    server=p.ServerInfo(node="n-1", version="0.1.0", epoch="e-1"),
                    limits=p.Limits(),
                    members=members(),
                    boards=[PLAN, OPS],
                )
            ]
        if isinstance(message, p.BoardJoin) and message.board == "plan":
            return [
                p.BoardState(
                    re=message.id,
                    board=PLAN,
                    epoch="e-1",
                    version=9,
                    complete=True,
                    cells=[
                        p.Cell(x=x, y=y, value=v, clock=n + 1, client="c-ada", by="ada")
                        for n, (x, y, v) in enumerate(CELLS)
                    ],
                    participants=PARTICIPANTS,
                    cursors=[
                        p.CursorPosition(user="ada", x=2, y=2),
                        p.CursorPosition(user="grace", x=5, y=6),
                        p.CursorPosition(user="linus", x=1, y=9),
                    ],
                )
            ]
        if message.id is not None and isinstance(message, p.PresenceSet | p.BoardLeave):
            return [p.Ack(re=message.id)]
        return []  # cell.set is never acked: the edit stays pending on screen

    async def push(self, message: Any) -> None:
        for ws in list(self.connections):
            await ws.send(p.encode(message))

    def drop_everyone(self) -> None:
        for ws in list(self.connections):
            ws.transport.abort()


@asynccontextmanager
async def scripted_server() -> AsyncIterator[ScriptedServer]:
    script = ScriptedServer()
    async with serve(script._handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        script.url = f"ws://127.0.0.1:{port}/ws"
        yield script
    await asyncio.sleep(0)

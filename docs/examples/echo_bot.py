"""A bot that watches a board and writes the upper-case of every cell anyone types
into the cell to its right. Run it against a server:

    python docs/examples/echo_bot.py ws://127.0.0.1:9001/ws "$TOKEN" plan

or against an open-mode server (`tui-collab-server serve --auth open`):

    python docs/examples/echo_bot.py ws://127.0.0.1:9001/ws --open plan
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from tui_collab.client import CollabClient
from tui_collab.events import StateChanged
from tui_collab.protocol import CellChanged


async def main(url: str, token: str | None, board: str) -> None:
    credentials = {"token": token} if token else {"user": "shouty", "team": "core"}
    async with CollabClient(url, client_id="c-shouty-bot", **credentials) as client:
        if board not in client.boards:
            await client.create_board(board.title(), 26, 50, board=board)
        mirror = await client.join(board)
        await client.set_status("online")
        client.on(StateChanged, lambda event: logging.info("connection: %s", event.state))
        print(f"watching {board!r} ({mirror.meta.width}x{mirror.meta.height}); Ctrl-C stops")

        async for event in client.events():
            if not isinstance(event, CellChanged) or event.board != board:
                continue
            if event.client == client.client_id or event.x + 1 >= mirror.meta.width:
                continue  # our own writes, or no room on the right
            shout = event.value.upper()
            if mirror.cells.value(event.x + 1, event.y) != shout:
                ack = await client.set_cell(board, event.x + 1, event.y, shout)
                print(f"({event.x + 1},{event.y}) <- {shout!r} version {ack.version}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    url, credential, board = sys.argv[1], sys.argv[2], sys.argv[3]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(url, None if credential == "--open" else credential, board))

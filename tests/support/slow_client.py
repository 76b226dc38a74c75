"""A real client in its own process, so a test can SIGSTOP it like a suspended terminal.

Usage: python -m tests.support.slow_client URL TOKEN BOARD
Prints one line per event on stdout: `joined V`, `state KIND REASON`, and, after every
rejoin, `cell X Y VALUE` for each non-empty cell of the board.
"""

from __future__ import annotations

import asyncio
import sys

from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient
from tui_collab.events import Connected, Reconnecting, StateChanged
from tui_collab.protocol import BoardState


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(url: str, token: str, board: str) -> None:
    client = CollabClient(url, token=token, backoff=Backoff(base_s=0.2, cap_s=1.0))
    client.start()
    await client.wait_connected()
    mirror = await client.join(board)
    say(f"joined {mirror.version}")

    def on_state(event: StateChanged) -> None:
        state = event.state
        if isinstance(state, Reconnecting):
            say(f"state reconnecting {state.reason}")
        elif isinstance(state, Connected):
            say("state connected -")

    def on_board(event: BoardState) -> None:
        for op in client.joined[board].cells:
            if op.value:
                say(f"cell {op.x} {op.y} {op.value}")
        say(f"synced {event.version}")

    client.on(StateChanged, on_state)
    client.on(BoardState, on_board)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))

"""A replica of a board built only from what a client received, as a real client would."""

from __future__ import annotations

from tests.support.board import cell_events
from tests.support.peer import Message
from tui_collab.cells import CellMap, CellOp


def apply_state(cells: CellMap, state: Message) -> None:
    for cell in state["cells"]:
        cells.apply(
            CellOp(
                cell["x"],
                cell["y"],
                cell["value"],
                cell["clock"],
                cell["client"],
                cell["by"],
                state["version"],
            )
        )
    cells.version = max(cells.version, state["version"])


def apply_change(cells: CellMap, change: Message) -> None:
    cells.apply(
        CellOp(
            change["x"],
            change["y"],
            change["value"],
            change["clock"],
            change["client"],
            change["by"],
            change["version"],
        )
    )


def mirror(log: list[Message], board: str) -> CellMap:
    """Replay a peer's log: every `board.state`, `cell.changed` and `cells.changed` of
    `board`, in arrival order."""
    cells = CellMap()
    for message in log:
        if message["type"] == "board.state" and message["board"]["id"] == board:
            if message["complete"]:
                cells = CellMap()
            apply_state(cells, message)
        else:
            for cell in cell_events([message]):
                if cell["board"] == board:
                    apply_change(cells, cell)
    return cells

"""Import and export of a board's cells as CSV, TSV or JSON: parsing, formatting, checks.

Pure code, no I/O and no connection: `tui-collab import` and `export` (tui_collab.cli)
read and write the files and talk to the server through `CollabClient`. Everything the
protocol would refuse is found here first, named by the file's own row and column, so an
import is refused whole before a single cell is sent.

Formats:

- **CSV** and **TSV**: one line per board row from row 1, one field per column from
  column A, up to the last row and column that hold a value (a rectangle from A1). CSV
  is RFC 4180 as Python's `csv` module writes it (fields quoted only when needed), with
  `\\n` line ends. TSV is the same with tabs and no quoting at all, as IANA's
  text/tab-separated-values has it (a cell can hold neither a tab nor a line break, so
  none is needed; a `"` is just a character). Reading accepts either line end and a
  UTF-8 byte order mark.
- **JSON**: `{"format": "tui-collab.board/1", "board", "title", "width", "height",
  "version", "cells": [{"x", "y", "cell", "value", "by", "at"}]}`, non-empty cells only,
  by row then column; `x`/`y` count from 0, `cell` is the same place as people name it
  (`B4`), `at` is the server's time of the write (ISO 8601, or null). Importing reads
  `x`, `y` and `value` of each cell and ignores the rest.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from tui_collab.cells import CellOp, cell_name, column_name
from tui_collab.protocol import MAX_CELL_CHARS, cell_value_problem

Format = Literal["csv", "tsv", "json"]
FORMATS: Final[tuple[Format, ...]] = ("csv", "tsv", "json")
JSON_FORMAT: Final = "tui-collab.board/1"
"""The `format` field of an exported JSON file."""
MAX_PROBLEMS_SHOWN: Final = 3
"""How many out-of-board cells a refusal names before it says "and N more"."""

_CELL_NAME = re.compile(r"^([A-Za-z]{1,3})([1-9][0-9]{0,6})$")


class TransferError(ValueError):
    """A file cannot be imported as it is; the message is one line for a person."""


@dataclass(frozen=True, slots=True)
class SourceCell:
    """One value from a file, with where it was in the file (for messages) and where it
    lands on the board (0-based, after `--at`)."""

    x: int
    y: int
    value: str
    where: str
    """'row 3, column 2' (CSV/TSV, 1-based) or 'cells[4]' (JSON)."""


def parse_cell_name(name: str) -> tuple[int, int]:
    """'B2' -> (1, 1): the spreadsheet name of a cell as (x, y) from 0."""
    match = _CELL_NAME.match(name.strip())
    if match is None:
        raise TransferError(f"{name!r} is not a cell name like A1 or B2")
    letters, digits = match.groups()
    x = 0
    for letter in letters.upper():
        x = x * 26 + ord(letter) - 64
    return x - 1, int(digits) - 1


def guess_format(filename: str) -> Format:
    """The format a file's extension names; CSV when it names none of ours."""
    lowered = filename.lower()
    if lowered.endswith(".json"):
        return "json"
    if lowered.endswith((".tsv", ".tab")):
        return "tsv"
    return "csv"


# --- reading ------------------------------------------------------------------------


def parse(
    text: str, fmt: Format, *, at: tuple[int, int] = (0, 0), clear_empty: bool = False
) -> list[SourceCell]:
    """The cells a file holds, placed with its first cell at `at`.

    CSV/TSV: an empty field is skipped (the board's cell keeps its value) unless
    `clear_empty`, when it clears the cell. JSON: every listed cell is written, an
    empty value clearing it. Raises `TransferError` for a file that is not the format.
    """
    text = text.removeprefix("\ufeff")
    if fmt == "json":
        return _parse_json(text, at)
    rows = _read_rows(text, fmt == "tsv")
    cells: list[SourceCell] = []
    for row_index, row in enumerate(rows):
        for column_index, value in enumerate(row):
            if value == "" and not clear_empty:
                continue
            cells.append(
                SourceCell(
                    at[0] + column_index,
                    at[1] + row_index,
                    value,
                    f"row {row_index + 1}, column {column_index + 1}",
                )
            )
    return cells


def _read_rows(text: str, tsv: bool) -> list[list[str]]:
    source = io.StringIO(text, newline="")
    try:
        if tsv:
            return list(csv.reader(source, delimiter="\t", quoting=csv.QUOTE_NONE))
        return list(csv.reader(source, strict=True))
    except csv.Error as exc:
        raise TransferError(f"not valid {'TSV' if tsv else 'CSV'}: {exc}") from None


def _parse_json(text: str, at: tuple[int, int]) -> list[SourceCell]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TransferError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    raw = document.get("cells") if isinstance(document, dict) else None
    if not isinstance(raw, list):
        raise TransferError('not a board export: JSON needs a "cells" list')
    cells: list[SourceCell] = []
    for index, entry in enumerate(raw):
        where = f"cells[{index}]"
        if not isinstance(entry, dict):
            raise TransferError(f"{where}: not an object")
        x, y, value = entry.get("x"), entry.get("y"), entry.get("value")
        if not isinstance(x, int) or not isinstance(y, int) or not _is_index(x, y):
            raise TransferError(f'{where}: "x" and "y" must be whole numbers from 0')
        if not isinstance(value, str):
            raise TransferError(f'{where}: "value" must be a string')
        cells.append(SourceCell(at[0] + x, at[1] + y, value, where))
    return cells


def _is_index(*values: int) -> bool:
    """JSON's true and false are ints to Python: not a coordinate."""
    return all(not isinstance(value, bool) and value >= 0 for value in values)


def check(
    cells: Iterable[SourceCell],
    *,
    width: int | None = None,
    height: int | None = None,
    board: str = "the board",
    max_chars: int = MAX_CELL_CHARS,
) -> None:
    """Raise `TransferError` naming the first value the protocol refuses, or every
    cell (the first few) that falls outside a `width` x `height` board.

    Values are checked first: they need no board, so a bad file is refused before
    the import even connects.
    """
    cells = list(cells)
    for cell in cells:
        problem = cell_value_problem(cell.value, max_chars)
        if problem is not None:
            raise TransferError(f"{cell.where}: {problem}")
    if width is None or height is None:
        return
    outside = [cell for cell in cells if cell.x >= width or cell.y >= height]
    if not outside:
        return
    named = "; ".join(
        f"{cell.where} would land on {cell_name(cell.x, cell.y)}"
        for cell in outside[:MAX_PROBLEMS_SHOWN]
    )
    more = len(outside) - MAX_PROBLEMS_SHOWN
    rest = f"; and {more} more" if more > 0 else ""
    raise TransferError(
        f"{len(outside)} {'cell falls' if len(outside) == 1 else 'cells fall'} outside "
        f"{board} ({width} columns A-{column_name(width - 1)}, {height} rows): {named}{rest}"
    )


# --- writing ------------------------------------------------------------------------


def grid_rows(values: Mapping[tuple[int, int], str]) -> list[list[str]]:
    """The rectangle from A1 to the last row and column holding a value, row by row."""
    filled = {key: value for key, value in values.items() if value}
    if not filled:
        return []
    width = max(x for x, _ in filled) + 1
    height = max(y for _, y in filled) + 1
    return [[filled.get((x, y), "") for x in range(width)] for y in range(height)]


def format_table(values: Mapping[tuple[int, int], str], fmt: Literal["csv", "tsv"]) -> str:
    """CSV or TSV text of the board's values (see the module doc)."""
    out = io.StringIO()
    if fmt == "tsv":
        writer = csv.writer(
            out, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, quotechar=None
        )
    else:
        writer = csv.writer(out, lineterminator="\n")
    writer.writerows(grid_rows(values))
    return out.getvalue()


def format_json(
    *, board: str, title: str, width: int, height: int, version: int, cells: Iterable[CellOp]
) -> str:
    """The JSON export (see the module doc): non-empty cells, by row then column."""
    ordered = sorted((op for op in cells if op.value), key=lambda op: (op.y, op.x))
    document = {
        "format": JSON_FORMAT,
        "board": board,
        "title": title,
        "width": width,
        "height": height,
        "version": version,
        "cells": [
            {
                "x": op.x,
                "y": op.y,
                "cell": cell_name(op.x, op.y),
                "value": op.value,
                "by": op.by,
                "at": _iso(op.at),
            }
            for op in ordered
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _iso(at_ms: int) -> str | None:
    if not at_ms:
        return None
    moment = datetime.fromtimestamp(at_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_board(
    fmt: Format,
    *,
    board: str,
    title: str,
    width: int,
    height: int,
    version: int,
    cells: Iterable[CellOp],
) -> str:
    """A board's cells in `fmt`."""
    cells = list(cells)
    if fmt == "json":
        return format_json(
            board=board, title=title, width=width, height=height, version=version, cells=cells
        )
    return format_table({(op.x, op.y): op.value for op in cells}, fmt)

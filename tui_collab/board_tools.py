"""What a person does with a board's cells beyond typing one: undo and redo, copy and
paste, clear, find, column widths, the cell inspector, import and export.

Mixed into `CollabApp` (tui_collab.app), which provides the client, the open board,
the grid and the status bar; kept apart so the app itself stays about connection,
presence, the editor and quitting. The logic that needs no screen lives in
tui_collab.undo, selection, search and transfer, each tested on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from textual import work
from textual.app import App
from textual.timer import Timer
from textual.widgets import Input

from tui_collab.cells import cell_name, column_name
from tui_collab.client import ClientError, CollabClient, NotConnected
from tui_collab.inspector import CellInspector
from tui_collab.mirror import BoardMirror
from tui_collab.protocol import MAX_COLUMN_WIDTH, MIN_COLUMN_WIDTH
from tui_collab.screens import PathScreen
from tui_collab.search import Search, find
from tui_collab.selection import Rect, parse_tsv, plan_paste, to_tsv
from tui_collab.transfer import TransferError, check, format_board, guess_format, parse
from tui_collab.undo import Change, Current, Step, UndoHistory, skipped_notice
from tui_collab.widgets.feed import ActivityFeed
from tui_collab.widgets.grid import BoardGrid
from tui_collab.widgets.status import StatusBar
from tui_collab.widgets.value_line import ValueLine
from tui_collab.words import plural

NOTE_SECONDS = 10.0
"""How long a status bar note (an undo that skipped cells, say) stays."""

# The mixin is typed as the App it is mixed into, so its calls to App methods are checked.
if TYPE_CHECKING:
    _Base: TypeAlias = App[None]
else:
    _Base = object


class BoardTools(_Base):
    """Undo/redo, clipboard, clear, find, widths, inspector, import/export (see module doc)."""

    client: CollabClient
    board_id: str
    histories: dict[str, UndoHistory]
    """This user's undo and redo steps, by board: kept across reconnects."""
    clipboard_text: str
    """What `y` copied last, for `p` (the terminal's clipboard may not be readable)."""
    search: Search | None
    _note_timer: Timer | None
    _refused: dict[str, dict[tuple[int, int], str]]

    if TYPE_CHECKING:

        @property
        def grid(self) -> BoardGrid: ...

        @property
        def feed(self) -> ActivityFeed: ...

        @property
        def status_bar(self) -> StatusBar: ...

        @property
        def max_cell_chars(self) -> int: ...

        @property
        def _own_user(self) -> str: ...

        def _name_of(self, user: str) -> str: ...

        def _now(self) -> datetime: ...

        def _clear_refused(self, board: str, x: int, y: int) -> None: ...

    def _init_tools(self) -> None:
        self.histories = {}
        self.clipboard_text = ""
        self.search = None
        self._note_timer = None

    @work(group="edits", exit_on_error=False)
    async def save_cell(self, board: str, x: int, y: int, value: str) -> None:
        """Write one cell (the editor's Enter, a restore): one `cell.set`, one undo step."""
        step = self._record(board, [(x, y, value)])
        await self._write(board, [(x, y, value)], step, self.client.set_cell(board, x, y, value))

    @work(group="edits", exit_on_error=False)
    async def save_cells(
        self, board: str, edits: list[tuple[int, int, str]], step: Step | None = None
    ) -> None:
        """Write a block (a paste, a clear, an undo) as one `cells.set`; `step` is the
        undo step it was recorded as."""
        await self._write(board, edits, step, self.client.set_cells(board, edits))

    async def _write(
        self,
        board: str,
        edits: list[tuple[int, int, str]],
        step: Step | None,
        sending: Awaitable[object],
    ) -> None:
        """Await `sending` (the client's write of `edits`); a refusal is said once and
        takes its undo `step` back off the stack."""
        try:
            await sending
        except ClientError as exc:
            self._forget(board, step)
            # A server refusal was shown by the app's OpRefused handler, which ran first.
            shown = self._refused.get(board, {})
            if not any(line.endswith(f": {exc.message}") for line in shown.values()):
                what = cell_name(*edits[0][:2]) if len(edits) == 1 else plural(len(edits), "cell")
                self.notify(
                    f"{what} not saved: {exc.message}",
                    title="Edit refused",
                    severity="error",
                    markup=False,
                )
        except NotConnected as exc:
            self._forget(board, step)
            self.notify(str(exc), title="Not saved", severity="warning", markup=False)
        except ConnectionError:
            return  # closed: the edits stay unsaved (and in the outbox); quitting asks
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this worker is being cancelled (the app is quitting)
            return  # the edits were discarded on purpose (the quit prompt said so)
        else:
            for x, y, _ in edits:
                self._clear_refused(board, x, y)

    def _shown(self, mirror: BoardMirror, x: int, y: int) -> str:
        """What the cell shows this user: their own unsaved value, else the board's."""
        pending = mirror.pending_at(x, y)
        return pending.value if pending is not None else mirror.cells.value(x, y)

    def _current(self, mirror: BoardMirror) -> Current:
        """A cell's value as shown and who wrote it (this user while it is unsaved)."""
        own = self._own_user

        def current(x: int, y: int) -> tuple[str, str]:
            pending = mirror.pending_at(x, y)
            if pending is not None:
                return pending.value, own
            op = mirror.cells.get(x, y)
            return ("", "") if op is None else (op.value, op.by)

        return current

    def _history(self, board: str) -> UndoHistory:
        return self.histories.setdefault(board, UndoHistory())

    def _record(self, board: str, edits: Iterable[tuple[int, int, str]]) -> Step | None:
        """Note a new edit as one undo step, with each cell's value before it."""
        mirror = self.client.joined.get(board)
        if mirror is None:
            return None
        step = Step.of(Change(x, y, self._shown(mirror, x, y), value) for x, y, value in edits)
        if step is not None:
            self._history(board).record(step)
        return step

    def _forget(self, board: str, step: Step | None) -> None:
        if step is not None:
            self._history(board).forget(step)

    def note(self, text: str, *, feed: bool = False, lasts: float | None = NOTE_SECONDS) -> None:
        """Say something in the status bar (and the feed): it stays `lasts` seconds,
        or until the next note when None."""
        bar = self.status_bar
        bar.note = text
        bar.refresh()
        if feed:
            self.feed.add(text)
        if self._note_timer is not None:
            self._note_timer.stop()
            self._note_timer = None
        if lasts is not None:
            self._note_timer = self.set_timer(lasts, self._clear_note)

    def _clear_note(self) -> None:
        self._note_timer = None
        self.status_bar.note = None
        self.status_bar.refresh()

    def action_undo(self) -> None:
        """Take back this user's newest edit on this board, where nobody changed it since."""
        self._undo_or_redo(redo=False)

    def action_redo(self) -> None:
        self._undo_or_redo(redo=True)

    def _undo_or_redo(self, *, redo: bool) -> None:
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        history = self._history(self.board_id)
        verb = "redone" if redo else "undone"
        current = self._current(mirror)
        plan = history.redo(current) if redo else history.undo(current)
        if plan is None:
            self.note(f"nothing to {'redo' if redo else 'undo'}")
            return
        if plan.writes:
            self.save_cells(self.board_id, plan.writes)
            x, y, _ = plan.writes[0]
            self.grid.move_to(x, y)
        if plan.skipped:
            self.note(skipped_notice(plan.skipped, self._name_of, verb), feed=True)
        elif len(plan.writes) == 1:
            x, y, _ = plan.writes[0]
            self.note(f"{cell_name(x, y)} {verb}")
        else:
            self.note(f"{plural(len(plan.writes), 'cell')} {verb}")

    def action_copy_cells(self) -> None:
        """The selection (or the cursor's cell) as TSV, to the terminal's clipboard
        (OSC 52) and to the app's own, which `p` pastes from."""
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        rect = self.grid.target
        text = to_tsv(rect, lambda x, y: self._shown(mirror, x, y))
        self.clipboard_text = text
        self.copy_to_clipboard(text)
        self.notify(f"Copied {rect.describe()}", title="Copy", markup=False)

    def action_paste_cells(self) -> None:
        if not self.clipboard_text:
            self.notify("Nothing copied yet: y copies the selection", title="Paste")
            return
        self.paste_block(self.clipboard_text)

    def paste_block(self, text: str) -> None:
        """Write TSV (or lines of text) with its top-left at the cursor: one batch, one
        undo step; what fell off the board or had to change is said."""
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        grid = self.grid
        x, y = grid.cursor_x, grid.cursor_y
        plan = plan_paste(
            parse_tsv(text), x, y, mirror.meta.width, mirror.meta.height, self.max_cell_chars
        )
        if not plan.edits:
            self.notify(plan.notice, title="Paste", severity="warning", markup=False)
            return
        changed = [e for e in plan.edits if self._shown(mirror, e[0], e[1]) != e[2]]
        if changed:
            self.save_cells(self.board_id, changed, self._record(self.board_id, changed))
        right = max(e[0] for e in plan.edits)
        bottom = max(e[1] for e in plan.edits)
        if (right, bottom) != (x, y):
            grid.select_from = (right, bottom)
            grid.refresh()
        warn = plan.outside or plan.cleaned
        self.notify(
            plan.notice[0].upper() + plan.notice[1:],
            title="Paste",
            severity="warning" if warn else "information",
            markup=False,
        )

    def action_clear_cells(self) -> None:
        """Empty the selection (or the cursor's cell): one batch, one undo step."""
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        rect: Rect = self.grid.target
        edits = [(x, y, "") for x, y in rect.cells() if self._shown(mirror, x, y)]
        if not edits:
            self.note("nothing to clear")
            return
        self.save_cells(self.board_id, edits, self._record(self.board_id, edits))
        self.note(f"cleared {plural(len(edits), 'cell')}")

    def action_search(self) -> None:
        bar = self.query_one("#search")
        bar.display = True
        field = self.query_one("#search-input", Input)
        field.value = ""
        self.screen.set_focus(field)  # now: the next key is already on its way

    def _close_search(self) -> None:
        if self.query_one("#search").display:
            self.query_one("#search").display = False
            self.screen.set_focus(self.grid)

    def _matches(self, text: str) -> list[tuple[int, int]]:
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return []
        shown = {(op.x, op.y): op.value for op in mirror.cells}
        for op in mirror.pending.values():
            shown[(op.x, op.y)] = op.value
        return find(((x, y, value) for (x, y), value in shown.items()), text)

    def search_for(self, text: str) -> None:
        """The search line's Enter: find `text`, go to the first match after the cursor."""
        self._close_search()
        if not text:
            self.search = None
            self.note("search cleared")
            return
        grid = self.grid
        self.search = Search(text, self._matches(text))
        found = self.search.first_after((grid.cursor_x, grid.cursor_y))
        if found is not None:
            grid.move_to(*found)
        self.note(self.search.describe(), lasts=None)

    def action_search_next(self, forward: bool = True) -> None:
        """`n`/`N`: the next or previous match of the last search (found afresh: cells
        change while you look)."""
        search = self.search
        if search is None:
            self.note("no search yet: / finds")
            return
        search.matches = self._matches(search.text)
        grid = self.grid
        found = search.step((grid.cursor_x, grid.cursor_y), forward)
        if found is not None:
            grid.move_to(*found)
        self.note(search.describe(), lasts=None)

    def action_column_width(self, delta: int) -> None:
        """`<`/`>`: the cursor's column two narrower or wider, for everyone."""
        grid = self.grid
        x = grid.cursor_x
        width = max(MIN_COLUMN_WIDTH, min(MAX_COLUMN_WIDTH, grid.column_width(x) + delta))
        if width == grid.column_width(x):
            self.note(f"column {column_name(x)} is already {width} wide")
            return
        grid.set_column_width(x, width)
        grid.scroll_to_cursor()
        self.save_widths(self.board_id, {x: width})
        self.note(f"column {column_name(x)}: {width} wide")

    @work(group="widths", exit_on_error=False)
    async def save_widths(self, board: str, widths: dict[int, int]) -> None:
        try:
            await self.client.set_column_widths(board, widths)
        except ClientError as exc:
            self.notify(
                f"Column width not saved: {exc.message}",
                title="Column width",
                severity="error",
                markup=False,
            )
        except (NotConnected, ConnectionError):
            self.notify(
                "Column width not saved: not connected",
                title="Column width",
                severity="warning",
            )

    # --- the value line and the inspector ------------------------------------------

    def show_value(self) -> None:
        """The value line: the cursor's cell, its whole value, who wrote it and when."""
        line = self.query_one(ValueLine)
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            line.show(None)
            return
        x, y = self.grid.cursor_x, self.grid.cursor_y
        unsaved = mirror.pending_at(x, y)
        pending = None if unsaved is None else unsaved.value
        line.show(cell_name(x, y), mirror.cells.get(x, y), pending=pending)

    def cell_changed_under_inspector(self, board: str, cells: Iterable[tuple[int, int]]) -> None:
        """Keep an open inspector (and the value line) on the cell's latest value."""
        if board != self.board_id:
            return
        self.show_value()
        screen = self.screen
        if isinstance(screen, CellInspector) and (screen.x, screen.y) in set(cells):
            mirror = self.client.joined.get(board)
            if mirror is not None:
                screen.show_current(mirror.cells.get(screen.x, screen.y))

    def action_inspect(self) -> None:
        """`i`: the cursor's cell in full, with its earlier values to restore one."""
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        board, x, y = self.board_id, self.grid.cursor_x, self.grid.cursor_y
        client = self.client

        def restore(value: str | None) -> None:
            if value is None or board not in client.joined:
                return
            self.save_cell(board, x, y, value)
            self.note(f"{cell_name(x, y)} restored to an earlier value")

        screen = CellInspector(
            board,
            x,
            y,
            mirror.cells.get(x, y),
            load=lambda: client.cell_history(board, x, y),
            name_of=self._name_of,
            now=self._now,
        )
        self.push_screen(screen, restore)

    # --- import and export ----------------------------------------------------------

    def action_export_board(self) -> None:
        """Write the open board to a CSV, TSV or JSON file (by the name's extension)."""
        mirror = self.client.joined.get(self.board_id)
        if mirror is None:
            return
        self.push_screen(
            PathScreen(
                f"Export {mirror.meta.title} to (.csv, .tsv or .json)",
                f"{self.board_id}.csv",
                replacing=True,
            ),
            self._export_to,
        )

    def _export_to(self, path: str | None) -> None:
        if path:
            self.export_board(self.board_id, _absolute(path))

    @work(group="transfer", exit_on_error=False)
    async def export_board(self, board: str, path: Path) -> None:
        mirror = self.client.joined.get(board)
        if mirror is None:
            return
        cells = [op for op in mirror.cells if op.value]
        meta = mirror.meta
        text = format_board(
            guess_format(path.name),
            board=board,
            title=meta.title,
            width=meta.width,
            height=meta.height,
            version=mirror.version,
            cells=cells,
        )
        try:
            await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        except OSError as exc:
            self._transfer_failed("Export", f"cannot write {path}: {exc.strerror or exc}")
            return
        self.notify(
            f"Exported {plural(len(cells), 'cell')} of {meta.title} to {path}",
            title="Export",
            markup=False,
        )

    def action_import(self) -> None:
        """Read a CSV, TSV or JSON file into the open board, its first cell at the cursor."""
        if self.board_id not in self.client.joined:
            return
        at = (self.grid.cursor_x, self.grid.cursor_y)
        self.push_screen(
            PathScreen(f"Import at {cell_name(*at)} from (.csv, .tsv, .json)", "", replacing=False),
            lambda path: self._import_from(path, at),
        )

    def _import_from(self, path: str | None, at: tuple[int, int]) -> None:
        if path:
            self.import_file(self.board_id, _absolute(path), at)

    @work(group="transfer", exit_on_error=False)
    async def import_file(self, board: str, path: Path, at: tuple[int, int]) -> None:
        """Refused whole, naming the file's row and column, before anything is sent."""
        mirror = self.client.joined.get(board)
        if mirror is None:
            return
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            self._transfer_failed("Import", f"cannot read {path}: {reason or exc}")
            return
        try:
            cells = parse(text, guess_format(path.name), at=at)
            check(
                cells,
                width=mirror.meta.width,
                height=mirror.meta.height,
                board=mirror.meta.title,
                max_chars=self.max_cell_chars,
            )
        except TransferError as exc:
            self._transfer_failed("Import", f"{path.name} not imported: {exc}")
            return
        edits = [(c.x, c.y, c.value) for c in cells if self._shown(mirror, c.x, c.y) != c.value]
        if edits:
            self.save_cells(board, edits, self._record(board, edits))
        same = len(cells) - len(edits)
        self.notify(
            f"Imported {plural(len(edits), 'cell')} from {path.name} at {cell_name(*at)}"
            + (f" ({same} already held that value)" if same else ""),
            title="Import",
            markup=False,
        )

    def _transfer_failed(self, title: str, line: str) -> None:
        self.feed.add(line)
        self.notify(line, title=title, severity="error", timeout=15, markup=False)


def _absolute(typed: str) -> Path:
    """What a person typed as a path, as the file it names (~ and relative paths)."""
    return Path(typed).expanduser().absolute()

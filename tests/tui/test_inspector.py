"""The cell inspector and the value line, each in a small host app (no server needed:
the inspector's history comes from a plain async function)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from rich.console import Console
from syrupy.assertion import SnapshotAssertion
from textual.app import App, ComposeResult
from textual.widgets import Label, OptionList, Static

from tests.tui.conftest import wait_for
from tests.tui.scripted import NOW
from tui_collab.cells import CellOp
from tui_collab.client_state import ClientError, NotConnected
from tui_collab.inspector import CellInspector
from tui_collab.protocol import HistoryEntry
from tui_collab.widgets.value_line import ValueLine

NAMES = {"ada": "Ada Lovelace", "grace": "Grace Hopper", "alice": "Alice Ng"}
UNSET = object()


def name_of(user: str) -> str:
    return NAMES.get(user, user)


def now() -> datetime:
    return NOW


def entry(value: str, clock: int, by: str, before: timedelta | None) -> HistoryEntry:
    return HistoryEntry(
        value=value,
        clock=clock,
        client=f"c-{by}",
        by=by,
        version=clock,
        at=None if before is None else NOW - before,
    )


def op_of(e: HistoryEntry, x: int = 1, y: int = 3) -> CellOp:
    at = 0 if e.at is None else int(e.at.timestamp() * 1000)
    return CellOp(x, y, e.value, e.clock, e.client, e.by, e.version, at)


HISTORY = [
    entry("€ 1,450 (incl. VAT, approved by finance on Tuesday)", 9, "ada", timedelta(minutes=2)),
    entry("€ 1,200", 7, "grace", timedelta(hours=3, minutes=10)),
    entry("", 5, "alice", timedelta(days=1, hours=1, minutes=25)),
    entry("[bold]€ 900[/bold] (draft)", 3, "ada", timedelta(days=259, hours=1, minutes=25)),
    entry("TBD", 1, "ken", None),
]
CURRENT = op_of(HISTORY[0])


def returning(entries: list[HistoryEntry]) -> Callable[[], Awaitable[list[HistoryEntry]]]:
    async def load() -> list[HistoryEntry]:
        await asyncio.sleep(0)
        return entries

    return load


def failing(error: Exception) -> Callable[[], Awaitable[list[HistoryEntry]]]:
    async def load() -> list[HistoryEntry]:
        raise error

    return load


class Host(App[None]):
    """Pushes the inspector at start and keeps what it dismissed with."""

    def __init__(self, screen: CellInspector) -> None:
        super().__init__()
        self.inspector = screen
        self.result: object = UNSET
        self.theme = "textual-dark"

    def compose(self) -> ComposeResult:
        yield Static("the board would be here")

    def on_mount(self) -> None:
        self.push_screen(self.inspector, self._done)

    def _done(self, value: str | None) -> None:
        self.result = value


def inspector(
    load: Callable[[], Awaitable[list[HistoryEntry]]],
    current: CellOp | None = CURRENT,
    timeout_s: float = 5.0,
) -> CellInspector:
    return CellInspector("plan", 1, 3, current, load, name_of, now, timeout_s=timeout_s)


def prompts(screen: CellInspector) -> list[str]:
    """Each option as a person reads it, at the list's width."""
    console = Console(width=70, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    out = []
    for option in screen.query_one(OptionList).options:
        console.print(option.prompt)
        out.append(" ".join(console.export_text().split()))
    return out


def status(screen: CellInspector) -> str:
    return str(screen.query_one("#inspector-status", Label).render())


async def loaded(pilot, screen: CellInspector) -> None:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: screen.entries is not None or screen.problem is not None)


async def test_earlier_values_newest_first_with_who_and_when() -> None:
    app = Host(inspector(returning(HISTORY)))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        assert prompts(app.inspector) == [
            "€ 1,200 by Grace Hopper · 3 h ago",
            "empty by Alice Ng · yesterday 14:05",
            "[bold]€ 900[/bold] (draft) by Ada Lovelace · 12 Mar 14:05",
            "TBD by ken",
        ]
        assert str(app.inspector.query_one("#inspector-credit", Label).render()) == (
            "by Ada Lovelace · 2 min ago"
        )
        assert app.inspector.query_one(OptionList).has_focus
        assert not app.inspector.query_one("#inspector-status").display


async def test_enter_restores_the_highlighted_value() -> None:
    app = Host(inspector(returning(HISTORY)))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: app.result is not UNSET)
        assert app.result == "[bold]€ 900[/bold] (draft)"


async def test_an_empty_earlier_value_restores_as_empty_text() -> None:
    app = Host(inspector(returning(HISTORY)))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.result is not UNSET)
        assert app.result == ""


async def test_a_click_restores_that_value() -> None:
    app = Host(inspector(returning(HISTORY)))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        await pilot.click("#inspector-history", offset=(4, 3))
        await wait_for(pilot, lambda: app.result is not UNSET)
        assert app.result == "TBD"


async def test_escape_closes_with_none() -> None:
    app = Host(inspector(returning(HISTORY)))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.result is not UNSET)
        assert app.result is None
        assert app.screen is not app.inspector


async def test_escape_while_loading_closes_with_none() -> None:
    never = asyncio.Event()

    async def load() -> list[HistoryEntry]:
        await never.wait()
        return []

    app = Host(inspector(load))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert status(app.inspector) == "loading history…"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.result is not UNSET)
        assert app.result is None


async def test_only_the_current_value_says_no_earlier_values() -> None:
    app = Host(inspector(returning(HISTORY[:1])))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        assert status(app.inspector) == "no earlier values"
        assert not app.inspector.query_one(OptionList).display
        await pilot.press("enter")  # nothing to choose: stays open
        await pilot.pause()
        assert app.screen is app.inspector


async def test_a_value_equal_to_the_current_one_cannot_be_chosen() -> None:
    again = entry(CURRENT.value, 4, "grace", timedelta(hours=5))
    app = Host(inspector(returning([HISTORY[0], HISTORY[1], again, HISTORY[4]])))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        assert "same as now" in prompts(app.inspector)[1]
        await pilot.press("down", "enter")  # skips the disabled one
        await wait_for(pilot, lambda: app.result is not UNSET)
        assert app.result == "TBD"


async def test_a_cell_never_set_lists_everything() -> None:
    app = Host(inspector(returning(HISTORY[1:3]), current=None))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        assert len(app.inspector.earlier) == 2
        assert str(app.inspector.query_one("#inspector-credit", Label).render()) == "never set"


async def test_the_cell_changing_underneath_moves_the_list() -> None:
    app = Host(inspector(returning(HISTORY[1:])))  # the history came before the new value
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        assert len(app.inspector.earlier) == 4
        app.inspector.show_current(op_of(HISTORY[1]))
        await pilot.pause()
        assert [e.value for e in app.inspector.earlier] == ["", "[bold]€ 900[/bold] (draft)", "TBD"]
        assert str(app.inspector.query_one("#inspector-value", Static).render()) == "€ 1,200"


async def test_load_errors_are_a_line_on_the_screen() -> None:
    cases: list[tuple[Exception, str]] = [
        (ClientError("forbidden", "not a member of plan"), "The server refused the history"),
        (NotConnected(), "History needs a connection"),
        (ConnectionError("client closed"), "History needs a connection"),
        (TimeoutError(), "did not send the history in time"),
        (ValueError("a bug"), "Could not load the history"),
    ]
    for error, words in cases:
        app = Host(inspector(failing(error)))
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot, app.inspector)
            await pilot.pause()
            assert words in status(app.inspector)
            assert app.inspector.query_one("#inspector-status").has_class("-error")
            assert app.screen is app.inspector
            await pilot.press("escape")
            await wait_for(pilot, lambda app=app: app.result is None)  # type: ignore[misc]


async def test_a_load_that_never_answers_times_out() -> None:
    async def load() -> list[HistoryEntry]:
        await asyncio.Event().wait()
        return []

    app = Host(inspector(load, timeout_s=0.05))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        await pilot.pause()
        assert "did not send the history in time" in status(app.inspector)


async def test_a_short_terminal_shrinks_the_list_not_the_hint() -> None:
    many = [entry(f"value {n}", 60 - n, "ada", timedelta(minutes=n)) for n in range(40)]
    app = Host(inspector(returning(many), current=op_of(many[0])))
    async with app.run_test(size=(60, 16)) as pilot:
        await loaded(pilot, app.inspector)
        await pilot.pause()
        hint = app.inspector.query_one(".inspector-hint")
        history = app.inspector.query_one(OptionList)
        assert hint.region.bottom <= 15  # above the dialog's bottom border
        assert 2 <= history.size.height < 12
        await pilot.press(*["down"] * 9)
        await pilot.pause()
        assert history.highlighted == 9
        assert history.scroll_offset.y > 0  # the chosen row scrolled into view
        await pilot.resize_terminal(60, 40)
        await wait_for(pilot, lambda: history.size.height == 12)


# --- the value line -------------------------------------------------------------------


class Lines(App[None]):
    """Value lines as the app shows them, above a stand-in for the grid."""

    def __init__(self, shown: list[tuple[str, CellOp | None]]) -> None:
        super().__init__()
        self.shown = shown
        self.theme = "textual-dark"

    def compose(self) -> ComposeResult:
        for n, _ in enumerate(self.shown):
            yield ValueLine(name_of=name_of, now=now, id=f"line-{n}")
            yield Static(" ")

    def on_mount(self) -> None:
        for n, (cell, op) in enumerate(self.shown):
            self.query_one(f"#line-{n}", ValueLine).show(cell, op)


def text_of(app: Lines, n: int) -> str:
    line = app.query_one(f"#line-{n}", ValueLine)
    return line.line(line.content_size.width).plain


LONG = op_of(
    entry("Laptops for the three new hires, ordered through IT; " * 4, 9, "ada", timedelta(0))
)


async def test_value_line_shows_value_and_credit() -> None:
    app = Lines(
        [
            ("B4", CURRENT),
            ("C2", op_of(HISTORY[3])),
            ("A1", None),
            ("D5", op_of(HISTORY[2])),
            ("E6", LONG),
            ("F7", op_of(entry("漢字のセル値です" * 8, 2, "grace", None))),
        ]
    )
    async with app.run_test(size=(80, 14)) as pilot:
        await pilot.pause()
        lines = [text_of(app, n) for n in range(6)]
        assert lines[0].startswith("B4 · € 1,450 (incl. VAT, approved by finance on…")
        assert lines[0].endswith("…   by Ada Lovelace · 2 min ago")
        assert lines[1].startswith("C2 · [bold]€ 900[/bold] (draft)")  # never markup
        assert lines[2] == "A1 · empty"
        assert lines[3].startswith("D5 · empty")
        assert lines[3].endswith("   cleared by Alice Ng · yesterday 14:05")
        assert lines[4].startswith("E6 · Laptops for the three new hires")
        assert "…   by Ada Lovelace · just now" in lines[4]
        assert "…   by Grace Hopper" in lines[5]
        for line in lines:
            assert len(line) <= 78  # the padding takes 2


async def test_value_line_drops_the_credit_before_the_value_when_narrow() -> None:
    app = Lines([("E6", LONG), ("B4", op_of(entry("short", 1, "ada", timedelta(minutes=2))))])
    async with app.run_test(size=(44, 4)) as pilot:
        await pilot.pause()
        assert text_of(app, 0) == "E6 · Laptops for the three new hires, ord…"
        assert text_of(app, 1) == "B4 · short     by Ada Lovelace · 2 min ago"
        await pilot.resize_terminal(40, 4)
        await pilot.pause()
        assert text_of(app, 1) == "B4 · short"
        app.query_one("#line-1", ValueLine).show(None)
        await pilot.pause()
        assert text_of(app, 1) == ""


async def test_value_line_shows_an_unsaved_edit_as_such() -> None:
    app = Lines([("B4", CURRENT)])
    async with app.run_test(size=(80, 4)) as pilot:
        line = app.query_one("#line-0", ValueLine)
        line.show("B4", CURRENT, pending="€ 1,500")
        await pilot.pause()
        assert text_of(app, 0).startswith("B4 · € 1,500 ")
        assert text_of(app, 0).endswith("   not saved yet")
        line.show("B4", CURRENT, pending="")
        await pilot.pause()
        assert text_of(app, 0).startswith("B4 · empty ")
        line.show("B4", CURRENT)
        await pilot.pause()
        assert text_of(app, 0).endswith("by Ada Lovelace · 2 min ago")


# --- pixels -----------------------------------------------------------------------------


async def test_inspector_snapshot(svg_snapshot: SnapshotAssertion) -> None:
    app = Host(inspector(returning(HISTORY)))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        await pilot.press("down")
        await pilot.pause()
        assert svg_snapshot == app.export_screenshot()


async def test_inspector_error_snapshot(svg_snapshot: SnapshotAssertion) -> None:
    app = Host(inspector(failing(NotConnected()), current=op_of(HISTORY[1])))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app.inspector)
        await pilot.pause()
        assert svg_snapshot == app.export_screenshot()


async def test_value_line_snapshot(svg_snapshot: SnapshotAssertion) -> None:
    app = Lines(
        [("B4", CURRENT), ("C2", op_of(HISTORY[3])), ("A1", None), ("E6", LONG), ("B4", CURRENT)],
    )
    async with app.run_test(size=(80, 10)) as pilot:
        app.query_one("#line-4", ValueLine).show("B4", CURRENT, pending="€ 1,500")
        await pilot.pause()
        assert svg_snapshot == app.export_screenshot()

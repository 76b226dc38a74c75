"""Modal screens: help, board picker, teammate picker for follow mode, a file path, the
quit prompt."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui_collab.words import plural

HELP = """\
Move             arrows or h j k l, or click a cell
Edit a cell      Enter or F2, type, Enter saves, Esc cancels
Select           shift+arrows, or drag the mouse; Esc clears
Copy / paste     y or ctrl+c copies as TSV; p or ctrl+v pastes
Clear            Delete or Backspace empties the selection
Undo / redo      ctrl+z / ctrl+y: your own edits, newest first
Inspect          i: the whole value, who set it, earlier values
Find             / text Enter, then n / N: next / previous
Column width     < or > narrows or widens it, for everyone
Status           s cycles online → busy → away
Follow           f, then pick a teammate; any key stops
Boards           b switches board or creates one
Notes            t opens the board's shared notes; Esc leaves
Zoom             z hides the sidebar and the feed (z shows them)
Reconnect        r reconnects now
Commands         ctrl+p opens the command palette
Quit             q (asks first if edits are not saved yet)

Teammates' cursors show in their colour, with their name on
the cell next to them. ✎ marks a cell someone is typing in.
A value ending in * is your edit the server has not saved
yet; a red ! marks a cell where the server refused your
edit (the status bar says why; the cell shows the server's
value). After 5 minutes without a key, click or scroll you
show as away; the next one brings you back.

Undo never overwrites a teammate: a cell someone changed
after your edit keeps their value, and the status bar says
who. A paste or a clear is one undo step. A paste fills the
block from the cursor; what falls past the board's edge is
left out, and you are told.

In the notes everyone types at once and every key is kept;
teammates' carets and selections show in their colour with
their name, and ✎ while they type. There ctrl+z / ctrl+y undo
and redo your own changes only. Changes made offline are kept
and merged when the connection returns."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        # Scrolls (arrows, the wheel) when the terminal is too short for every key.
        with VerticalScroll(id="dialog"):
            yield Label("tui-collab — keys", id="dialog-title")
            yield Static(Text(HELP), id="help-text")
            yield Label("Esc closes", classes="dialog-hint")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class PickScreen(ModalScreen[str | None]):
    """Pick one of several options, or type a new name when `new_label` is set."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, title: str, options: list[tuple[str, str]], new_label: str | None = None
    ) -> None:
        super().__init__()
        self._title = title
        self._options = options
        self._new_label = new_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, id="dialog-title")
            if self._options:
                yield OptionList(*[Option(Text(label), id=key) for key, label in self._options])
            else:
                yield Label("nobody to pick", classes="dialog-hint")
            if self._new_label is not None:
                yield Input(placeholder=self._new_label, id="new-name", max_length=64)
            yield Label("Enter picks · Esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        for widget in self.query("OptionList, Input"):
            widget.focus()
            break

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if value:
            self.dismiss(f"new:{value}")

    def action_cancel(self) -> None:
        self.dismiss(None)


class PathScreen(ModalScreen[str | None]):
    """Ask for a file's path; dismisses with it, or None (Esc).

    With `replacing`, a path naming a file that exists is taken only on a second Enter,
    after the screen says it will replace it: a typo must not cost someone a file.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, default: str, *, replacing: bool) -> None:
        super().__init__()
        self._title = title
        self._default = default
        self._replacing = replacing
        self._confirmed: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, id="dialog-title")
            yield Input(value=self._default, placeholder="path to a file", id="path")
            yield Label("Enter takes it · Esc cancels", id="path-hint", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        if not path:
            return
        if self._replacing and path != self._confirmed and Path(path).expanduser().exists():
            self._confirmed = path
            hint = self.query_one("#path-hint", Label)
            hint.update(Text(f"{path} exists: Enter again replaces it · Esc cancels"))
            hint.add_class("warning")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitScreen(ModalScreen[str | None]):
    """Quitting with edits the server has not acknowledged: wait, keep, or discard.

    Dismisses with "keep" (or "lose" when the client keeps no outbox, so they cannot be
    kept), "discard", or None (Esc: back to the board). "Wait" does not dismiss: it posts
    `WaitRequested`, shows how many are left (`show_count`) and keeps the other choices.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Back")]

    class WaitRequested(Message):
        """Wait until the server has every edit, then quit."""

    def __init__(self, count: int, *, can_keep: bool) -> None:
        super().__init__()
        self.count = count
        self.can_keep = can_keep
        self.waiting = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._headline(), id="dialog-title")
            yield Static(self._explanation(), id="quit-detail")
            with Horizontal(id="quit-choices"):
                yield Button("Wait for them", id="wait", variant="primary")
                yield Button(self._keep_label(), id="keep")
                yield Button(self._discard_label(), id="discard", variant="error")
            yield Label("Tab moves · Enter chooses · Esc goes back", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#wait", Button).focus()

    def _headline(self) -> str:
        if self.waiting:
            return f"Waiting for the server: {self.count} left"
        return f"{plural(self.count, 'edit')} not saved yet"

    def _explanation(self) -> Text:
        if not self.can_keep:
            return Text(
                "The server has not acknowledged them, and this client keeps no copy "
                "on disk: quitting now loses them."
            )
        return Text(
            "The server has not acknowledged them yet. Wait for it, keep them on this "
            "computer to send the next time you start, or discard them."
        )

    def _keep_label(self) -> str:
        return "Keep for next time" if self.can_keep else f"Quit anyway (loses {self.count})"

    def _discard_label(self) -> str:
        return f"Discard {plural(self.count, 'edit')}"

    def show_count(self, count: int) -> None:
        """How many are still unsaved (the app calls this as acks arrive)."""
        self.count = count
        if not self.is_mounted:
            return
        self.query_one("#dialog-title", Label).update(self._headline())
        self.query_one("#keep", Button).label = self._keep_label()
        self.query_one("#discard", Button).label = self._discard_label()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice = event.button.id
        if choice == "wait":
            if not self.waiting:
                self.waiting = True
                event.button.label = "Waiting…"
                event.button.disabled = True
                self.query_one("#keep", Button).focus()
                self.show_count(self.count)
                self.post_message(self.WaitRequested())
            return
        if choice == "keep" and not self.can_keep:
            choice = "lose"
        self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)

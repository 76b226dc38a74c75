"""Modal screens: help, board picker, teammate picker for follow mode."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

HELP = """\
Move             arrows or h j k l, or click a cell
Edit a cell      Enter or F2, type, Enter saves, Esc cancels
Status           s cycles online → busy → away
Follow           f, then pick a teammate; any key stops
Boards           b switches board or creates one
Reconnect        r reconnects now
Commands         ctrl+p opens the command palette
Quit             q

Teammates' cursors show in their colour, with their name on
the cell next to them. ✎ marks a cell someone is typing in.
A value ending in * is your edit the server has not saved
yet. After 5 minutes without a key you show as away; the
next key brings you back."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
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

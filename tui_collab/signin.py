"""The sign-in screen: who a browser visitor is, asked inside the app.

A page is not a login shell: nobody who opens it is anyone yet. An open-mode server
(loopback only) takes a name; a token-mode server takes a token, typed or pasted into
the page's terminal, never carried in a URL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import TypeAdapter, ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Label

from tui_collab.protocol import DisplayName

AuthMode = Literal["open", "token"]
_NAME: TypeAdapter[str] = TypeAdapter(DisplayName)


class SignInError(ValueError):
    """What was typed cannot sign anyone in; the message says why, for the screen."""


@dataclass(frozen=True)
class Credentials:
    """A name for an open-mode server (user id made from it), or a token."""

    user: str | None = None
    team: str | None = None
    name: str | None = None
    token: str | None = None


def user_id_for(name: str) -> str:
    """A valid user id from a display name: 'Ada L.' -> 'Ada-L'; a name with no
    letter or digit id-safe gets a stable one made from its hash."""
    slug = re.sub(r"[^A-Za-z0-9._@-]+", "-", name).strip("-._@")[:64].rstrip("-._@")
    if slug:
        return slug
    return "user-" + hashlib.sha256(name.encode()).hexdigest()[:10]


def credentials_from(mode: AuthMode, typed: str, *, team: str) -> Credentials:
    """Check what the visitor typed; `SignInError` says what is wrong with it."""
    text = typed.strip()
    if mode == "token":
        if not text:
            raise SignInError("paste the token from `tui-collab-server token`")
        if any(c.isspace() for c in text):
            raise SignInError("a token has no spaces: paste it whole, on one line")
        return Credentials(token=text)
    if not text:
        raise SignInError("type the name your teammates will see")
    try:
        name = _NAME.validate_python(text)
    except ValidationError:
        raise SignInError(
            "a name is 1 to 64 characters, with no control or invisible characters"
        ) from None
    return Credentials(user=user_id_for(name), team=team, name=name)


SignIn = Callable[[Credentials], Awaitable[str | None]]
"""Try the credentials: None once signed in, else the line that says why not."""


class SignInScreen(Screen[Credentials]):
    """Asks for a name or a token until `sign_in` accepts one; dismissed with it."""

    DEFAULT_CSS = """
    SignInScreen {
        align: center middle;
    }
    #signin-dialog {
        width: 64;
        max-width: 100%;
        height: auto;
        padding: 1 2;
        border: thick $accent;
        background: $surface;
    }
    #signin-title {
        text-style: bold;
    }
    #signin-where, .signin-label {
        color: $text-muted;
        margin-bottom: 1;
    }
    #signin-input {
        width: 100%;
    }
    #signin-error {
        color: $warning;
        height: auto;
        margin-top: 1;
    }
    """

    def __init__(self, mode: AuthMode, sign_in: SignIn, *, where: str, team: str) -> None:
        super().__init__(id="signin")
        self.mode: AuthMode = mode
        self._sign_in = sign_in
        self._where = where
        self._team = team

    def compose(self) -> ComposeResult:
        with Vertical(id="signin-dialog"):
            yield Label("tui-collab — sign in", id="signin-title")
            yield Label(Text(f"to {self._where}"), id="signin-where")
            if self.mode == "token":
                yield Label("Token (from `tui-collab-server token`)", classes="signin-label")
                yield Input(password=True, placeholder="paste the token", id="signin-input")
            else:
                yield Label(f"Your name (team {self._team})", classes="signin-label")
                yield Input(placeholder="e.g. Ada", id="signin-input")
            yield Label("", id="signin-error")
            yield Label("Enter signs in · ctrl+q leaves", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#signin-input", Input).focus()

    @on(Input.Submitted, "#signin-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            credentials = credentials_from(self.mode, event.value, team=self._team)
        except SignInError as exc:
            self.show_error(str(exc))
            return
        self.show_error("signing in…")
        self.query_one("#signin-input", Input).disabled = True
        self._try(credentials)

    @work(exclusive=True, group="signin", exit_on_error=False)
    async def _try(self, credentials: Credentials) -> None:
        problem = await self._sign_in(credentials)
        field = self.query_one("#signin-input", Input)
        if problem is None:
            self.dismiss(credentials)
            return
        field.disabled = False
        field.focus()
        self.show_error(problem)

    def show_error(self, line: str) -> None:
        """Why the last try did not sign in (shown as text, never as markup)."""
        self.query_one("#signin-error", Label).update(Text(line))

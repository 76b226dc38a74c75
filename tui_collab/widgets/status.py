"""The status bar: connection state first, because it decides whether edits are safe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rich.text import Text
from textual.widget import Widget

from tui_collab.events import Closed, Connected, Connecting, ConnectionState, Reconnecting
from tui_collab.retry import FATAL_REASONS

TOKEN_WARNING_S = 300.0
"""Say when the token runs out this soon."""


def closed_line(state: Closed) -> str:
    """What a close says to a person: its detail, or else its reason in words."""
    return state.detail or f"disconnected: {state.reason.replace('_', ' ')}"


def token_notice(expires_at: float | None, now: float) -> str | None:
    """'token expires in 4 min' within `TOKEN_WARNING_S` of `expires_at`, else None."""
    if expires_at is None:
        return None
    left = expires_at - now
    if left > TOKEN_WARNING_S:
        return None
    if left <= 0:
        return "token expired"
    if left < 60:
        return f"token expires in {int(left)} s"
    return f"token expires in {int(left // 60)} min"


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar {
        height: 1; background: $panel; color: $text; padding: 0 1;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._now = now
        self.state: ConnectionState = Connecting("")
        self.reconnect_at = 0.0
        self.where = ""
        self.pending = 0
        self.following: str | None = None
        self.problem: str | None = None
        """The latest edit the server refused, while its cell still shows the mark."""
        self.token_expires_at: Callable[[], float | None] = lambda: None
        self.note: str | None = None
        """The latest word on what this person just did ('match 2 of 7 for 'foo'',
        'B4 changed by Ada since — not undone'); before the address, which gives way."""

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)  # the reconnect countdown, the token's time

    def show_state(self, state: ConnectionState) -> None:
        self.state = state
        if isinstance(state, Reconnecting):
            self.reconnect_at = self._clock() + state.next_delay
        self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        state = self.state
        if isinstance(state, Connected):
            text.append("● connected", "bold green")
        elif isinstance(state, Connecting):
            text.append("◌ connecting…", "bold yellow")
        elif isinstance(state, Reconnecting):
            wait = max(0, round(self.reconnect_at - self._clock()))
            text.append(f"◌ reconnecting in {wait} s (attempt {state.attempt})", "bold yellow")
            text.append("  offline — edits will sync", "yellow")
        elif isinstance(state, Closed):
            text.append(f"✕ {closed_line(state)}", "bold red")
            if state.reason not in FATAL_REASONS:  # `r` (reconnect) cannot fix these
                text.append("  r reconnects", "dim")
        token = token_notice(self.token_expires_at(), self._now().timestamp())
        if token is not None:
            text.append(f"   {token}", "bold yellow")
        if self.pending:
            text.append(f"   {self.pending} unsaved", "yellow")
        if self.problem:
            text.append(f"   ! {self.problem}", "bold red")
        if self.following:
            text.append(f"   following {self.following} (any key stops)", "bold cyan")
        if self.note:
            text.append(f"   {self.note}", "bold")
        if self.where:
            text.append(f"   {self.where}", "dim")
        return text

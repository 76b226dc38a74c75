"""The team sidebar: who is here, what they are doing, and the team's boards."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from rich.text import Text
from textual.widget import Widget

from tui_collab.protocol import BoardMeta, Presence

STATUS_RANK = {"online": 0, "busy": 1, "away": 2, "offline": 3}
BADGE_STYLE = {
    "online": "bold green",
    "busy": "bold red",
    "away": "bold yellow",
    "offline": "grey50",
}


def ago(then: datetime | None, now: datetime) -> str:
    """'just now', '5m ago', '3h ago', '2d ago'."""
    if then is None:
        return "never"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


def sort_members(members: Iterable[Presence]) -> list[Presence]:
    """Most available first, then by name."""
    return sorted(members, key=lambda m: (STATUS_RANK[m.status], m.name.casefold(), m.user))


class PresenceList(Widget):
    """Two lines a member; '+N more' when they do not all fit."""

    DEFAULT_CSS = """
    PresenceList { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self.members: list[Presence] = []
        self.own_user = ""

    def on_mount(self) -> None:
        self.set_interval(30, self.refresh)  # keeps "last seen" current

    def show(self, members: Iterable[Presence], own_user: str) -> None:
        self.members = sort_members(members)
        self.own_user = own_user
        self.refresh()

    def render(self) -> Text:
        now = self._clock()
        capacity = max(1, self.size.height // 2)
        shown = self.members
        hidden = 0
        if len(shown) > capacity:
            shown, hidden = shown[: capacity - 1], len(shown) - (capacity - 1)
        text = Text(no_wrap=True, overflow="ellipsis")
        for member in shown:
            text.append("● ", BADGE_STYLE[member.status])
            text.append(member.name, "bold" if member.user == self.own_user else "")
            if member.user == self.own_user:
                text.append(" (you)", "dim")
            text.append("\n  ")
            text.append(self._detail(member, now), "dim")
            text.append("\n")
        if hidden:
            text.append(f"+{hidden} more", "italic dim")
        return text

    @staticmethod
    def _detail(member: Presence, now: datetime) -> str:
        if member.status == "offline":
            return f"last seen {ago(member.last_seen, now)}"
        parts: list[str] = [] if member.status == "online" else [member.status]
        if member.activity is not None:
            activity = member.activity.kind.replace("_", " ")
            if member.activity.board:
                activity += f" {member.activity.board}"
            if member.activity.detail:
                activity += f" · {member.activity.detail}"
            parts.append(activity)
        return " · ".join(parts) or "online"


class BoardList(Widget):
    """The team's boards and who is on each (from their activity)."""

    DEFAULT_CSS = """
    BoardList { height: auto; max-height: 8; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.boards: list[BoardMeta] = []
        self.current = ""
        self.members: list[Presence] = []

    def show(self, boards: Iterable[BoardMeta], current: str, members: Iterable[Presence]) -> None:
        self.boards = sorted(boards, key=lambda b: b.title.casefold())
        self.current = current
        self.members = list(members)
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.boards))

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, board in enumerate(self.boards):
            here = [
                m.name.split()[0]
                for m in self.members
                if m.status != "offline" and m.activity is not None and m.activity.board == board.id
            ]
            marker = "▸ " if board.id == self.current else "  "
            text.append(marker, "bold")
            text.append(board.title, "bold" if board.id == self.current else "")
            if here:
                text.append(f"  {', '.join(here)}", "dim")
            if index < len(self.boards) - 1:
                text.append("\n")
        if not self.boards:
            text.append("no boards yet — press b", "dim")
        return text

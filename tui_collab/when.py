"""Moments in words for people: "2 min ago", "yesterday 14:05". Pure, no clock of its own.

Wiring: pass the app's `Clock.now()` as `now`. Calendar words ("yesterday", the day and
the clock time) are read in `now`'s time zone, so an app that wants local times passes a
local `now` (`datetime.now().astimezone()`); a UTC `now` shows UTC. Cell ops carry their
time as Unix milliseconds (`CellOp.at`, 0 = unknown): `from_ms` turns that into a moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

JUST_NOW_S = 5
"""Younger than this reads "just now"; so does anything up to `SKEW_S` in the future."""
SKEW_S = 120
"""The server's clock may run ahead of ours: a moment this far in the future is "just now"."""

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
"""Month names spelled here, not by strftime, so the words do not follow the locale."""


def from_ms(ms: int) -> datetime | None:
    """The moment of a Unix-milliseconds stamp (`CellOp.at`); None for 0 (not recorded)."""
    if ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


def _aware(moment: datetime) -> datetime:
    # A naive datetime here came from the server or a test without a zone: take it as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def ago(moment: datetime, now: datetime) -> str:
    """How long before `now` `moment` was, in the fewest words that stay exact enough.

    "just now" (under 5 s, or a little in the future), "12 s ago", "2 min ago", "3 h ago"
    (same day), "yesterday 14:05", "12 Mar 14:05", "12 Mar 2025 14:05" (another year).
    """
    now = _aware(now)
    moment = _aware(moment).astimezone(now.tzinfo)
    seconds = (now - moment).total_seconds()
    if -SKEW_S <= seconds < JUST_NOW_S:
        return "just now"
    if 0 < seconds < 60:
        return f"{int(seconds)} s ago"
    if 0 < seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    clock = f"{moment.hour:02d}:{moment.minute:02d}"
    if seconds > 0 and moment.date() == now.date():
        return f"{int(seconds // 3600)} h ago"
    if moment.date() == now.date() - timedelta(days=1):
        return f"yesterday {clock}"
    day = f"{moment.day} {_MONTHS[moment.month - 1]}"
    if moment.year != now.year:
        day += f" {moment.year}"
    return f"{day} {clock}"


def credit(who: str | None, moment: datetime | None, now: datetime) -> str:
    """ "by Ada · 2 min ago", with either half left out when it is not known ("" if neither)."""
    parts = []
    if who:
        parts.append(f"by {who}")
    if moment is not None:
        parts.append(ago(moment, now))
    return " · ".join(parts)

"""Audit lines: one `key=value` record per security-relevant refusal.

They go to the `tui_collab.audit` logger so an operator can route them on their own
(a file, a SIEM) apart from the server's chatter. A line names who and from where,
and why; never a token, and never what a message said.
"""

from __future__ import annotations

import logging
from typing import Final

from tui_collab.protocol import printable

audit_logger: Final = logging.getLogger("tui_collab.audit")

AUTH_FAILED: Final = "auth_failed"
RATE_LIMIT_CLOSE: Final = "rate_limit_close"
SLOW_CONSUMER_CLOSE: Final = "slow_consumer_close"
CAP_REFUSED: Final = "cap_refused"
TOKEN_EXPIRED: Final = "token_expired"  # noqa: S105 - an event name
HTTP_REFUSED: Final = "http_refused"
"""A plain HTTP request refused before any endpoint read it: a malformed header (400),
or in open mode a Host that is not loopback or an Origin not allowed (403)."""


def _field(value: object) -> str:
    text = printable(str(value))[:120]
    return text.replace(" ", "_").replace("=", ":") or "-"


def audit_record(
    event: str, *, ip: str, user: str | None = None, team: str | None = None, **extra: object
) -> str:
    """One audit record as text; values are made printable and single-word."""
    parts = [f"event={event}", f"ip={_field(ip)}"]
    if team is not None:
        parts.append(f"team={_field(team)}")
    if user is not None:
        parts.append(f"user={_field(user)}")
    parts.extend(f"{key}={_field(value)}" for key, value in extra.items())
    return " ".join(parts)


def audit(
    event: str, *, ip: str, user: str | None = None, team: str | None = None, **extra: object
) -> None:
    """Log one audit record; values are made printable and single-word."""
    audit_logger.warning(audit_record(event, ip=ip, user=user, team=team, **extra))

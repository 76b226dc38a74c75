"""`--log-format json`'s formatter: one object a line, the record's fields, no tokens."""

from __future__ import annotations

import json
import logging
import sys

from server.auth import mint_token
from server.logs import JsonFormatter

TOKEN = mint_token("s" * 64, "alice", "core", None, 60)


def record(
    message: str,
    *args: object,
    name: str = "server.app",
    extra: dict[str, object] | None = None,
    exc: bool = False,
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad token {TOKEN}")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord(name, logging.WARNING, __file__, 1, message, args, exc_info)
    made.created = 1_800_000_000.25  # 2027-01-15T08:00:00.250Z
    for key, value in (extra or {}).items():
        setattr(made, key, value)
    return made


def test_a_line_is_one_object_with_time_level_logger_and_message() -> None:
    line = JsonFormatter().format(record("connected %s\nuser=%s", "s-1", "alice"))
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2027-01-15T08:00:00.250+00:00",
        "level": "WARNING",
        "logger": "server.app",
        "message": "connected s-1\nuser=alice",
    }


def test_extra_fields_are_kept_and_typed() -> None:
    fields = {"user": "alice", "connections": 3, "ratio": 0.5, "clean": True, "gone": None}
    entry = json.loads(JsonFormatter().format(record("hi", extra=fields | {"odd": float("nan")})))
    assert {key: entry[key] for key in fields} == fields
    assert entry["odd"] == "nan"  # JSON has no NaN: the text instead


def test_tokens_are_redacted_from_message_fields_and_traceback() -> None:
    line = JsonFormatter().format(
        record(
            "hello %s",
            f'{{"type":"hello","token":"{TOKEN}"}}',
            extra={"header": f"Bearer {TOKEN}"},
            exc=True,
        )
    )
    assert TOKEN not in line
    assert TOKEN.split(".")[1] not in line
    entry = json.loads(line)
    assert entry["message"] == 'hello {"type":"hello","token":"[redacted]"}'
    assert entry["header"] == "Bearer [redacted]"
    assert entry["exception"].endswith("ValueError: bad token [redacted]")


def test_an_audit_line_also_gives_its_fields() -> None:
    entry = json.loads(
        JsonFormatter().format(
            record(
                "event=auth_failed ip=10.0.0.7 stage=hello reason=expired", name="tui_collab.audit"
            )
        )
    )
    assert entry["audit"] == {
        "event": "auth_failed",
        "ip": "10.0.0.7",
        "stage": "hello",
        "reason": "expired",
    }

"""Logging set-up for the server process, with tokens scrubbed from every record.

Our own code never logs a token, but libraries may: websockets logs request headers
and frames at debug level, and those carry `Authorization` headers and `hello` tokens.
The filter sits on the handler, so it covers every logger that reaches it.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Final

_SECRETS: Final = re.compile(
    r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*"  # anything shaped like a JWT
    r"|(?<=Bearer )\S+"  # whatever follows "Bearer "
    r'|(?<="token":")[^"]*',  # the token field of a JSON frame
    re.IGNORECASE,
)
REDACTED: Final = "[redacted]"


def redact(text: str) -> str:
    return _SECRETS.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """Rewrite each record's final message with tokens replaced by `[redacted]`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if level.lower() != "debug":
        # One line per HTTP request is noise at info level; our own logs cover connections.
        logging.getLogger("websockets").setLevel(logging.WARNING)

"""GET a JSON endpoint of a running server (any status), off the event loop."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any


def get_json_blocking(port: int, path: str) -> tuple[int, dict[str, Any]]:
    """The status and the decoded body, for 503s too (urllib raises for those)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


async def get_json(port: int, path: str) -> tuple[int, dict[str, Any]]:
    return await asyncio.to_thread(get_json_blocking, port, path)  # urllib blocks

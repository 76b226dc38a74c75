"""What a refused client sees and what the server writes down about it."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


async def refused_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status of an upgrade the server refuses (fails if it is accepted)."""
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, additional_headers=headers, compression=None)
    return refused.value.response.status_code


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The `tui_collab.audit` lines captured so far."""
    return [r.getMessage() for r in caplog.records if r.name == "tui_collab.audit"]

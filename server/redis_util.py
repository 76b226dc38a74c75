"""Two small helpers for the code that talks to Redis: the store, the cluster, their wire types."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import TypeVar, cast

_T = TypeVar("_T")


def compact_json(value: object) -> str:
    """JSON without spaces, non-ASCII kept as is: what goes into Redis and onto its channels."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def awaited(result: Awaitable[_T] | _T) -> Awaitable[_T]:
    """redis-py types some commands as "awaitable or not"; on redis.asyncio they always are."""
    return cast("Awaitable[_T]", result)

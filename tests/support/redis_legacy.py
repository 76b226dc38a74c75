"""Cells written the way the Redis store did before layout 2: a hash per cell.

Layout 1 (until the store moved every board's cells into one hash) kept

    {p}t:{team}:b:{board}:c:{x}:{y}  hash  value, clock, client, by, version, updated_at, nonce
    {p}t:{team}:b:{board}:v          zset  "x:y" scored by the cell's version

and no `{p}layout` key. The script below is that version's apply script, unchanged, so
tests and the memory benchmark can make such data and watch a new store convert it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from redis.asyncio import Redis

from server.wire import board_channel
from tui_collab.cells import CellOp

_COMPARE: Final = """
local function bytes_lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local ca, cb = string.byte(a, i), string.byte(b, i)
    if ca ~= cb then return ca < cb end
  end
  return #a < #b
end

-- Clocks reach 2^62, beyond a Lua number's exact range, so they travel and compare as
-- canonical decimal strings (Python's str(int)).
local function int_lt(a, b)
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return na end
  if #a ~= #b then
    if na then return #a > #b end
    return #a < #b
  end
  if na then return bytes_lt(b, a) end
  return bytes_lt(a, b)
end
"""

LEGACY_APPLY: Final = (
    _COMPARE
    + """
-- KEYS: board hash, cell hash, version index
-- ARGV: channel, "x:y", value, clock, client, by, updated_at, nonce, node JSON, op JSON
-- Returns {1, version} if the op won, {0, board version} if not, {-1, 0} without board.
local board_version = redis.call('HGET', KEYS[1], 'version')
if not board_version then return {-1, 0} end
local cur = redis.call('HMGET', KEYS[2], 'clock', 'client', 'value', 'nonce', 'version')
if cur[1] then
  -- This very call already ran: the reply was lost and the client retried.
  if cur[4] == ARGV[8] then return {1, tonumber(cur[5])} end
  local wins
  if ARGV[4] ~= cur[1] then wins = int_lt(cur[1], ARGV[4])
  elseif ARGV[5] ~= cur[2] then wins = bytes_lt(cur[2], ARGV[5])
  else wins = bytes_lt(cur[3], ARGV[3]) end
  if not wins then return {0, tonumber(board_version)} end
end
local version = string.format('%d', redis.call('HINCRBY', KEYS[1], 'version', 1))
redis.call('HSET', KEYS[2], 'value', ARGV[3], 'clock', ARGV[4], 'client', ARGV[5],
  'by', ARGV[6], 'version', version, 'updated_at', ARGV[7], 'nonce', ARGV[8])
redis.call('ZADD', KEYS[3], version, ARGV[2])
redis.call('PUBLISH', ARGV[1],
  '{"node":' .. ARGV[9] .. ',"version":' .. version .. ',"op":' .. ARGV[10] .. '}')
return {1, tonumber(version)}
"""
)


async def write_legacy_cells(
    client: Redis, prefix: str, team: str, board: str, ops: Sequence[CellOp]
) -> None:
    """Apply `ops` to an existing board as the layout-1 store did (its script, its keys)."""
    sha = await client.script_load(LEGACY_APPLY)
    key = f"{prefix}t:{team}:b:{board}"
    nonce = secrets.token_hex(8)
    async with client.pipeline(transaction=False) as pipe:
        for n, op in enumerate(ops):
            pipe.evalsha(
                sha,
                3,
                key,
                f"{key}:c:{op.x}:{op.y}",
                f"{key}:v",
                board_channel(prefix, team, board),
                f"{op.x}:{op.y}",
                op.value,
                str(op.clock),
                op.client,
                op.by,
                datetime.now(UTC).isoformat(),
                f"{nonce}.{n}",
                '"legacy"',
                "{}",
            )
        await pipe.execute()

-- KEYS: the group's reply key, then two per board: its board hash, its cells hash
-- ARGV: node JSON, history cap, reply ttl (ms), board count B, B channels, then per
--       request: board number (1..B), 's' (a cell.set) or 'b' (a cells.set), op count,
--       and seven per op: "x,y", value, clock, client, by, at, op JSON
-- One node's group of requests, merged in order in this one script (one round trip and
-- one AOF entry for them all). A request publishes what it did as it would alone: a
-- cell.set that won, one CellEvent; a batch, one CellsEvent for the ops that won.
-- Returns one line per request, joined by "\n": "{board version before it}:{flags}" with
-- a '1' (won) or '0' (lost) per op, "-1:" without the board, or "!{error}" when the
-- request raised (pcall: the requests after it still run, as if each were its own
-- script; Redis keeps a script's writes made before an error either way).
-- The reply is kept under KEYS[1]: a retry of a call whose reply was lost gets the first
-- run's answer instead of running again.
-- Needs compare.lua and merge.lua before it.
local done = redis.call('GET', KEYS[1])
if done then return done end
local node, keep, boards = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local versions = {}
for b = 1, boards do
  versions[b] = redis.call('HGET', KEYS[2 * b], 'version')
end

local function apply(b, single, first, last)
  local base = versions[b]
  if not base then return '-1:' end
  local board, cells = KEYS[2 * b], KEYS[2 * b + 1]
  local flags, won = {}, {}
  for i = first, last, 7 do
    local version = merge_op(board, cells, board .. ':h:' .. ARGV[i], keep, ARGV[i],
      ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], '')
    if version then
      versions[b] = version
      flags[#flags + 1] = '1'
      if single then
        redis.call('PUBLISH', ARGV[4 + b],
          '{"node":' .. node .. ',"version":' .. version .. ',"op":' .. ARGV[i + 6] .. '}')
      else
        won[#won + 1] = '{"version":' .. version .. ',"op":' .. ARGV[i + 6] .. '}'
      end
    else
      flags[#flags + 1] = '0'
    end
  end
  if #won > 0 and not single then
    redis.call('PUBLISH', ARGV[4 + b], '{"node":' .. node .. ',"cells":[' .. table.concat(won, ',') .. ']}')
  end
  return base .. ':' .. table.concat(flags)
end

local replies = {}
local i = 5 + boards
while i <= #ARGV do
  local count = tonumber(ARGV[i + 2])
  local first = i + 3
  local last = first + 7 * (count - 1)
  local ok, reply = pcall(apply, tonumber(ARGV[i]), ARGV[i + 1] == 's', first, last)
  if not ok then
    if type(reply) == 'table' then reply = reply.err end
    reply = '!' .. string.gsub(tostring(reply), '\n', ' ')
  end
  replies[#replies + 1] = reply
  i = first + 7 * count
end
local reply = table.concat(replies, '\n')
redis.call('SET', KEYS[1], reply, 'PX', ARGV[3])
return reply

-- KEYS: board hash, cells hash, the batch's reply key
-- ARGV: channel, node JSON, history key prefix, history cap, reply ttl (ms), then seven
--       per op: "x,y", value, clock, client, by, at, op JSON
-- Merges the ops in order, all in this one script, and publishes the winners as one
-- message. Returns {version before the batch, flags}: flags has one '1' (won) or '0'
-- (lost) per op; {-1, ''} without the board.
-- A retry of a call whose reply was lost finds the reply key and gets the first run's
-- answer (the batch's cells carry no nonce: it would not tell a batch's results apart).
-- Needs compare.lua and merge.lua before it.
local done = redis.call('GET', KEYS[3])
if done then
  local base, flags = string.match(done, '^(%d+):(.*)$')
  return {tonumber(base), flags}
end
local base = redis.call('HGET', KEYS[1], 'version')
if not base then return {-1, ''} end
local keep = tonumber(ARGV[4])
local flags, won = {}, {}
for i = 6, #ARGV, 7 do
  local version = merge_op(KEYS[1], KEYS[2], ARGV[3] .. ARGV[i], keep, ARGV[i],
    ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], '')
  if version then
    flags[#flags + 1] = '1'
    won[#won + 1] = '{"version":' .. version .. ',"op":' .. ARGV[i + 6] .. '}'
  else
    flags[#flags + 1] = '0'
  end
end
flags = table.concat(flags)
redis.call('SET', KEYS[3], base .. ':' .. flags, 'PX', ARGV[5])
if #won > 0 then
  redis.call('PUBLISH', ARGV[1], '{"node":' .. ARGV[2] .. ',"cells":[' .. table.concat(won, ',') .. ']}')
end
return {tonumber(base), flags}

-- KEYS: board hash, cells hash, the cell's history list
-- ARGV: channel, "x,y", value, clock, client, by, nonce, node JSON, op JSON, at, history cap
-- Returns {1, version} if the op won, {0, board version} if not, {-1, 0} without board.
-- Needs compare.lua and merge.lua before it.
local board_version = redis.call('HGET', KEYS[1], 'version')
if not board_version then return {-1, 0} end
local version, again = merge_op(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[11]), ARGV[2],
  ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[10], ARGV[7])
if not version then return {0, tonumber(board_version)} end
if not again then
  redis.call('PUBLISH', ARGV[1],
    '{"node":' .. ARGV[8] .. ',"version":' .. version .. ',"op":' .. ARGV[9] .. '}')
end
return {1, tonumber(version)}

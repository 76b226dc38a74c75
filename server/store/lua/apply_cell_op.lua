-- KEYS: board hash, cells hash
-- ARGV: channel, "x,y", value, clock, client, by, nonce, node JSON, op JSON
-- Returns {1, version} if the op won, {0, board version} if not, {-1, 0} without board.
local board_version = redis.call('HGET', KEYS[1], 'version')
if not board_version then return {-1, 0} end
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if cur then
  local version, clock, nonce, nc, nb, at = string.match(
    cur, '^(%d+),(-?%d+),([^,]*),(%d+),(%d+),()')
  -- This very call already ran: the reply was lost and the client retried.
  if nonce == ARGV[7] then return {1, tonumber(version)} end
  local client = string.sub(cur, at, at + tonumber(nc) - 1)
  local value = string.sub(cur, at + tonumber(nc) + tonumber(nb))
  local wins
  if ARGV[4] ~= clock then wins = int_lt(clock, ARGV[4])
  elseif ARGV[5] ~= client then wins = bytes_lt(client, ARGV[5])
  else wins = bytes_lt(value, ARGV[3]) end
  if not wins then return {0, tonumber(board_version)} end
end
local version = string.format('%d', redis.call('HINCRBY', KEYS[1], 'version', 1))
redis.call('HSET', KEYS[2], ARGV[2], version .. ',' .. ARGV[4] .. ',' .. ARGV[7] .. ','
  .. #ARGV[5] .. ',' .. #ARGV[6] .. ',' .. ARGV[5] .. ARGV[6] .. ARGV[3])
redis.call('PUBLISH', ARGV[1],
  '{"node":' .. ARGV[8] .. ',"version":' .. version .. ',"op":' .. ARGV[9] .. '}')
return {1, tonumber(version)}

-- KEYS: board hash, team's board index, teams set
-- ARGV: team, board id, title, width, height, created_by, token
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- Same token: this very call already created it and is being retried.
  if redis.call('HGET', KEYS[1], 'token') == ARGV[7] then return 1 end
  return 0
end
local now = redis.call('TIME')
local micros = tonumber(now[1]) * 1000000 + tonumber(now[2])
redis.call('HSET', KEYS[1], 'title', ARGV[3], 'width', ARGV[4], 'height', ARGV[5],
  'created_by', ARGV[6], 'created_at', string.format('%d', micros), 'version', 0,
  'token', ARGV[7])
redis.call('ZADD', KEYS[2], micros, ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1

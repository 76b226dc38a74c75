-- KEYS: session hash, the user's session index
-- ARGV: team, user, client_id, started_at, open ttl, start score, keep, index ttl,
--       session key prefix, session id
-- The index keeps the user's newest `keep` sessions; older ones are deleted with it.
redis.call('HSET', KEYS[1], 'team', ARGV[1], 'user', ARGV[2], 'client_id', ARGV[3],
  'started_at', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[10])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[7])
if excess > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
    redis.call('DEL', ARGV[9] .. old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
redis.call('EXPIRE', KEYS[2], ARGV[8])
return excess > 0 and excess or 0

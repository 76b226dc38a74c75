-- KEYS: session hash. ARGV: ended_at, has close code, close code, ttl seconds
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'ended_at', ARGV[1])
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'close_code', ARGV[3])
else redis.call('HDEL', KEYS[1], 'close_code') end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1

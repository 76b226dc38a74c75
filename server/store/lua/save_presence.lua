-- KEYS: user hash. ARGV: status, has activity, activity, last_seen, alive_at, now
-- An empty or earlier last_seen (or alive_at) keeps the stored one: every node writes the
-- team's view, and one node's may lag another's. Returns 0 for a user never recorded.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[6])
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'activity', ARGV[3])
else redis.call('HDEL', KEYS[1], 'activity') end
keep_latest(KEYS[1], 'last_seen', ARGV[4])
keep_latest(KEYS[1], 'alive_at', ARGV[5])
return 1

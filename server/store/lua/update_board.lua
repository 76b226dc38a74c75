-- KEYS: board hash. ARGV: title. Returns the board's fields, or nil without the board.
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
redis.call('HSET', KEYS[1], 'title', ARGV[1])
return redis.call('HMGET', KEYS[1], 'title', 'width', 'height', 'created_by', 'version')

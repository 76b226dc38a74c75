-- KEYS: board hash. ARGV: has title ('1'/'0'), title, default width, then (column, width)
-- pairs. Widths live in the board's `widths` field as a JSON object {"column": width},
-- merged here so two nodes changing different columns at once both keep theirs; a
-- column set to the default width is dropped. Returns the board's fields, or nil
-- without the board.
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'title', ARGV[2]) end
if #ARGV > 3 then
  local stored = redis.call('HGET', KEYS[1], 'widths')
  local widths = stored and cjson.decode(stored) or {}
  for i = 4, #ARGV, 2 do
    if ARGV[i + 1] == ARGV[3] then widths[ARGV[i]] = nil
    else widths[ARGV[i]] = tonumber(ARGV[i + 1]) end
  end
  if next(widths) == nil then redis.call('HDEL', KEYS[1], 'widths')
  else redis.call('HSET', KEYS[1], 'widths', cjson.encode(widths)) end
end
return redis.call('HMGET', KEYS[1], 'title', 'width', 'height', 'created_by', 'version',
  'widths')

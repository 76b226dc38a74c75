-- Moments are UTC ISO strings ("...+00:00", a fraction of 6 digits or none), so their
-- byte order is their time order: "12:00:00+00:00" < "12:00:00.5+00:00" since "+" < ".".
-- Needs compare.lua (bytes_lt) before it.
local function keep_latest(key, field, moment)
  if moment == '' then return end
  local stored = redis.call('HGET', key, field)
  if not stored or bytes_lt(stored, moment) then redis.call('HSET', key, field, moment) end
end

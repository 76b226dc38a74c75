-- KEYS: the board's layout-1 version index, its cells hash. ARGV: layout-1 cell key prefix
-- Moves one board's cells into its hash and deletes the old keys, in one step. A board
-- already moved has no index left, so running this again (or on two nodes) does nothing;
-- a field already in the hash was written after the move and is kept.
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local old = {}
for _, member in ipairs(members) do
  old[#old + 1] = ARGV[1] .. member
  local c = redis.call('HMGET', old[#old], 'value', 'clock', 'client', 'by', 'version')
  if c[1] then
    redis.call('HSETNX', KEYS[2], (string.gsub(member, ':', ',')), c[5] .. ',' .. c[2]
      .. ',,' .. #c[3] .. ',' .. #c[4] .. ',' .. c[3] .. c[4] .. c[1])
  end
  if #old == 1000 then
    redis.call('UNLINK', unpack(old))
    old = {}
  end
end
if #old > 0 then redis.call('UNLINK', unpack(old)) end
redis.call('UNLINK', KEYS[1])
return #members

-- KEYS: user hashes. ARGV: each one's alive_at, in order. Users never recorded are skipped.
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then keep_latest(key, 'alive_at', ARGV[i]) end
end
return 0

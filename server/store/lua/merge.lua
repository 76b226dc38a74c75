-- The last-writer-wins merge of one op into its board, for apply_cell_ops.lua, which
-- applies single ops and batches alike through it. Needs compare.lua before it.
--
-- A cell (a field of the cells hash) and a history entry are one string:
-- `{version}[@{at}],{clock},{nonce},{len(client)},{len(by)},{client}{by}{value}`, lengths in
-- bytes; `@{at}` (Unix ms) is absent when unknown, as in cells stored before it was kept.
-- History entries carry no nonce.
--
-- Returns the op's version (a decimal string) if it won, nil if it lost, and a second
-- value true when the cell already holds `nonce`: this very call ran before (its reply
-- was lost) and nothing was written now. apply_cell_ops.lua passes '' (no nonce): its
-- group's stored reply answers a retry instead.
local function merge_op(board, cells, history, keep, field, value, clock, client, by, at, nonce)
  local cur = redis.call('HGET', cells, field)
  if cur then
    local version, cur_clock, cur_nonce, nc, nb, from = string.match(
      cur, '^(%d+)@?%d*,(-?%d+),([^,]*),(%d+),(%d+),()')
    if nonce ~= '' and cur_nonce == nonce then return version, true end
    local cur_client = string.sub(cur, from, from + tonumber(nc) - 1)
    local wins
    if clock ~= cur_clock then wins = int_lt(cur_clock, clock)
    elseif client ~= cur_client then wins = bytes_lt(cur_client, client)
    else wins = bytes_lt(string.sub(cur, from + tonumber(nc) + tonumber(nb)), value) end
    if not wins then return nil end
  end
  local version = string.format('%d', redis.call('HINCRBY', board, 'version', 1))
  local head = version
  if at ~= '0' then head = version .. '@' .. at end
  local tail = ',' .. #client .. ',' .. #by .. ',' .. client .. by .. value
  redis.call('HSET', cells, field, head .. ',' .. clock .. ',' .. nonce .. tail)
  if redis.call('LPUSH', history, head .. ',' .. clock .. ',' .. tail) > keep then
    redis.call('LTRIM', history, 0, keep - 1)
  end
  return version
end

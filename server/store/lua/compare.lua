-- Lua's `<` on strings uses strcoll(), and redis-server calls setlocale(LC_COLLATE, ""),
-- so a string compare in a script depends on the server's locale. These helpers compare
-- bytes, which for UTF-8 is code point order, i.e. Python's str order.
local function bytes_lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local ca, cb = string.byte(a, i), string.byte(b, i)
    if ca ~= cb then return ca < cb end
  end
  return #a < #b
end

-- Clocks reach 2^62, beyond a Lua number's exact range, so they travel and compare as
-- canonical decimal strings (Python's str(int)).
local function int_lt(a, b)
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return na end
  if #a ~= #b then
    if na then return #a > #b end
    return #a < #b
  end
  if na then return bytes_lt(b, a) end
  return bytes_lt(a, b)
end

-- read_fields.lua: the state of each object of a field layout, in one round trip.
--
-- A field layout stores an object as several values (a hash per object, or one field
-- in each column hash). Its payload is the object's *state*: one string built here and,
-- identically, by the "hash"/"cols" guards of apply_write.lua, so that a write can
-- compare-and-set on what it read. Keep the two encoders identical.
--
-- KEYS: mode "hash": one object hash per pk (Distributed layout);
--       mode "cols": the column hashes, in the layout's field order (DistributedHash).
-- ARGV[1]: "hash" | "cols"; for "cols", ARGV[2..] are the pks.
-- Returns one state per pk, in order; false (a nil reply) when nothing is stored:
--   hash: the hash's fields sorted by name, each field and value "<byte length>:<bytes>"
--   cols: per column "<byte length>:<value>", or "-" when the column has no value

-- A cell of a state: "<byte length>:<bytes>", or "-" for no value.
local function cell(v)
  if v then return #v .. ':' .. v end
  return '-'
end

local out = {}
if ARGV[1] == 'hash' then
  for k, key in ipairs(KEYS) do
    local flat = redis.call('HGETALL', key)
    if #flat == 0 then
      out[k] = false
    else
      local at = {}
      for j = 1, #flat, 2 do at[#at + 1] = j end
      table.sort(at, function(a, b) return flat[a] < flat[b] end)
      local parts = {}
      for n, j in ipairs(at) do parts[n] = cell(flat[j]) .. cell(flat[j + 1]) end
      out[k] = table.concat(parts)
    end
  end
  return out
end

-- cols: one HMGET per column and slice of pks (HMGET's arguments go through unpack,
-- whose stack is limited), then one state per pk
local n = #ARGV - 1
local SLICE = 1000
local values = {}
for c, col in ipairs(KEYS) do
  local column = {}
  for first = 2, n + 1, SLICE do
    local last = math.min(first + SLICE - 1, n + 1)
    local part = redis.call('HMGET', col, unpack(ARGV, first, last))
    for j = 1, last - first + 1 do column[first - 2 + j] = part[j] end
  end
  values[c] = column
end
for p = 1, n do
  local parts, found = {}, false
  for c = 1, #KEYS do
    local v = values[c][p]
    if v then found = true end
    parts[c] = cell(v)
  end
  out[p] = found and table.concat(parts) or false
end
return out

-- read_fields.lua: the state of each object of a field layout, in one round trip.
--
-- A field layout stores an object as several values (a hash per object, or one field
-- in each column hash). Its payload is the object's *state*: one string built here and,
-- identically, by the "hash"/"cols" guards of apply_write.lua, so that a write can
-- compare-and-set on what it read. Keep the two encoders identical.
--
-- Modes (ARGV[1]):
--   "hash":   KEYS: one object hash per pk (Distributed layout). The whole state: the
--             hash's fields sorted by name, each field and value "<byte length>:<bytes>".
--   "fields": KEYS as "hash"; ARGV[2..] are hash field names. A partial read: one cell
--             per name asked for, in that order ("-" when the hash has no such field).
--   "cols":   KEYS: the column hashes (DistributedHash); ARGV[2] = n, ARGV[3..] the pks.
--             One cell per column of KEYS[1..n] ("-" when the column has no value);
--             KEYS[n+1..] are the model's other columns, only asked (HEXISTS) whether
--             they hold a pk for which KEYS[1..n] hold nothing, so that a partial read
--             still tells "stored" from "absent". A whole read passes every column as n.
-- Returns one state per pk, in order; false (a nil reply) when nothing is stored.

-- A cell of a state: "<byte length>:<bytes>", or "-" for no value.
local function cell(v)
  if v then return #v .. ':' .. v end
  return '-'
end

local out = {}
local mode = ARGV[1]
if mode == 'hash' then
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

if mode == 'fields' then
  for k, key in ipairs(KEYS) do
    if redis.call('EXISTS', key) == 0 then
      out[k] = false
    else
      local values = redis.call('HMGET', key, unpack(ARGV, 2))
      local parts = {}
      for j = 1, #ARGV - 1 do parts[j] = cell(values[j]) end
      out[k] = table.concat(parts)
    end
  end
  return out
end

-- cols: one HMGET per column and slice of pks (HMGET's arguments go through unpack,
-- whose stack is limited), then one state per pk
local wanted = tonumber(ARGV[2])
local n = #ARGV - 2
local SLICE = 1000
local values = {}
for c = 1, wanted do
  local column = {}
  for first = 3, n + 2, SLICE do
    local last = math.min(first + SLICE - 1, n + 2)
    local part = redis.call('HMGET', KEYS[c], unpack(ARGV, first, last))
    for j = 1, last - first + 1 do column[first - 3 + j] = part[j] end
  end
  values[c] = column
end
for p = 1, n do
  local parts, found = {}, false
  for c = 1, wanted do
    local v = values[c][p]
    if v then found = true end
    parts[c] = cell(v)
  end
  if not found then
    for c = wanted + 1, #KEYS do
      if redis.call('HEXISTS', KEYS[c], ARGV[p + 2]) == 1 then
        found = true
        break
      end
    end
  end
  out[p] = found and table.concat(parts) or false
end
return out

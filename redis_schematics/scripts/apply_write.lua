-- apply_write.lua: check every guard, then apply every operation, atomically.
--
-- Used for every write (set, delete, purge, index repair) so that an object and all its
-- index entries change together. Python computes the operations from the *stored* state
-- it read; the guards make sure that state is still what is stored, so a concurrent
-- writer can never leave an orphan or a missing index entry (compare-and-set).
--
-- KEYS: every key the guards and operations name (ARGV refers to them by position).
-- ARGV[1]: "1" = report a failed guard as an error reply (queued in a user's pipeline),
--          "0" = return it as data (the caller retries).
-- ARGV[2]: unused (was the deadline offset; MEMBER+ now carries its own).
-- ARGV[3]: number of guards G, then G groups of 4:
--          kind, key position, field, expected
--          kind "get":  GET key must equal expected ("\0" = key absent)
--          kind "hget": HGET key field must equal expected ("\0" = field absent)
--          kind "hash": the state of object hash key must equal expected ("\0" = absent)
--          kind "cols": key position is "p1,p2,..." (the column hashes); the state of
--                       pk field in those columns must equal expected ("\0" = absent)
--          (states: hash_state / columns_state below, as read_fields.lua returns them)
--          kind "uniq": HGET key field must be absent or equal expected (a pk)
--          kind "dead": ZSCORE key field must exist and be <= now (ms): still expired
-- then the number of operations O, then O groups: command, key position, argc, args...
--          SET HSET HDEL SADD SREM ZADD ZREM DEL  as in Redis
--          MEMBER+ member ms    ZADD key (now + ms) member: a deadline by server time
--          EXTEND ms            make the key live at least ms more
--          UNIQ- field pk       HDEL key field, only if its value is pk
-- Returns 1 when applied. Otherwise nothing is written and it returns every failed guard
-- as a flat list {guard number, current value or false, ...} (or, when ARGV[1] is "1",
-- an error reply starting "RSGUARD" for the first one).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ABSENT = '\0'
local PLAIN = {SET = true, HSET = true, HDEL = true, SADD = true, SREM = true,
               ZADD = true, ZREM = true, DEL = true}
local n_guards = tonumber(ARGV[3])
local i = 4

-- The state of an object stored as one hash (Distributed layout): its fields sorted by
-- name, each field and value as "<byte length>:<bytes>"; false when there is no hash.
-- Sorted so that the state depends on the content only. Same as in read_fields.lua.
local function hash_state(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return false end
  local at = {}
  for j = 1, #flat, 2 do at[#at + 1] = j end
  table.sort(at, function(a, b) return flat[a] < flat[b] end)
  local out = {}
  for n, j in ipairs(at) do
    out[n] = #flat[j] .. ':' .. flat[j] .. #flat[j + 1] .. ':' .. flat[j + 1]
  end
  return table.concat(out)
end

-- The state of pk in the column hashes (DistributedHash layout): per column, in order,
-- "<byte length>:<value>", or "-" when the column has no value for pk; false when no
-- column has one. Same as in read_fields.lua.
local function columns_state(cols, pk)
  local out, found = {}, false
  for c, col in ipairs(cols) do
    local v = redis.call('HGET', col, pk)
    if v then
      found = true
      out[c] = #v .. ':' .. v
    else
      out[c] = '-'
    end
  end
  if not found then return false end
  return table.concat(out)
end

local failures = {}
for g = 1, n_guards do
  local kind, where, field, expected = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local key = KEYS[tonumber(string.match(where, '^%d+'))]
  i = i + 4
  local current, ok
  if kind == 'get' then
    current = redis.call('GET', key)
    ok = (current == false and expected == ABSENT) or current == expected
  elseif kind == 'hget' then
    current = redis.call('HGET', key, field)
    ok = (current == false and expected == ABSENT) or current == expected
  elseif kind == 'hash' then
    current = hash_state(key)
    ok = (current == false and expected == ABSENT) or current == expected
  elseif kind == 'cols' then
    local cols = {}
    for p in string.gmatch(where, '%d+') do cols[#cols + 1] = KEYS[tonumber(p)] end
    current = columns_state(cols, field)
    ok = (current == false and expected == ABSENT) or current == expected
  elseif kind == 'uniq' then
    current = redis.call('HGET', key, field)
    ok = current == false or current == expected
  elseif kind == 'dead' then
    current = redis.call('ZSCORE', key, field)
    ok = current ~= false and tonumber(current) <= now
  else
    return redis.error_reply('RSBUG unknown guard ' .. tostring(kind))
  end
  if not ok then
    if ARGV[1] == '1' then
      return redis.error_reply('RSGUARD ' .. kind .. ' ' .. key .. ' ' .. field ..
        ': the stored data changed since it was read; nothing was written, retry the write')
    end
    failures[#failures + 1] = g
    failures[#failures + 1] = current
  end
end
if #failures > 0 then return failures end

local n_ops = tonumber(ARGV[i])
i = i + 1
for o = 1, n_ops do
  local cmd, key, argc = ARGV[i], KEYS[tonumber(ARGV[i + 1])], tonumber(ARGV[i + 2])
  local args = {}
  for a = 1, argc do args[a] = ARGV[i + 2 + a] end
  i = i + 3 + argc
  if cmd == 'MEMBER+' then
    redis.call('ZADD', key, now + tonumber(args[2]), args[1])
  elseif cmd == 'EXTEND' then
    local ms = tonumber(args[1])
    local ttl = redis.call('PTTL', key)
    if ttl ~= -2 and ttl < ms then redis.call('PEXPIRE', key, ms) end
  elseif cmd == 'UNIQ-' then
    if redis.call('HGET', key, args[1]) == args[2] then redis.call('HDEL', key, args[1]) end
  elseif PLAIN[cmd] then
    redis.call(cmd, key, unpack(args))
  else
    return redis.error_reply('RSBUG unknown operation ' .. tostring(cmd))
  end
end
return 1

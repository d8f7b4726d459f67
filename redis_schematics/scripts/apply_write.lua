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
-- ARGV[2]: position in KEYS of an idempotency token key, or "": when that key exists
--          the call was applied before (a resend after a lost reply): return 1 at once;
--          otherwise it is set (for 10 s) together with the write.
-- ARGV[3]: number of guards G, then G groups of 4:
--          kind, key position, field, expected
--          kind "get":  GET key must equal expected ("\0" = key absent)
--          kind "hget": HGET key field must equal expected ("\0" = field absent)
--          kind "hash": field is a list of cells (hash field names); with none, the
--                       state of object hash key must equal expected ("\0" = absent);
--                       with names (a partial write), the cells of just those fields
--                       (the hash must exist unless expected is "\0")
--          kind "cols": key position is "p1,p2,..." (the column hashes); field is a list
--                       of cells: the pk, then column numbers (1-based) to compare; the
--                       state of pk in the columns (or the cells of those columns) must
--                       equal expected ("\0" = absent)
--          (states: hash_state / columns_cells below, as read_fields.lua returns them;
--          a failed "hash"/"cols" guard reports the whole state, as a read would)
--          kind "uniq": HGET key field must be absent or equal expected (a pk)
--          kind "dead": ZSCORE key field must exist and be <= now (ms): still expired
-- then the number of operations O, then O groups: command, key position, argc, args...
--          SET HSET HDEL SADD SREM ZADD ZREM DEL  as in Redis
--          MEMBER+ member ms    ZADD key (now + ms) member: a deadline by server time
--          EXTEND ms            make the key live at least ms more
--          UNIQ- field pk       HDEL key field, only if its value is pk
--          SCHEMA m legacy f... create the Prefix#meta hash key when it is missing (see
--                               schema.py): "v" = 1, and when legacy is "0" and the
--                               members set (KEYS[m]) is empty, each field f = 1
--                               (complete); a no-op when the hash exists
--          SCHEMADROP m         DEL the Prefix#meta hash key when the members set
--                               KEYS[m] is empty and key says it is complete (the
--                               model is empty: its next write creates it afresh)
--          HSETIFEMPTY m f v... HSET key f v ..., only if the members set KEYS[m] is empty
--          PROBE                SETRANGE key 0 "" on a key that never exists: writes
--                               nothing, but Redis checks maxmemory at a script's first
--                               write and only for a command that can grow memory, so
--                               a write that deletes before it grows (DEL then HSET)
--                               starts with it and is refused whole ("OOM") at the limit
--                               under noeviction; one that only deletes still runs
-- Returns 1 when applied. Otherwise nothing is written and it returns every failed guard
-- as a flat list {guard number, current value or false, ...} (or, when ARGV[1] is "1",
-- an error reply for the first one: "RSUNIQUE" for a taken unique value, else "RSGUARD").

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ABSENT = '\0'
local PLAIN = {SET = true, HSET = true, HDEL = true, SADD = true, SREM = true,
               ZADD = true, ZREM = true, DEL = true}
local n_guards = tonumber(ARGV[3])
local i = 4

-- A cell of a state: "<byte length>:<bytes>", or "-" for no value.
local function cell(v)
  if v then return #v .. ':' .. v end
  return '-'
end

-- The strings of a list of cells written by Python (field names, a pk, column numbers).
local function split(text)
  local out, at = {}, 1
  while at <= #text do
    local colon = string.find(text, ':', at, true)
    local size = tonumber(string.sub(text, at, colon - 1))
    out[#out + 1] = string.sub(text, colon + 1, colon + size)
    at = colon + size + 1
  end
  return out
end

-- The state of an object stored as one hash (Distributed layout): its fields sorted by
-- name, each field and value as a cell; false when there is no hash. Sorted so that the
-- state depends on the content only. Same as in read_fields.lua.
local function hash_state(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return false end
  local at = {}
  for j = 1, #flat, 2 do at[#at + 1] = j end
  table.sort(at, function(a, b) return flat[a] < flat[b] end)
  local out = {}
  for n, j in ipairs(at) do out[n] = cell(flat[j]) .. cell(flat[j + 1]) end
  return table.concat(out)
end

-- The cells of pk in the column hashes (DistributedHash layout), one per column in
-- order, and whether any column holds pk. The state is their concatenation (false when
-- no column holds pk). Same as in read_fields.lua.
local function columns_cells(cols, pk)
  local out, found = {}, false
  for c, col in ipairs(cols) do
    local v = redis.call('HGET', col, pk)
    if v then found = true end
    out[c] = cell(v)
  end
  return out, found
end

local once = nil
if ARGV[2] ~= '' then
  once = KEYS[tonumber(ARGV[2])]
  if redis.call('EXISTS', once) == 1 then return 1 end
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
    local names = split(field)
    if #names == 0 then
      current = hash_state(key)
      ok = (current == false and expected == ABSENT) or current == expected
    else
      -- a partial write compares only the fields it writes: writers of other fields
      -- do not make it fail
      local sub = false
      if redis.call('EXISTS', key) == 1 then
        local parts = {}
        for n, v in ipairs(redis.call('HMGET', key, unpack(names))) do parts[n] = cell(v) end
        sub = table.concat(parts)
      end
      ok = (sub == false and expected == ABSENT) or sub == expected
      if not ok then current = hash_state(key) end
    end
  elseif kind == 'cols' then
    local cols = {}
    for p in string.gmatch(where, '%d+') do cols[#cols + 1] = KEYS[tonumber(p)] end
    local args = split(field)
    local cells, found = columns_cells(cols, args[1])
    current = found and table.concat(cells) or false
    local sub = current
    if #args > 1 and found then  -- a partial write: just the columns it writes
      local parts = {}
      for a = 2, #args do parts[a - 1] = cells[tonumber(args[a])] end
      sub = table.concat(parts)
    end
    ok = (sub == false and expected == ABSENT) or sub == expected
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
      if kind == 'uniq' then
        return redis.error_reply('RSUNIQUE ' .. key .. ' ' .. field .. ' already belongs to ' ..
          tostring(current) .. ', not ' .. expected .. ': nothing was written')
      end
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
  elseif cmd == 'SCHEMA' then
    if redis.call('EXISTS', key) == 0 then
      redis.call('HSET', key, 'v', '1')
      if args[2] == '0' and redis.call('EXISTS', KEYS[tonumber(args[1])]) == 0 then
        for a = 3, argc do redis.call('HSET', key, args[a], '1') end
      end
    end
  elseif cmd == 'SCHEMADROP' then
    if redis.call('EXISTS', KEYS[tonumber(args[1])]) == 0 and redis.call('HGET', key, 'members') == '1' then
      redis.call('DEL', key)
    end
  elseif cmd == 'HSETIFEMPTY' then
    if redis.call('EXISTS', KEYS[tonumber(args[1])]) == 0 then
      redis.call('HSET', key, unpack(args, 2))
    end
  elseif cmd == 'PROBE' then
    redis.call('SETRANGE', key, 0, '')
  elseif PLAIN[cmd] then
    redis.call(cmd, key, unpack(args))
  else
    return redis.error_reply('RSBUG unknown operation ' .. tostring(cmd))
  end
end
if once then redis.call('SET', once, '1', 'PX', 10000) end
return 1

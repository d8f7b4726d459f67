-- run_query.lua: answer the indexed part of a query on the server, in one round trip.
--
-- A query is a list of steps (one per indexed condition). A step is a disjunction of
-- atoms, optionally negated as a whole; an atom asks one index about one pk:
--   S key          the pk is in SET key                  (EqualityIndex)
--   Z key lo hi    the pk's score in ZSET key is in range (RangeIndex; "(" = exclusive)
--   U key lo       HASH key maps value token lo to the pk  (UniqueIndex)
-- and may itself be negated (Z -inf +inf negated = "field is None" on a RangeIndex).
--
-- The most selective positive step (estimated with SCARD / ZCOUNT) generates the
-- candidates; every other step is probed per candidate (SISMEMBER / ZSCORE), so the
-- cost is O(C * K) for C candidates and K steps, whatever the model's size. With no
-- positive step the candidates are the members set. No temporary key is written. An
-- ordered page on one order key walks the order index instead while that is cheaper
-- (see walk below).
--
-- KEYS[1]: the model's members key (SET; ZSET pk -> deadline ms for expiring models)
-- KEYS[2..]: index keys, referred to by position
-- ARGV: expiring ("1"/"0"), mode ("count" | "pks"), offset, limit (-1 = all),
--       n_order, then n_order pairs (key position, "1" if descending),
--       n_steps, then per step: negated ("1"/"0"), n_atoms, then per atom:
--       kind, negated, key position, lo, hi
-- Returns for "count": {count, expired_seen}
--         for "pks":   {expired_seen, skipped, pk...}: the page ordered by the order keys'
--         scores (missing score first), widened to whole groups of equal scores so the
--         caller can re-sort exactly; skipped = rows before the first pk returned.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local members = KEYS[1]
local expiring = ARGV[1] == '1'
local mode = ARGV[2]
local offset, limit = tonumber(ARGV[3]), tonumber(ARGV[4])

local i = 5
local order = {}
for o = 1, tonumber(ARGV[i]) do
  order[o] = {key = KEYS[tonumber(ARGV[i + 1])], desc = ARGV[i + 2] == '1'}
  i = i + 2
end
i = i + 1

local function parse_bound(text)
  if text == '-inf' then return -math.huge, false end
  if text == '+inf' then return math.huge, false end
  if string.sub(text, 1, 1) == '(' then return tonumber(string.sub(text, 2)), true end
  return tonumber(text), false
end

local steps = {}
local n_steps = tonumber(ARGV[i])
i = i + 1
for s = 1, n_steps do
  local step = {neg = ARGV[i] == '1', atoms = {}}
  local n_atoms = tonumber(ARGV[i + 1])
  i = i + 2
  for a = 1, n_atoms do
    local atom = {kind = ARGV[i], neg = ARGV[i + 1] == '1', key = KEYS[tonumber(ARGV[i + 2])],
                  lo = ARGV[i + 3], hi = ARGV[i + 4]}
    if atom.kind == 'Z' then
      atom.lo_v, atom.lo_x = parse_bound(atom.lo)
      atom.hi_v, atom.hi_x = parse_bound(atom.hi)
    end
    step.atoms[a] = atom
    i = i + 5
  end
  steps[s] = step
end

local function atom_holds(atom, pk)
  local hit
  if atom.kind == 'S' then
    hit = redis.call('SISMEMBER', atom.key, pk) == 1
  elseif atom.kind == 'U' then
    hit = redis.call('HGET', atom.key, atom.lo) == pk
  else
    local sc = redis.call('ZSCORE', atom.key, pk)
    if sc == false then
      hit = false
    else
      sc = tonumber(sc)
      hit = (sc > atom.lo_v or (sc == atom.lo_v and not atom.lo_x))
        and (sc < atom.hi_v or (sc == atom.hi_v and not atom.hi_x))
    end
  end
  return hit ~= atom.neg
end

local function step_holds(step, pk)
  local any = false
  for _, atom in ipairs(step.atoms) do
    if atom_holds(atom, pk) then any = true; break end
  end
  return any ~= step.neg
end

-- Is pk alive (always, on a model that never expires)? The second value is 1 when it is
-- listed but past its deadline (counted, so that the caller purges), else 0.
local function alive(pk)
  if not expiring then return true, 0 end
  local deadline = redis.call('ZSCORE', members, pk)
  if deadline == false then return false, 0 end
  if tonumber(deadline) <= now then return false, 1 end
  return true, 0
end

-- Choose the generator: the positive step with no negated atom and the fewest pks.
local best, best_size = nil, nil
for s, step in ipairs(steps) do
  local usable = not step.neg
  for _, atom in ipairs(step.atoms) do if atom.neg then usable = false end end
  if usable then
    local size = 0
    for _, atom in ipairs(step.atoms) do
      if atom.kind == 'S' then
        size = size + redis.call('SCARD', atom.key)
      elseif atom.kind == 'U' then
        size = size + redis.call('HEXISTS', atom.key, atom.lo)
      else
        size = size + redis.call('ZCOUNT', atom.key, atom.lo, atom.hi)
      end
    end
    if best == nil or size < best_size then best, best_size = s, size end
  end
end

-- One step on a model that never expires: its atoms are disjoint (one value per field),
-- so their sizes add up to the exact count without visiting a single pk.
if mode == 'count' and not expiring and #steps == 1 and best ~= nil then
  return {best_size, 0}
end

-- An ordered page on one order key (the usual "newest 20 of these"): walk the order index
-- from its start, probing each pk against every step, and stop once the page and the
-- group of equal scores at its end are complete. That costs O(rows walked) instead of
-- scoring and sorting every candidate, which for a common value (400k candidates) held
-- Redis for seconds. The walk gives up after as many probes as there are candidates
-- (then the candidates are scored as below: at most twice the work). Rows with no score
-- (None) sort first ascending, last descending and are not in the order index: an
-- ascending walk needs every member to have a score (same cardinality), and a walk that
-- runs out of scores before the page is full falls back.
local function walk(spec, need, budget)
  local rows, row_score = {}, {}
  local expired, probes, pos, chunk = 0, 0, 0, math.max(32, 2 * need)
  local last_score = nil
  while true do
    local part
    if spec.desc then
      part = redis.call('ZREVRANGE', spec.key, pos, pos + chunk - 1, 'WITHSCORES')
    else
      part = redis.call('ZRANGE', spec.key, pos, pos + chunk - 1, 'WITHSCORES')
    end
    if #part == 0 then
      if #rows < need and spec.desc then return nil end  -- the rest have no score
      return rows, row_score, expired
    end
    for j = 1, #part, 2 do
      local pk, sc = part[j], tonumber(part[j + 1])
      if #rows >= need and sc ~= last_score then return rows, row_score, expired end
      probes = probes + 1
      local keep, gone = alive(pk)
      expired = expired + gone
      if keep then
        for _, step in ipairs(steps) do
          if not step_holds(step, pk) then keep = false; break end
        end
      end
      if keep then
        rows[#rows + 1] = pk
        row_score[#rows] = sc
        last_score = sc
      end
    end
    if probes > budget then return nil end
    pos = pos + chunk
    chunk = math.min(2 * chunk, 1024)
  end
end

if mode == 'pks' and #order == 1 and limit >= 0 then
  local card = expiring and redis.call('ZCARD', members) or redis.call('SCARD', members)
  local spec = order[1]
  if spec.desc or redis.call('ZCARD', spec.key) == card then
    local rows, row_score, expired = walk(spec, offset + limit, best_size or card)
    if rows ~= nil then
      local first, last = offset + 1, math.min(offset + limit, #rows)
      if first <= last then
        while first > 1 and row_score[first - 1] == row_score[first] do first = first - 1 end
        last = #rows  -- the walk stopped at the end of the last row's group
      end
      local out = {expired, first - 1}
      for k = first, last do out[#out + 1] = rows[k] end
      return out
    end
  end
end

local candidates = {}
if best == nil then
  if expiring then
    candidates = redis.call('ZRANGE', members, '-inf', '+inf', 'BYSCORE')
  else
    candidates = redis.call('SMEMBERS', members)
  end
else
  local seen = {}
  for _, atom in ipairs(steps[best].atoms) do
    local found
    if atom.kind == 'S' then
      found = redis.call('SMEMBERS', atom.key)
    elseif atom.kind == 'U' then
      local owner = redis.call('HGET', atom.key, atom.lo)
      found = owner and {owner} or {}
    else
      found = redis.call('ZRANGE', atom.key, atom.lo, atom.hi, 'BYSCORE')
    end
    for _, pk in ipairs(found) do
      if not seen[pk] then seen[pk] = true; candidates[#candidates + 1] = pk end
    end
  end
end

local result, expired_seen = {}, 0
for _, pk in ipairs(candidates) do
  local keep, gone = alive(pk)
  expired_seen = expired_seen + gone
  if keep then
    for s, step in ipairs(steps) do
      if s ~= best and not step_holds(step, pk) then keep = false; break end
    end
  end
  if keep then result[#result + 1] = pk end
end

if mode == 'count' then return {#result, expired_seen} end

-- Order by each order key's score (a missing score sorts first). With no order key
-- every candidate is returned: the caller sorts by pk and pages.
local scores = {}
if #order > 0 then
  for _, pk in ipairs(result) do
    local row = {}
    for o, spec in ipairs(order) do
      local sc = redis.call('ZSCORE', spec.key, pk)
      row[o] = sc and tonumber(sc) or false
    end
    scores[pk] = row
  end
end

local function cmp_scores(a, b)
  -- -1, 0, 1 comparing the score rows of pks a and b, honouring descending keys
  local ra, rb = scores[a], scores[b]
  for o, spec in ipairs(order) do
    local x, y = ra[o], rb[o]
    if x ~= y then
      local less
      if x == false then less = true elseif y == false then less = false else less = x < y end
      if spec.desc then less = not less end
      return less and -1 or 1
    end
  end
  return 0
end

local first, last = 1, #result
if #order > 0 then
  table.sort(result, function(a, b) return cmp_scores(a, b) < 0 end)
  if offset + 1 > first then first = offset + 1 end
  if limit >= 0 and offset + limit < last then last = offset + limit end
  if first <= last then
    -- widen to whole groups of equal scores: the caller orders inside a group exactly
    -- (exact values, then pk), which Lua cannot do (its string order follows the locale)
    while first > 1 and cmp_scores(result[first - 1], result[first]) == 0 do
      first = first - 1
    end
    while last < #result and cmp_scores(result[last], result[last + 1]) == 0 do
      last = last + 1
    end
  end
end
local out = {expired_seen, first - 1}
for k = first, last do out[#out + 1] = result[k] end
return out

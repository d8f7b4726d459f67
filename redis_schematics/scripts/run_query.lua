-- run_query.lua: answer the indexed part of a query on the server, a bounded piece per call.
--
-- A query is a list of steps (one per indexed condition). A step is a disjunction of
-- atoms, optionally negated as a whole; an atom asks one index about one pk:
--   S key          the pk is in SET key                  (EqualityIndex)
--   Z key lo hi    the pk's score in ZSET key is in range (RangeIndex; "(" = exclusive)
--   U key lo       HASH key maps value token lo to the pk  (UniqueIndex)
-- and may itself be negated (Z -inf +inf negated = "field is None" on a RangeIndex).
--
-- The most selective positive step (estimated with SCARD / ZCOUNT) generates the
-- candidates; every other step is probed per candidate (SISMEMBER / ZSCORE), so the cost
-- is O(C * K) for C candidates and K steps, whatever the model's size. With no positive
-- step the candidates are the members set. No key is written.
--
-- No call runs long whatever the data size: each call does at most `budget` units of
-- work, a unit being one pk read or one probe (a candidate of an expiring model probed
-- against two more steps costs 1 + 1 + 2), and returns a cursor the caller sends back for the
-- next piece ("" = start; a reply cursor "" = finished). A cursor names where the walk
-- stands: for a SET an SSCAN cursor, for a ZSET the last pk visited and its score (the
-- next call resumes after that pk, or at that score when it has moved). So an object
-- present throughout is visited at least once, and the caller drops repeats by pk.
--
-- KEYS[1]: the model's members key (SET; ZSET pk -> deadline ms for expiring models)
-- KEYS[2..]: index keys, referred to by position
-- ARGV: expiring ("1"/"0"), mode, budget, cursor, need, last, spent,
--       n_order, then n_order pairs (key position, "1" if descending),
--       n_steps, then per step: negated ("1"/"0"), n_atoms, then per atom:
--       kind, negated, key position, lo, hi
-- Modes and replies (expired = listed pks found past their deadline, for the caller to
-- purge; estimate = the generator's size):
--   "count":  {expired, cursor, estimate, n, pk...}: n = the exact count when the call
--             finished from the start (no pk listed), else -1 and the matching pks seen.
--   "pks":    {expired, cursor, estimate, pk...}: the matching pks of this piece.
--   "scores": {expired, cursor, estimate, n_order, (pk, score...)...}: each matching pk
--             with its score under every order key ("" for none).
--   "walk":   an ordered page on one order key (ARGV's first): walk that index in order,
--             probing each pk against every step, until `need` matching rows are found
--             and the group of equal scores at the end is complete (`last` = the score
--             of the caller's last row so far, "" for none; `spent` = probes so far).
--             {expired, cursor, estimate, status, probes, (pk, score)...}: status
--             "more" (call again), "full" (page complete), "end" (index exhausted),
--             "no" (some member has no score and the walk is ascending: None sorts first,
--             so the index cannot give the page), "costly" (the walk has probed as many
--             pks as there are candidates: score the candidates instead) or "scored"
--             (that, done in this call: the pairs are every matching candidate, "" for
--             no score).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local members = KEYS[1]
local expiring = ARGV[1] == '1'
local mode = ARGV[2]
local budget = tonumber(ARGV[3])
local cursor = ARGV[4]
local need = tonumber(ARGV[5])
local last = ARGV[6]
local spent = tonumber(ARGV[7])

local i = 8
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

local function in_range(atom, sc)
  return (sc > atom.lo_v or (sc == atom.lo_v and not atom.lo_x))
    and (sc < atom.hi_v or (sc == atom.hi_v and not atom.hi_x))
end

local function atom_holds(atom, pk)
  local hit
  if atom.kind == 'S' then
    hit = redis.call('SISMEMBER', atom.key, pk) == 1
  elseif atom.kind == 'U' then
    hit = redis.call('HGET', atom.key, atom.lo) == pk
  else
    local sc = redis.call('ZSCORE', atom.key, pk)
    hit = sc ~= false and in_range(atom, tonumber(sc))
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

-- Does pk pass every step but `skip` (the generator's, which it passed already)?
local function passes(pk, skip)
  for s, step in ipairs(steps) do
    if s ~= skip and not step_holds(step, pk) then return false end
  end
  return true
end

-- The generator: the positive step with no negated atom and the fewest pks.
local best, estimate = nil, nil
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
    if best == nil or size < estimate then best, estimate = s, size end
  end
end
local sources
if best == nil then
  sources = {expiring and {kind = 'Z', key = members, lo = '-inf', hi = '+inf'}
                      or {kind = 'S', key = members}}
  estimate = expiring and redis.call('ZCARD', members) or redis.call('SCARD', members)
else
  sources = steps[best].atoms
end

-- The rank after ZSET position (score sc, member pk): after pk when it still has that
-- score, else the first rank at score sc (a few pks may come again; callers drop repeats).
local function rank_after(key, sc, pk, desc)
  local now_sc = redis.call('ZSCORE', key, pk)
  if now_sc ~= false and tonumber(now_sc) == tonumber(sc) then
    return (desc and redis.call('ZREVRANK', key, pk) or redis.call('ZRANK', key, pk)) + 1
  end
  if desc then return redis.call('ZCOUNT', key, '(' .. sc, '+inf') end
  return redis.call('ZCOUNT', key, '-inf', '(' .. sc)
end

-- The first rank of a ZSET range starting at bound lo.
local function first_rank(key, lo)
  if lo == '-inf' then return 0 end
  if string.sub(lo, 1, 1) == '(' then return redis.call('ZCOUNT', key, '-inf', string.sub(lo, 2)) end
  return redis.call('ZCOUNT', key, '-inf', '(' .. lo)
end

-- The pks one call may visit: `budget` units over each pk's read and probes.
local per_pk = 1 + (expiring and 1 or 0) + math.max(0, #steps - (best and 1 or 0))
  + (mode == 'scores' and #order or 0)
local visits = math.max(1, math.floor(budget / per_pk))
local walk_visits = math.max(1, math.floor(budget / (1 + (expiring and 1 or 0) + #steps)))

-- Visit up to `visits` generator pks from `cursor`, calling visit(pk) on each new one;
-- returns the cursor to send back ("" when every source is done).
local function each_candidate(visit)
  local s, inner = 1, nil
  if cursor ~= '' then
    local p = string.find(cursor, '|', 1, true)
    s, inner = tonumber(string.sub(cursor, 1, p - 1)), string.sub(cursor, p + 1)
    if inner == '' then inner = nil end
  end
  local seen, visited = {}, 0
  while s <= #sources do
    local src = sources[s]
    local finished, resume = false, nil
    if src.kind == 'U' then
      local owner = redis.call('HGET', src.key, src.lo)
      if owner and not seen[owner] then seen[owner] = true; visit(owner) end
      visited, finished = visited + 1, true
    elseif src.kind == 'S' then
      local reply = redis.call('SSCAN', src.key, inner or '0', 'COUNT', visits - visited)
      for _, pk in ipairs(reply[2]) do
        if not seen[pk] then seen[pk] = true; visit(pk) end
      end
      visited = visited + #reply[2]
      finished, resume = reply[1] == '0', reply[1]
    else
      -- the range is ranks [start, stop) (two O(log N) counts); read no further
      local start = first_rank(src.key, src.lo)
      local stop = start + redis.call('ZCOUNT', src.key, src.lo, src.hi)
      local rank = start
      if inner ~= nil then
        local p = string.find(inner, '|', 1, true)
        rank = rank_after(src.key, string.sub(inner, 1, p - 1), string.sub(inner, p + 1), false)
      end
      local want = math.min(math.max(1, visits - visited), stop - rank)
      local part = {}
      if want > 0 then part = redis.call('ZRANGE', src.key, rank, rank + want - 1, 'WITHSCORES') end
      finished = rank + want >= stop
      for j = 1, #part, 2 do
        local pk, sc = part[j], part[j + 1]
        if not seen[pk] then seen[pk] = true; visit(pk) end
        visited = visited + 1
        resume = sc .. '|' .. pk
      end
    end
    if finished then
      s, inner = s + 1, nil
    else
      return s .. '|' .. resume
    end
    if visited >= visits and s <= #sources then return s .. '|' end
  end
  return ''
end

-- One step on a model that never expires: its atoms are disjoint (one value per field),
-- so their sizes add up to the exact count without visiting a single pk.
if mode == 'count' and not expiring and #steps == 1 and best ~= nil then
  return {0, '', estimate, estimate}
end

local expired, found = 0, {}
local n_order = #order
local function visit(pk)
  local keep, gone = alive(pk)
  expired = expired + gone
  if keep and passes(pk, best) then
    found[#found + 1] = pk
    if mode == 'scores' then
      for _, spec in ipairs(order) do
        local sc = redis.call('ZSCORE', spec.key, pk)
        found[#found + 1] = sc or ''
      end
    end
  end
end
if mode == 'walk' then
  local spec = order[1]
  local card = expiring and redis.call('ZCARD', members) or redis.call('SCARD', members)
  if not spec.desc and redis.call('ZCARD', spec.key) ~= card then
    return {0, '', estimate, 'no', 0}
  end
  local rank = 0
  if cursor ~= '' then
    local p = string.find(cursor, '|', 1, true)
    rank = rank_after(spec.key, string.sub(cursor, 1, p - 1), string.sub(cursor, p + 1), spec.desc)
  end
  local out = {0, '', estimate, 'more', 0}
  local probes = 0
  local last_score = last ~= '' and tonumber(last) or nil
  local allowed = math.min(walk_visits, estimate - spent + 1)
  while probes < allowed do
    local want = math.min(allowed - probes, math.max(32, 2 * need))
    local part
    if spec.desc then
      part = redis.call('ZREVRANGE', spec.key, rank, rank + want - 1, 'WITHSCORES')
    else
      part = redis.call('ZRANGE', spec.key, rank, rank + want - 1, 'WITHSCORES')
    end
    for j = 1, #part, 2 do
      local pk, sc = part[j], part[j + 1]
      local score = tonumber(sc)
      if need <= 0 and score ~= last_score then
        out[1], out[4], out[5] = expired, 'full', probes
        return out
      end
      probes = probes + 1
      out[2] = sc .. '|' .. pk
      local keep, gone = alive(pk)
      expired = expired + gone
      if keep and passes(pk, nil) then
        out[#out + 1] = pk
        out[#out + 1] = sc
        need, last_score = need - 1, score
      end
    end
    if #part < 2 * want then
      out[1], out[2], out[4], out[5] = expired, '', need <= 0 and 'full' or 'end', probes
      return out
    end
    rank = rank + want
  end
  if probes >= estimate - spent + 1 then  -- the walk costs more than scoring the candidates
    if cursor ~= '' or estimate > visits - probes then
      out[1], out[4], out[5] = expired, 'costly', probes
      return out
    end
    mode = 'scores'
    each_candidate(visit)
    local scored = {expired, '', estimate, 'scored', probes}
    for _, v in ipairs(found) do scored[#scored + 1] = v end
    return scored
  end
  out[1], out[5] = expired, probes
  return out
end

local next_cursor = each_candidate(visit)

if mode == 'count' then
  if cursor == '' and next_cursor == '' then return {expired, '', estimate, #found} end
  local out = {expired, next_cursor, estimate, -1}
  for _, pk in ipairs(found) do out[#out + 1] = pk end
  return out
end
local out = {expired, next_cursor, estimate}
if mode == 'scores' then out[4] = n_order end
for _, v in ipairs(found) do out[#out + 1] = v end
return out

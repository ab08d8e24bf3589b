-- list_jobs: one page of jobs, id descending, with Minion's filters (ANDed; each list "any of")
-- and a total that ignores offset and limit (0 when the page is empty, as in Minion). Inactive
-- jobs that have expired are hidden.
-- Cost, bounded by the request and the page, never by the store:
--   * state, queue and task filters, in any mix, map onto K sorted sets scored by id, one per
--     combination of wanted values that holds jobs, from the index of exactly the dimensions
--     filtered (jobs, state, queue, task, sq, st, qt, sqt; see index_keys). The
--     total is a sum of ZCOUNTs. The page's first and last ids are found by a search over ids
--     on sums of ZCOUNTs (offsets never walk; see select) and the page is read between them:
--     O(K · log n · rounds + page), a few rounds usually, log(ids) at worst;
--   * expired inactive jobs are subtracted one by one: at most EXPIRED_BUDGET (repair deletes
--     them), else the error EXPIRED_BACKLOG;
--   * a notes filter is exact through the index for one key alone; with more keys or other
--     filters the candidates of the smaller side (the note indexes or the sets above) are
--     examined one by one, at most NOTES_BUDGET, else the error TOO_BROAD;
--   * ids are examined one by one (bounded by the request).
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  offset
-- ARGV[2]  limit
-- ARGV[3]  before (only ids lower), or ""
-- ARGV[4..8] JSON arrays: ids, notes (keys), queues, states, tasks
-- Returns  {total, now, row...}; row = {id, job hash, notes hash, children}, each joined by
--          "\31" (unit separator) into one string: one reply element instead of ~30 per row,
--          safe because JSON text, validated names and note keys never hold control characters.
--          Errors (mapped in broker/store.py): "TOO_BROAD ...", "EXPIRED_BACKLOG ...".
local NOTES_BUDGET = 10000
local EXPIRED_BUDGET = 10000
local READ_ALL = 1000  -- a search window holding at most this many ids (+4 a set) is read whole
local STATES = {'inactive', 'active', 'failed', 'finished'}

local offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local before = tonumber(ARGV[3])
local now = now_time()
local max = before and ('(' .. istr(before)) or '+inf'

-- A filter list without repeats (a repeated value would count its jobs twice) and its set.
local function filter(json)
  local list, set = {}, {}
  for _, v in ipairs(cjson.decode(json)) do
    if not set[v] then
      set[v] = true
      list[#list + 1] = v
    end
  end
  return list, set
end
local ids = cjson.decode(ARGV[4])
local notes, note_set = filter(ARGV[5])
local queues, queue_set = filter(ARGV[6])
local states, state_set = filter(ARGV[7])
local tasks, task_set = filter(ARGV[8])

local function has_note(id)
  if #notes <= 4 then
    for _, key in ipairs(notes) do
      if redis.call('HEXISTS', notes_key(id), key) == 1 then return true end
    end
    return false
  end
  for _, key in ipairs(redis.call('HKEYS', notes_key(id))) do
    if note_set[key] then return true end
  end
  return false
end

-- Whether job `id` exists, is visible and matches the filters (job fields f when read already;
-- skip_notes: known to have a note key asked for).
local function matches(id, f, skip_notes)
  f = f or redis.call('HMGET', job_key(id), 'state', 'queue', 'task', 'expires')
  if not f[1] then return false end
  local expires = tonumber(f[4])
  if f[1] == 'inactive' and expires and expires <= now then return false end
  if #states > 0 and not state_set[f[1]] then return false end
  if #queues > 0 and not queue_set[f[2]] then return false end
  if #tasks > 0 and not task_set[f[3]] then return false end
  return #notes == 0 or skip_notes or has_note(id)
end

-- The sorted sets whose union is exactly the jobs matching the state, queue and task filters:
-- the index of the dimensions filtered (jobs, state, queue, task, sq, st, qt or sqt) for each
-- combination of values that holds jobs. A filter naming every value in use filters nothing
-- and is left out (all four states; every queue or task with jobs; every queue of the tasks
-- asked for, or every task of the queues asked for).
local function in_use(list, registry)
  local live = {}
  for _, v in ipairs(list) do
    if redis.call('SISMEMBER', P .. registry, v) == 1 then live[#live + 1] = v end
  end
  return live, #live == redis.call('SCARD', P .. registry)
end
local function index_keys()
  local s = #states > 0 and #states < #STATES
  local live_queues, all_queues = in_use(queues, 'live_queues')
  local live_tasks, all_tasks = in_use(tasks, 'live_tasks')
  local q = #queues > 0 and not all_queues
  local t = #tasks > 0 and not all_tasks
  local keys = {}
  local function add(key) keys[#keys + 1] = key end
  -- (queue, task) pairs holding jobs, enumerated from whichever side costs least.
  local pairs_ = {}
  if q and t then
    local by_queue, by_task = 0, 0
    for _, v in ipairs(live_queues) do
      by_queue = by_queue + redis.call('SCARD', P .. 'queue_tasks:' .. v)
    end
    for _, w in ipairs(live_tasks) do
      by_task = by_task + redis.call('SCARD', P .. 'task_queues:' .. w)
    end
    if #live_queues * #live_tasks <= math.min(by_queue, by_task) then
      for _, v in ipairs(live_queues) do
        for _, w in ipairs(live_tasks) do
          if redis.call('HEXISTS', P .. 'qt_jobs', #v .. ':' .. v .. ':' .. w) == 1 then
            pairs_[#pairs_ + 1] = {v, w}
          end
        end
      end
    elseif by_queue <= by_task then
      for _, v in ipairs(live_queues) do
        for _, w in ipairs(redis.call('SMEMBERS', P .. 'queue_tasks:' .. v)) do
          if task_set[w] then pairs_[#pairs_ + 1] = {v, w} end
        end
      end
    else
      for _, w in ipairs(live_tasks) do
        for _, v in ipairs(redis.call('SMEMBERS', P .. 'task_queues:' .. w)) do
          if queue_set[v] then pairs_[#pairs_ + 1] = {v, w} end
        end
      end
    end
    -- Every task of these queues asked for: the task filter adds nothing (or the other way
    -- round; never both dropped, the pairs still filter).
    if #pairs_ == by_queue then
      t = false
    elseif #pairs_ == by_task then
      q = false
    end
  end
  for _, v in ipairs(s and states or {false}) do
    if q and t then
      for _, pair in ipairs(pairs_) do
        add(v and sqt_key(v, pair[1], pair[2]) or qt_key(pair[1], pair[2]))
      end
    elseif q then
      for _, w in ipairs(live_queues) do add(v and sq_key(v, w) or P .. 'queue:' .. w) end
    elseif t then
      for _, w in ipairs(live_tasks) do add(v and st_key(v, w) or P .. 'task:' .. w) end
    else
      add(v and P .. 'state:' .. v or P .. 'jobs')
    end
  end
  return keys
end

local function answer(total, page)
  if #page == 0 then total = 0 end  -- Minion's quirk
  local out = {total, tstr(now)}
  for _, id in ipairs(page) do
    out[#out + 1] = {id, table.concat(redis.call('HGETALL', job_key(id)), '\31'),
      table.concat(redis.call('HGETALL', notes_key(id)), '\31'),
      table.concat(redis.call('SMEMBERS', P .. 'children:' .. id), '\31')}
  end
  return out
end

-- Matching ids, examined one by one: a page and total from a list sorted id descending.
local function answer_from(candidates)
  local page = {}
  for i = offset + 1, math.min(#candidates, offset + limit) do page[#page + 1] = istr(candidates[i]) end
  return answer(#candidates, page)
end

if #ids > 0 then
  table.sort(ids, function(a, b) return a > b end)
  local found, last = {}, nil
  for _, id in ipairs(ids) do
    if id ~= last and (not before or id < before) and matches(istr(id)) then found[#found + 1] = id end
    last = id
  end
  return answer_from(found)
end

-- Every expired inactive job matching the filters (hidden), ascending; none unless the filters
-- admit inactive jobs.
local hidden = {}
if #states == 0 or state_set['inactive'] then
  local expired = redis.call('ZRANGEBYSCORE', P .. 'expiring', '-inf', tstr(now), 'LIMIT', 0,
    EXPIRED_BUDGET + 1)
  if #expired > EXPIRED_BUDGET then
    return {err = 'EXPIRED_BACKLOG too many expired jobs await repair'}
  end
  -- `expiring` holds inactive jobs only: without other filters each of them is hidden.
  local filtered = #queues + #tasks + #notes > 0
  for _, id in ipairs(expired) do
    if not before or tonumber(id) < before then
      local f = filtered and redis.call('HMGET', job_key(id), 'state', 'queue', 'task')
      if not f or (f[1] == 'inactive' and (#queues == 0 or queue_set[f[2]])
          and (#tasks == 0 or task_set[f[3]]) and (#notes == 0 or has_note(id))) then
        hidden[#hidden + 1] = tonumber(id)
      end
    end
  end
  table.sort(hidden)
end
-- How many hidden ids are <= x.
local function hidden_upto(x)
  local lo, hi = 0, #hidden
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if hidden[mid] <= x then lo = mid else hi = mid - 1 end
  end
  return lo
end

-- Hidden ids in [lo, hi].
local function hidden_in(lo, hi)
  if #hidden == 0 then return 0 end
  return hidden_upto(hi) - hidden_upto(lo - 1)
end

local keys = index_keys()
local function count(key_list)
  local n = 0
  for _, k in ipairs(key_list) do n = n + redis.call('ZCOUNT', k, '-inf', max) end
  return n
end

if #notes > 1 or (#notes == 1 and (#states + #queues + #tasks) > 0) then
  -- Examine the candidates of the smaller side one by one: from the note indexes, whether the
  -- job matches the other filters (one HMGET); from the other indexes, whether it has a note
  -- key asked for and is not hidden.
  local note_keys = {}
  for i, key in ipairs(notes) do note_keys[i] = P .. 'note:' .. key end
  local side, by_note = keys, false
  local n, m = count(note_keys), count(keys)
  if n < m then side, by_note, m = note_keys, true, n end
  if m > NOTES_BUDGET then
    return {err = 'TOO_BROAD filters too broad: combine notes with narrower filters'}
  end
  local candidates = {}
  for _, k in ipairs(side) do
    for _, id in ipairs(redis.call('ZREVRANGEBYSCORE', k, max, '-inf')) do
      candidates[#candidates + 1] = tonumber(id)
    end
  end
  table.sort(candidates, function(a, b) return a > b end)
  local found, last = {}, nil
  for _, id in ipairs(candidates) do
    local ok
    if id == last then
      ok = false
    elseif by_note then
      ok = matches(istr(id), nil, true)
    else
      ok = hidden_in(id, id) == 0 and has_note(istr(id))
    end
    if ok then found[#found + 1] = id end
    last = id
  end
  return answer_from(found)
end
if #notes == 1 then keys = {P .. 'note:' .. notes[1]} end

-- The r-th highest visible id in [lo, hi] of the union of `keys` (disjoint sets), or nil when
-- there are fewer; also how many visible ids [lo, hi] holds, and the ids of the final window
-- (descending), the r-th's index there and the window's low end. A search over ids on ZCOUNT
-- sums: each round probes two ids around where ranks r .. r + more would be if ids were spread
-- evenly (about sqrt(window) ranks beyond), so the window usually shrinks to a few sqrt of
-- itself, and falls back to halving when that did not halve it; a round costs two ZCOUNTs per
-- set still holding ids of the window. Once the window holds few ids they are read and sorted.
local function select(r, lo, hi, more, counted)
  local active, raw = counted or {}, 0
  if counted then
    for _, a in ipairs(active) do raw = raw + a[2] end
  else
    for _, k in ipairs(keys) do
      local c = redis.call('ZCOUNT', k, lo, hi)
      if c > 0 then
        active[#active + 1] = {k, c}
        raw = raw + c
      end
    end
  end
  local visible = raw - hidden_in(lo, hi)
  if visible < r then return nil, visible end
  local above, halve = 0, false  -- visible ids above the window
  while raw > READ_ALL + 4 * #active do
    local w = raw - hidden_in(lo, hi)
    local k = r - above  -- the wanted id's rank from the top of the window
    local span = hi - lo + 1
    local u, v
    if halve or w < 4 then
      u = math.floor((lo + hi + 1) / 2)
      v = lo
    else
      local d = math.ceil(math.sqrt(w))
      u = math.floor(hi - (k - d) * span / w)
      v = math.ceil(hi - (k + more + d) * span / w)
      if u > hi then u = hi + 1 end
      if v < lo then v = lo end
      if u <= v then u, v = math.floor((lo + hi + 1) / 2), lo end
    end
    local cu, cv, su, sv = {}, {}, 0, 0
    for i, a in ipairs(active) do
      cu[i] = u <= hi and redis.call('ZCOUNT', a[1], u, hi) or 0
      cv[i] = v > lo and redis.call('ZCOUNT', a[1], v, hi) or a[2]
      su, sv = su + cu[i], sv + cv[i]
    end
    local vu = su - (u <= hi and hidden_in(u, hi) or 0)
    local vv = sv - hidden_in(v, hi)
    local kept, was = {}, raw
    raw = 0
    local function keep(a, n)
      if n > 0 then
        kept[#kept + 1] = {a[1], n}
        raw = raw + n
      end
    end
    if above + vu >= r then
      lo = u
      for i, a in ipairs(active) do keep(a, cu[i]) end
    elseif above + vv >= r then
      above, lo, hi = above + vu, v, u - 1
      for i, a in ipairs(active) do keep(a, cv[i] - cu[i]) end
    else
      above, hi = above + vv, v - 1
      for i, a in ipairs(active) do keep(a, a[2] - cv[i]) end
    end
    active = kept
    halve = raw * 2 > was
  end
  local ids = {}
  for _, a in ipairs(active) do
    for _, id in ipairs(redis.call('ZREVRANGEBYSCORE', a[1], hi, lo)) do
      local n = tonumber(id)
      if hidden_in(n, n) == 0 then ids[#ids + 1] = n end
    end
  end
  table.sort(ids, function(a, b) return a > b end)
  return ids[r - above], visible, ids, r - above, lo
end

-- The id range: from the lowest id stored to the highest wanted.
local low = redis.call('ZRANGE', P .. 'jobs', 0, 0, 'WITHSCORES')[2]
local high = redis.call('ZREVRANGEBYSCORE', P .. 'jobs', max, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)[2]
if not low or not high or limit == 0 then return answer(0, {}) end
low, high = tonumber(low), tonumber(high)
-- Only the sets holding wanted ids take part from here on.
local counted, nonempty = {}, {}
for _, k in ipairs(keys) do
  local c = redis.call('ZCOUNT', k, low, high)
  if c > 0 then
    counted[#counted + 1] = {k, c}
    nonempty[#nonempty + 1] = k
  end
end
keys = nonempty
local first, total, window, at, window_low = select(offset + 1, low, high, limit, counted)
if not first then return answer(0, {}) end
local page = {}
if at + limit - 1 <= #window or window_low == low then
  -- The page lies in the search's last window (which ends at the lowest id when it is short).
  for i = at, math.min(#window, at + limit - 1) do page[#page + 1] = istr(window[i]) end
  return answer(total, page)
end
local last = select(limit, low, first, 0) or low
for _, k in ipairs(keys) do
  for _, id in ipairs(redis.call('ZREVRANGEBYSCORE', k, first, last)) do
    local n = tonumber(id)
    if hidden_in(n, n) == 0 then page[#page + 1] = n end
  end
end
table.sort(page, function(a, b) return a > b end)
for i, id in ipairs(page) do page[i] = istr(id) end
return answer(total, page)

-- list_jobs: one page of jobs, id descending, with Minion's filters (ANDed; each list "any of")
-- and a total that ignores offset and limit. Inactive jobs that have expired are hidden.
-- Cost: with no filter or one (state, queue, task or one note key) the page and the total come
-- from the sorted indexes (O(page + log n)); several filters walk the smallest index.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  offset
-- ARGV[2]  limit
-- ARGV[3]  before (only ids lower), or ""
-- ARGV[4..8] JSON arrays: ids, notes (keys), queues, states, tasks
-- Returns  {total, now, row...}; row = {id, job hash, notes hash, children}, each joined by
--          "\31" (unit separator) into one string: one reply element instead of ~30 per row,
--          safe because JSON text, validated names and note keys never hold control characters.
local offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local before = tonumber(ARGV[3])
local ids, notes = cjson.decode(ARGV[4]), cjson.decode(ARGV[5])
local queues, states, tasks = cjson.decode(ARGV[6]), cjson.decode(ARGV[7]), cjson.decode(ARGV[8])
local now = now_time()
local max = before and ('(' .. istr(before)) or '+inf'

local function member(list, value)
  if #list == 0 then return true end
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

local function visible_match(id)
  local f = redis.call('HMGET', job_key(id), 'state', 'queue', 'task', 'expires')
  if not f[1] then return false end
  local expires = tonumber(f[4])
  if f[1] == 'inactive' and expires and expires <= now then return false end
  if not (member(states, f[1]) and member(queues, f[2]) and member(tasks, f[3])) then return false end
  if #notes == 0 then return true end
  for _, key in ipairs(notes) do
    if redis.call('HEXISTS', notes_key(id), key) == 1 then return true end
  end
  return false
end

-- Ids of the union of sorted sets, id descending, duplicates dropped.
local function stream(keys)
  local bufs = {}
  for i, k in ipairs(keys) do bufs[i] = {key = k, items = {}, pos = 1, bound = max} end
  local last
  return function()
    while true do
      local best, bi
      for i, b in ipairs(bufs) do
        if not b.done and b.pos > #b.items then
          b.items = redis.call('ZREVRANGEBYSCORE', b.key, b.bound, '-inf', 'LIMIT', 0, 256)
          b.pos = 1
          if #b.items == 0 then b.done = true else b.bound = '(' .. b.items[#b.items] end
        end
        if not b.done then
          local v = tonumber(b.items[b.pos])
          if not best or v > best then best, bi = v, i end
        end
      end
      if not best then return nil end
      bufs[bi].pos = bufs[bi].pos + 1
      if best ~= last then
        last = best
        return best
      end
    end
  end
end

local page = {}
local total = 0
local function take(id)
  total = total + 1
  if total > offset and #page < limit then page[#page + 1] = istr(id) end
end

if #ids > 0 then
  table.sort(ids, function(a, b) return a > b end)
  local seen = {}
  for _, id in ipairs(ids) do
    if (not before or id < before) and not seen[id] and visible_match(istr(id)) then take(id) end
    seen[id] = true
  end
else
  local dims = {}
  local function dim(prefix, values)
    if #values == 0 then return end
    local keys, size = {}, 0
    for i, v in ipairs(values) do
      keys[i] = P .. prefix .. v
      size = size + redis.call('ZCOUNT', keys[i], '-inf', max)
    end
    -- One job has one state, queue and task, but may have several of the note keys asked for.
    dims[#dims + 1] = {keys = keys, size = size, overlapping = prefix == 'note:' and #values > 1}
  end
  dim('state:', states)
  dim('queue:', queues)
  dim('task:', tasks)
  dim('note:', notes)
  local driver = dims[1] or {keys = {P .. 'jobs'}, size = redis.call('ZCOUNT', P .. 'jobs', '-inf', max)}
  for _, d in ipairs(dims) do if d.size < driver.size then driver = d end end
  if #dims <= 1 and not driver.overlapping then
    -- The driver's count is exact; subtract the expired inactive jobs it holds. Every job in
    -- `expiring` is inactive, so for all jobs or the inactive state (without `before`) that is
    -- one ZCOUNT, and for the other states none; only queue/task/note filters walk them.
    local hidden_n
    local only_state = #states == 1 and #dims == 1 and driver == dims[1]
    if not before and (#dims == 0 or (only_state and states[1] == 'inactive')) then
      hidden_n = redis.call('ZCOUNT', P .. 'expiring', '-inf', now)
    elseif only_state and states[1] ~= 'inactive' then
      hidden_n = 0
    else
      hidden_n = 0
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiring', '-inf', now)) do
        if not before or tonumber(id) < before then
          for _, k in ipairs(driver.keys) do
            if redis.call('ZSCORE', k, id) then
              hidden_n = hidden_n + 1
              break
            end
          end
        end
      end
    end
    local function hidden(id)
      if hidden_n == 0 then return false end
      local expires = redis.call('ZSCORE', P .. 'expiring', id)
      return expires ~= false and tonumber(expires) <= now
    end
    local next_id = stream(driver.keys)
    local seen = 0
    while #page < limit do
      local id = next_id()
      if not id then break end
      if not hidden(istr(id)) then
        seen = seen + 1
        if seen > offset then page[#page + 1] = istr(id) end
      end
    end
    total = driver.size - hidden_n
    -- Minion's quirk: total is 0 when the page is empty.
    if #page == 0 then total = 0 end
  else
    local next_id = stream(driver.keys)
    while true do
      local id = next_id()
      if not id then break end
      if visible_match(istr(id)) then take(id) end
    end
    if #page == 0 then total = 0 end
  end
end
if #ids > 0 and #page == 0 then total = 0 end

local out = {total, tstr(now)}
for _, id in ipairs(page) do
  out[#out + 1] = {id, table.concat(redis.call('HGETALL', job_key(id)), '\31'),
    table.concat(redis.call('HGETALL', notes_key(id)), '\31'),
    table.concat(redis.call('SMEMBERS', P .. 'children:' .. id), '\31')}
end
return out

-- Job state transitions shared by the job scripts: indexes, ready sets, parking, completion,
-- retry and deletion. Every function keeps the indexes of broker/keyspace.py in step with the
-- job hash, so the scripts that use them stay short.

local function make_ready(id, queue, task, priority)
  redis.call('ZADD', ready_key(queue, task), -tonumber(priority), ready_member(id))
  sadd_once(P .. 'readytasks:' .. queue, task)
end

local function unready(id, queue, task)
  local rk = ready_key(queue, task)
  if redis.call('ZREM', rk, ready_member(id)) == 1 and redis.call('EXISTS', rk) == 0 then
    srem_seen(P .. 'readytasks:' .. queue, task)
  end
end

-- Moves a job between the indexes that carry its state (state, sq, st, sqt).
local function set_state(id, from, to, queue, task)
  local nid = tonumber(id)
  redis.call('ZREM', P .. 'state:' .. from, id)
  redis.call('ZADD', P .. 'state:' .. to, nid, id)
  redis.call('ZREM', sq_key(from, queue), id)
  redis.call('ZADD', sq_key(to, queue), nid, id)
  redis.call('ZREM', st_key(from, task), id)
  redis.call('ZADD', st_key(to, task), nid, id)
  redis.call('ZREM', sqt_key(from, queue, task), id)
  redis.call('ZADD', sqt_key(to, queue, task), nid, id)
end

-- Counts a job into its (queue, task) pair; a pair's first job registers it in queue_tasks and
-- task_queues (and its queue and task in live_queues and live_tasks), so list_jobs enumerates
-- only the combinations that hold jobs. Only a pair's first and last job cost more than one call.
local function pair_add(queue, task)
  local field = #queue .. ':' .. queue .. ':' .. task
  if redis.call('HINCRBY', P .. 'qt_jobs', field, 1) == 1 then
    redis.call('SADD', P .. 'queue_tasks:' .. queue, task)
    redis.call('SADD', P .. 'task_queues:' .. task, queue)
    redis.call('SADD', P .. 'live_queues', queue)
    redis.call('SADD', P .. 'live_tasks', task)
  end
end

local function pair_remove(queue, task)
  local field = #queue .. ':' .. queue .. ':' .. task
  if redis.call('HINCRBY', P .. 'qt_jobs', field, -1) <= 0 then
    redis.call('HDEL', P .. 'qt_jobs', field)
    redis.call('SREM', P .. 'queue_tasks:' .. queue, task)
    redis.call('SREM', P .. 'task_queues:' .. task, queue)
    if redis.call('EXISTS', P .. 'queue_tasks:' .. queue) == 0 then
      redis.call('SREM', P .. 'live_queues', queue)
    end
    if redis.call('EXISTS', P .. 'task_queues:' .. task) == 0 then
      redis.call('SREM', P .. 'live_tasks', task)
    end
  end
end

-- Puts an inactive job where dequeue finds it; true when it is runnable now (not delayed).
local function place_inactive(id, queue, task, priority, delayed, expires, now)
  redis.call('ZADD', P .. 'inactive_since', delayed, id)
  if expires then redis.call('ZADD', P .. 'expiring', expires, id) end
  if delayed > now then
    redis.call('ZADD', P .. 'delayed', delayed, id)
    return false
  end
  make_ready(id, queue, task, priority)
  return true
end

-- Takes an inactive job out of every place dequeue or repair would look for it.
local function leave_inactive(id, queue, task, parked)
  unready(id, queue, task)
  redis.call('ZREM', P .. 'delayed', id)
  redis.call('ZREM', P .. 'inactive_since', id)
  redis.call('ZREM', P .. 'expiring', id)
  if parked then
    redis.call('SREM', P .. 'parked:' .. parked, id)
    redis.call('HDEL', job_key(id), 'parked')
    if redis.call('EXISTS', P .. 'parked:' .. parked) == 0 then
      redis.call('ZREM', P .. 'parent_expiry', parked)
    end
  end
end

-- Frees the worker slot an active job held and tells the replica streaming to that worker
-- (once per worker and script call: a batch of completions is one wake-up).
local slots_published = {}
local function release_worker(id, worker)
  redis.call('ZREM', P .. 'leases', id)
  if not worker then return end
  redis.call('SREM', P .. 'worker_jobs:' .. worker, id)
  if redis.call('HINCRBY', P .. 'busy_workers', worker, -1) <= 0 then
    redis.call('HDEL', P .. 'busy_workers', worker)
  end
  if not slots_published[worker] then
    redis.call('PUBLISH', P .. 'slots', worker)
    slots_published[worker] = true
  end
end

-- Returns jobs parked on a parent to their ready sets so dequeue checks them again; count released.
local function release_parked(pid)
  local key = P .. 'parked:' .. pid
  -- Always: children may have left the parked set one by one (remove, retry, dequeue by id).
  redis.call('ZREM', P .. 'parent_expiry', pid)
  local kids = redis.call('SMEMBERS', key)
  if #kids == 0 then return 0 end
  redis.call('DEL', key)
  local n = 0
  for _, cid in ipairs(kids) do
    local f = redis.call('HMGET', job_key(cid), 'state', 'parked', 'queue', 'task', 'priority')
    if f[1] == 'inactive' and f[2] == pid then
      redis.call('HDEL', job_key(cid), 'parked')
      make_ready(cid, f[3], f[4], f[5])
      n = n + 1
    end
  end
  return n
end

-- Minion's dependency rule: the first parent of job `id` that blocks, and its expiry when it may
-- expire. Finished, missing and expired inactive parents never block; failed ones block unless
-- lax. The walk starts at the job's `pnext`, a byte position in its parents JSON text before
-- which no parent blocks, and records where it stopped: a parent that stops blocking can only
-- block again by being retried or created, and both reset its children's `pnext`
-- (reset_parent_cursors). So a job with P parents examines each about once over all its picks
-- and releases, instead of walking the whole list every time.
local function blocking_parent(id, parents_json, lax, now, pnext)
  if parents_json == nil or parents_json == '[]' then return nil end
  local start = tonumber(pnext) or 1
  local pos = start
  local blocker, blocker_expires
  while true do
    local s, e, pid = string.find(parents_json, '(%-?%d+)', pos)
    if not s then
      pos = #parents_json + 1
      break
    end
    local f = redis.call('HMGET', job_key(pid), 'state', 'expires')
    local state = f[1]
    if state == 'active' or (state == 'failed' and not lax) then
      blocker = pid
    elseif state == 'inactive' then
      local x = tonumber(f[2])
      if not x or x > now then blocker, blocker_expires = pid, x end
    end
    if blocker then
      pos = s
      break
    end
    pos = e + 1
  end
  if pos ~= start then redis.call('HSET', job_key(id), 'pnext', pos) end
  return blocker, blocker_expires
end

-- Job `id` may block its children again (retried from a state that blocks none, or created
-- under an id children already name): their walks start over at their first parent.
local function reset_parent_cursors(id)
  for _, cid in ipairs(redis.call('SMEMBERS', P .. 'children:' .. id)) do
    redis.call('HDEL', job_key(cid), 'pnext')
  end
end

local function publish_wake(queue)
  redis.call('PUBLISH', P .. 'wake', queue)
end

-- Counts a job that ended into its hour; the first count of an hour drops buckets older than a day.
local function history_add(kind, now)
  local hour = math.floor(now / 3600)
  if redis.call('HINCRBY', P .. 'history', istr(hour) .. ':' .. kind, 1) == 1 then
    for _, field in ipairs(redis.call('HKEYS', P .. 'history')) do
      if tonumber(string.match(field, '^(%-?%d+)')) < hour - 24 then
        redis.call('HDEL', P .. 'history', field)
      end
    end
  end
end

-- History follows the jobs' current states, as Minion's recomputation does: a finished or failed
-- job counts in the hour of its `finished` time while it stays in that state, so one that is
-- retried or removed leaves its hour again. Buckets older than a day are gone already.
local function history_remove(kind, finished)
  finished = tonumber(finished)
  if not finished then return end
  local field = istr(math.floor(finished / 3600)) .. ':' .. kind
  if redis.call('HINCRBY', P .. 'history', field, -1) <= 0 then
    redis.call('HDEL', P .. 'history', field)
  end
end

-- Minion's retry_job: no state guard; options absent from o keep the job's values.
-- o = {attempts, delay, expire, lax, parents (json text), priority, queue, auto (complete_job's
-- automatic retry)}.
local function retry_core(id, o, now)
  local jk = job_key(id)
  local f = redis.call('HMGET', jk, 'state', 'queue', 'task', 'priority', 'parked', 'worker',
    'attempts', 'expires', 'lax', 'parents', 'retries', 'finished')
  local state, queue, task, priority = f[1], f[2], f[3], f[4]
  -- An automatic retry follows a failure that history never counted.
  if not o.auto and (state == 'finished' or state == 'failed') then
    history_remove(state, f[12])
  end
  -- Finished, failed (for lax children) and expired jobs block nobody; inactive again, they do.
  -- An automatic retry follows an active attempt, which blocked every child throughout.
  local expired = state == 'inactive' and tonumber(f[8]) and tonumber(f[8]) <= now
  if not o.auto and (state == 'finished' or state == 'failed' or expired) then
    reset_parent_cursors(id)
  end
  if state == 'inactive' then
    leave_inactive(id, queue, task, f[5])
  elseif state == 'active' then
    release_worker(id, f[6])
  elseif state == 'finished' then
    redis.call('ZREM', P .. 'finished_at', id)
  end
  if state ~= 'inactive' then set_state(id, state, 'inactive', queue, task) end

  local new_queue = o.queue or queue
  if new_queue ~= queue then
    redis.call('ZREM', P .. 'queue:' .. queue, id)
    redis.call('ZADD', P .. 'queue:' .. new_queue, tonumber(id), id)
    redis.call('SADD', P .. 'queues', new_queue)
    redis.call('ZREM', sqt_key('inactive', queue, task), id)
    redis.call('ZADD', sqt_key('inactive', new_queue, task), tonumber(id), id)
    redis.call('ZREM', sq_key('inactive', queue), id)
    redis.call('ZADD', sq_key('inactive', new_queue), tonumber(id), id)
    redis.call('ZREM', qt_key(queue, task), id)
    redis.call('ZADD', qt_key(new_queue, task), tonumber(id), id)
    pair_remove(queue, task)
    pair_add(new_queue, task)
  end
  local parents = f[10]
  if o.parents and o.parents ~= parents then
    for _, p in ipairs(cjson.decode(parents)) do redis.call('SREM', P .. 'children:' .. istr(p), id) end
    for _, p in ipairs(cjson.decode(o.parents)) do redis.call('SADD', P .. 'children:' .. istr(p), id) end
    parents = o.parents
    redis.call('HDEL', jk, 'pnext')
  end
  local new_priority = o.priority or tonumber(priority)
  local delayed = now + (o.delay or 0)
  local expires = tonumber(f[8])
  if o.expire then expires = now + o.expire end
  local lax = f[9]
  if o.lax ~= nil then lax = o.lax and '1' or '0' end

  redis.call('HSET', jk, 'state', 'inactive', 'queue', new_queue, 'priority', new_priority,
    'attempts', o.attempts or f[7], 'delayed', tstr(delayed), 'lax', lax, 'parents', parents,
    'retried', tstr(now), 'retries', tonumber(f[11]) + 1)
  if expires then redis.call('HSET', jk, 'expires', tstr(expires)) end
  place_inactive(id, new_queue, task, new_priority, delayed, expires, now)
  release_parked(id)
  -- Also when delayed: waiters then sleep until it is due instead of missing it.
  publish_wake(new_queue)
  return true
end

-- Minion's finish_job/fail_job (+ auto_retry_job): guarded by state active and retries, and by
-- the lease of the attempt when one is given ('' or nil: any). Returns the attempt's start time
-- (text) when it applied, false otherwise.
local function complete_job(id, retries, failed, result, now, lease)
  local jk = job_key(id)
  local f = redis.call('HMGET', jk, 'state', 'retries', 'worker', 'attempts', 'lease', 'queue',
    'task', 'started')
  if f[1] ~= 'active' or tonumber(f[2]) ~= tonumber(retries) then return false end
  if lease and lease ~= '' and f[5] ~= lease then return false end
  local to = failed and 'failed' or 'finished'
  redis.call('HSET', jk, 'state', to, 'finished', tstr(now), 'result', result)
  set_state(id, 'active', to, f[6], f[7])
  release_worker(id, f[3])
  local released = release_parked(id)
  if failed then
    local attempts = tonumber(f[4])
    if attempts > 1 then
      local r = tonumber(f[2])
      retry_core(id, {attempts = attempts - 1, delay = r * r * r * r + 15, auto = true}, now)
    else
      history_add('failed', now)
    end
  else
    redis.call('ZADD', P .. 'finished_at', now, id)
    history_add('finished', now)
  end
  if released > 0 then publish_wake('') end
  return f[8] or tstr(now)
end

-- Returns an active job that its worker never got (or no longer runs) to inactive, unchanged:
-- retries stays, so no handle goes stale, and the attempt does not count. True when it was
-- active under `worker`.
local function hand_back(id, worker, now)
  local f = redis.call('HMGET', job_key(id), 'state', 'worker', 'queue', 'task', 'priority',
    'delayed', 'expires')
  if f[1] ~= 'active' or f[2] ~= worker then return false end
  release_worker(id, worker)
  set_state(id, 'active', 'inactive', f[3], f[4])
  redis.call('HSET', job_key(id), 'state', 'inactive')
  place_inactive(id, f[3], f[4], f[5], tonumber(f[6]), tonumber(f[7]), now)
  release_parked(id)  -- children parked on it while active may now run (e.g. when it expires)
  return true
end

-- Deletes a job and every index entry of it (remove_job, repair, reset).
local function delete_job(id)
  local jk = job_key(id)
  local f = redis.call('HMGET', jk, 'state', 'queue', 'task', 'parked', 'parents', 'worker',
    'finished')
  local state = f[1]
  if not state then return false end
  if state == 'finished' or state == 'failed' then history_remove(state, f[7]) end
  if state == 'inactive' then leave_inactive(id, f[2], f[3], f[4]) end
  if state == 'active' then release_worker(id, f[6]) end
  redis.call('ZREM', P .. 'finished_at', id)
  redis.call('ZREM', P .. 'jobs', id)
  redis.call('ZREM', P .. 'state:' .. state, id)
  redis.call('ZREM', P .. 'queue:' .. f[2], id)
  redis.call('ZREM', P .. 'task:' .. f[3], id)
  redis.call('ZREM', sqt_key(state, f[2], f[3]), id)
  redis.call('ZREM', sq_key(state, f[2]), id)
  redis.call('ZREM', st_key(state, f[3]), id)
  redis.call('ZREM', qt_key(f[2], f[3]), id)
  pair_remove(f[2], f[3])
  for _, key in ipairs(redis.call('HKEYS', notes_key(id))) do
    redis.call('ZREM', P .. 'note:' .. key, id)
  end
  for _, p in ipairs(cjson.decode(f[5])) do redis.call('SREM', P .. 'children:' .. istr(p), id) end
  redis.call('DEL', jk, notes_key(id), P .. 'children:' .. id)
  if release_parked(id) > 0 then publish_wake('') end
  return true
end

-- Creates one inactive job from a spec decoded from JSON (enqueue, batch enqueue, schedules):
-- {task, args (json text), attempts, delay, expire|null, lax, notes {key: json text},
--  parents (json text), priority, queue, trace (traceparent; absent or "": none)}. `id` is the new job's id (nil: take the next one).
-- Returns the id and whether it is runnable now.
local function create_job(spec, now, id)
  id = istr(id or redis.call('INCR', P .. 'ids:job'))
  local delayed = now + (spec.delay or 0)
  local expires = nil
  if spec.expire and spec.expire ~= cjson.null then expires = now + spec.expire end
  local created = tstr(now)
  local fields = {'task', spec.task, 'args', spec.args, 'attempts', spec.attempts,
    'created', created, 'delayed', delayed == now and created or tstr(delayed),
    'lax', spec.lax and '1' or '0', 'parents', spec.parents, 'priority', spec.priority,
    'queue', spec.queue, 'retries', 0, 'state', 'inactive'}
  if expires then
    fields[#fields + 1] = 'expires'
    fields[#fields + 1] = tstr(expires)
  end
  if spec.trace and spec.trace ~= '' then
    fields[#fields + 1] = 'trace'
    fields[#fields + 1] = spec.trace
  end
  redis.call('HSET', job_key(id), unpack(fields))
  local nid = tonumber(id)
  redis.call('ZADD', P .. 'jobs', nid, id)
  redis.call('ZADD', P .. 'state:inactive', nid, id)
  redis.call('ZADD', P .. 'queue:' .. spec.queue, nid, id)
  redis.call('ZADD', P .. 'task:' .. spec.task, nid, id)
  redis.call('ZADD', sqt_key('inactive', spec.queue, spec.task), nid, id)
  redis.call('ZADD', sq_key('inactive', spec.queue), nid, id)
  redis.call('ZADD', st_key('inactive', spec.task), nid, id)
  redis.call('ZADD', qt_key(spec.queue, spec.task), nid, id)
  pair_add(spec.queue, spec.task)
  sadd_once(P .. 'queues', spec.queue)
  sadd_once(P .. 'tasks', spec.task)
  if spec.notes and next(spec.notes) then
    for key, value in pairs(spec.notes) do
      redis.call('HSET', notes_key(id), key, value)
      redis.call('ZADD', P .. 'note:' .. key, nid, id)
      sadd_once(P .. 'notekeys', key)
    end
  end
  -- Children that named this id before it existed found it missing, which no longer holds.
  if redis.call('EXISTS', P .. 'children:' .. id) == 1 then reset_parent_cursors(id) end
  if spec.parents ~= '[]' then
    for _, p in ipairs(cjson.decode(spec.parents)) do
      redis.call('SADD', P .. 'children:' .. istr(p), id)
    end
  end
  local runnable = place_inactive(id, spec.queue, spec.task, spec.priority, delayed, expires, now)
  return id, runnable
end

-- reset: deletes every job, worker, lock and schedule of the namespace and restarts all ids at
-- 1 ("all"), or deletes only the locks ("locks"), in bounded steps. Each call deletes at most
-- `batch` items, each one whole with its index entries, so no call blocks Redis for long and the
-- keyspace stays consistent between calls; the caller calls again while the answer says more is
-- left. The last step, once nothing else is left, drops the registries and restarts the ids
-- (only then, so a job enqueued while a reset runs never shares an id with an older one).
-- Walks the namespace's own registries (no SCAN).
-- include: keys jobs locks
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  "all" or "locks"
-- ARGV[2]  batch: most items deleted by this call (>= 1)
-- Returns  1 when more is left to delete, 0 when done
local budget = tonumber(ARGV[2])

-- Deletes up to `budget` members of `index` with `drop(member)`; true when it emptied it.
local function drain(index, drop)
  local items = redis.call('ZRANGE', P .. index, 0, budget - 1)
  for _, item in ipairs(items) do drop(item) end
  budget = budget - #items
  return budget > 0
end

local function drop_lock(id)
  local name = redis.call('HGET', P .. 'lock_names', id)
  if name then drop_holder(id, name) else redis.call('ZREM', P .. 'lock_ids', id) end
end

if not drain('lock_ids', drop_lock) then return 1 end
if ARGV[1] ~= 'all' then
  redis.call('DEL', P .. 'locks', P .. 'lock_names')
  return 0
end

local function drop_job(id)
  if not delete_job(id) then redis.call('ZREM', P .. 'jobs', id) end
end

local function drop_worker(id)
  redis.call('DEL', P .. 'worker:' .. id, P .. 'inbox:' .. id, P .. 'worker_jobs:' .. id)
  redis.call('ZREM', P .. 'workers', id)
  redis.call('ZREM', P .. 'workers_notified', id)
  redis.call('ZREM', P .. 'workers_streaming', id)
end

local function drop_schedule(id)
  local name = redis.call('HGET', P .. 'schedule:' .. id, 'name')
  if name then redis.call('HDEL', P .. 'schedule_names', name) end
  redis.call('DEL', P .. 'schedule:' .. id)
  redis.call('ZREM', P .. 'schedules', id)
  redis.call('ZREM', P .. 'schedules_due', id)
end

if not drain('jobs', drop_job) then return 1 end
if not drain('workers', drop_worker) then return 1 end
if not drain('schedules', drop_schedule) then return 1 end

-- Nothing is left that these name; UNLINK frees large registries off Redis' main thread.
for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
  redis.call('UNLINK', P .. 'readytasks:' .. q)
end
redis.call('UNLINK', P .. 'ids:job', P .. 'ids:worker', P .. 'ids:lock', P .. 'ids:schedule',
  P .. 'queues', P .. 'tasks', P .. 'notekeys', P .. 'delayed', P .. 'expiring',
  P .. 'inactive_since', P .. 'finished_at', P .. 'parent_expiry', P .. 'busy_workers',
  P .. 'history', P .. 'workers_notified', P .. 'workers_streaming', P .. 'kept_parents',
  P .. 'leases', P .. 'schedule_names', P .. 'schedules_due', P .. 'locks',
  P .. 'lock_names')
return 0

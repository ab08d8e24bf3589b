-- reset: deletes every job, worker, lock and schedule of the namespace and restarts all ids at
-- 1 ("all"), or only the locks ("locks"). Walks the namespace's own registries (no SCAN).
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  "all" or "locks"
-- Returns  1
local function del_locks()
  for _, name in ipairs(redis.call('HVALS', P .. 'lock_names')) do
    redis.call('DEL', P .. 'lock:' .. name)
  end
  redis.call('DEL', P .. 'locks', P .. 'lock_ids', P .. 'lock_names')
end

del_locks()
if ARGV[1] ~= 'all' then return 1 end

local queues = redis.call('SMEMBERS', P .. 'queues')
local tasks = redis.call('SMEMBERS', P .. 'tasks')
for _, q in ipairs(queues) do
  redis.call('DEL', P .. 'queue:' .. q, P .. 'readytasks:' .. q)
  for _, t in ipairs(tasks) do redis.call('DEL', ready_key(q, t)) end
end
for _, t in ipairs(tasks) do redis.call('DEL', P .. 'task:' .. t) end
for _, k in ipairs(redis.call('SMEMBERS', P .. 'notekeys')) do redis.call('DEL', P .. 'note:' .. k) end
for _, s in ipairs({'inactive', 'active', 'failed', 'finished'}) do redis.call('DEL', P .. 'state:' .. s) end

local jobs = redis.call('ZRANGE', P .. 'jobs', 0, -1)
for _, id in ipairs(jobs) do
  local parents = redis.call('HGET', job_key(id), 'parents')
  if parents and parents ~= '[]' then
    for _, p in ipairs(cjson.decode(parents)) do redis.call('DEL', P .. 'children:' .. istr(p)) end
  end
  redis.call('DEL', job_key(id), notes_key(id), P .. 'children:' .. id, P .. 'parked:' .. id)
end
for _, w in ipairs(redis.call('HKEYS', P .. 'busy_workers')) do
  redis.call('DEL', P .. 'worker_jobs:' .. w)
end
for _, w in ipairs(redis.call('ZRANGE', P .. 'workers', 0, -1)) do
  redis.call('DEL', P .. 'worker:' .. w, P .. 'inbox:' .. w, P .. 'worker_jobs:' .. w)
end
for _, s in ipairs(redis.call('ZRANGE', P .. 'schedules', 0, -1)) do
  redis.call('DEL', P .. 'schedule:' .. s)
end
redis.call('DEL', P .. 'ids:job', P .. 'ids:worker', P .. 'ids:lock', P .. 'ids:schedule',
  P .. 'jobs', P .. 'queues', P .. 'tasks', P .. 'notekeys', P .. 'delayed', P .. 'expiring',
  P .. 'inactive_since', P .. 'finished_at', P .. 'parent_expiry', P .. 'busy_workers',
  P .. 'history', P .. 'workers', P .. 'workers_notified', P .. 'workers_streaming',
  P .. 'kept_parents', P .. 'schedules', P .. 'leases', P .. 'ids:lease',
  P .. 'schedule_names', P .. 'schedules_due')
return 1

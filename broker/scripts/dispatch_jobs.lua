-- dispatch_jobs: fills the free slots of every worker streaming from this replica in one call.
-- Round-robin, one job per worker per round, each the best runnable job for that worker
-- (priority DESC, id ASC), so ready jobs go out in order across streams and each to one worker.
-- A worker's free slots are counted here from worker_jobs:<id>, so slots freed on any replica
-- count: concurrency - active, per-task limits, plus `spare` slots for high-priority jobs.
-- include: keys jobs dequeue
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  JSON array of subscriptions: {worker, epoch, concurrency, queues, tasks,
--          min_priority|null, limits {task: n}, spare, spare_min_priority}; a subscription whose
--          epoch is no longer the worker's (it re-subscribed, or is gone) gets nothing
-- ARGV[2]  most jobs to hand out in this call
-- ARGV[3]  lease duration in seconds for workers that have set none
-- Returns  {now, next_delayed_due or false, jobs_for_sub_1, jobs_for_sub_2, ...}; jobs as dequeue;
--          false instead of a list for a stream that is no longer current (the broker ends it,
--          so that a worker re-created after repair subscribes again)
local subs = cjson.decode(ARGV[1])
local budget = tonumber(ARGV[2])
local now = now_time()
local out = {tstr(now), promote(now)}

for i, s in ipairs(subs) do
  local wk = P .. 'worker:' .. istr(s.worker)
  local epoch = redis.call('HGET', wk, 'stream_epoch')
  s.current = tonumber(epoch) == s.epoch
  s.expires = now + lease_duration(istr(s.worker), tonumber(ARGV[3]))
  s.keys = ready_keys(s.queues, s.tasks)
  s.running = {}
  s.active = 0
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'worker_jobs:' .. istr(s.worker))) do
    s.active = s.active + 1
    if next(s.limits) then
      local task = redis.call('HGET', job_key(id), 'task')
      if task then s.running[task] = (s.running[task] or 0) + 1 end
    end
  end
  s.jobs = {}
  out[i + 2] = s.current and s.jobs or false
end

-- The ready sets a worker may take from now: per-task limits drop the tasks at their limit.
local function allowed_keys(s)
  if not next(s.limits) then return s.keys end
  local keys = {}
  for _, k in ipairs(s.keys) do
    local limit = s.limits[k[3]]
    if not limit or (s.running[k[3]] or 0) < limit then keys[#keys + 1] = k end
  end
  return keys
end

local progress = true
while progress and budget > 0 do
  progress = false
  for _, s in ipairs(subs) do
    if budget <= 0 then break end
    local min_priority = s.min_priority
    if min_priority == cjson.null then min_priority = nil end
    local open = s.current and s.active < s.concurrency
    if s.current and not open and s.active < s.concurrency + s.spare then
      open = true
      if not min_priority or min_priority < s.spare_min_priority then
        min_priority = s.spare_min_priority
      end
    end
    if open then
      local id = pick(allowed_keys(s), min_priority, now)
      if id then
        local job = activate(id, istr(s.worker), now, s.expires)
        s.jobs[#s.jobs + 1] = job
        s.active = s.active + 1
        s.running[job[2]] = (s.running[job[2]] or 0) + 1
        budget = budget - 1
        progress = true
      end
    end
  end
end
return out

-- repair: Minion's repair, in its order, by Redis' clock, walking only time-ordered indexes so
-- that its cost follows what it repairs, not what is stored. At most `batch` items are handled
-- per call; the caller calls again while the answer says more is left.
--   1. workers whose heartbeat is older than missing_after (stream_missing_after for workers
--      that opened a stream) are deleted; their jobs stay active;
--   2. finished jobs with finished <= now - remove_after are deleted, unless a child of theirs
--      is not finished: such a parent moves from finished_at to kept_parents and is examined
--      again only remove_after later (so a parent of a failed child costs one check per
--      remove_after, not one per repair; it may outlive Minion's deletion by up to that long);
--   3. inactive jobs with expires <= now are deleted;
--   4. active jobs whose worker no longer exists fail with "Worker went away" (automatic retry
--      applies), except in queue minion_foreground;
--   5. inactive jobs with delayed + stuck_after < now fail with "Job appears stuck in queue"
--      (finished stays unset, no automatic retry, no history count);
--   then expired lock holders are dropped (invisible housekeeping, not counted).
-- include: keys jobs locks
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  missing_after, seconds
-- ARGV[2]  remove_after, seconds
-- ARGV[3]  stuck_after, seconds
-- ARGV[4]  batch: most items handled by this call (>= 1)
-- ARGV[5]  stream_missing_after, seconds (workers in workers_streaming)
-- Returns  {missing_workers, old_jobs, expired_jobs, abandoned_jobs, stuck_jobs, more (1/0)}
local missing_after = tonumber(ARGV[1])
local remove_after = tonumber(ARGV[2])
local stuck_after = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local stream_missing_after = tonumber(ARGV[5])
local now = now_time()
local counts = {0, 0, 0, 0, 0}
local woke = false

local function answer(more)
  if woke then publish_wake('') end
  return {counts[1], counts[2], counts[3], counts[4], counts[5], more and 1 or 0}
end

-- Up to `budget` members of a sorted set with scores in [min, max].
local function due(key, min, max)
  return redis.call('ZRANGEBYSCORE', key, min, max, 'LIMIT', 0, budget)
end

-- 1. Missing workers.
local heartbeats = {{'workers_streaming', stream_missing_after}, {'workers_notified', missing_after}}
for _, pair in ipairs(heartbeats) do
  local missing = due(P .. pair[1], '-inf', '(' .. tstr(now - pair[2]))
  for _, id in ipairs(missing) do
    redis.call('DEL', P .. 'worker:' .. id, P .. 'inbox:' .. id)
    redis.call('ZREM', P .. 'workers', id)
    redis.call('ZREM', P .. 'workers_notified', id)
    redis.call('ZREM', P .. 'workers_streaming', id)
  end
  counts[1] = counts[1] + #missing
  budget = budget - #missing
  if budget <= 0 then return answer(true) end
end

-- 2. Old finished jobs. A parent stays while any child of it is not finished.
local cutoff = now - remove_after
local function blocked_parent(id)
  for _, cid in ipairs(redis.call('SMEMBERS', P .. 'children:' .. id)) do
    local state = redis.call('HGET', job_key(cid), 'state')
    if state and state ~= 'finished' then return true end
  end
  return false
end
local function old_finished(id)
  local f = redis.call('HMGET', job_key(id), 'state', 'finished')
  if f[1] ~= 'finished' then return end
  local finished = tonumber(f[2])
  if finished > cutoff then
    -- Not old (a job that re-finished since it was kept): back under the normal index.
    redis.call('ZADD', P .. 'finished_at', finished, id)
  elseif blocked_parent(id) then
    redis.call('ZREM', P .. 'finished_at', id)
    redis.call('ZADD', P .. 'kept_parents', now + remove_after, id)
  else
    redis.call('ZREM', P .. 'kept_parents', id)
    delete_job(id)
    counts[2] = counts[2] + 1
  end
end
-- Kept parents due for another look first; an entry whose job was retried, removed or reset
-- since is simply dropped.
for _, key in ipairs({P .. 'kept_parents', P .. 'finished_at'}) do
  local ids = due(key, '-inf', key == P .. 'finished_at' and tstr(cutoff) or tstr(now))
  for _, id in ipairs(ids) do
    redis.call('ZREM', key, id)
    old_finished(id)
  end
  budget = budget - #ids
  if budget <= 0 then return answer(true) end
end

-- 3. Expired inactive jobs.
local expired = due(P .. 'expiring', '-inf', tstr(now))
for _, id in ipairs(expired) do
  if redis.call('HGET', job_key(id), 'state') == 'inactive' then
    delete_job(id)
    counts[3] = counts[3] + 1
  else
    redis.call('ZREM', P .. 'expiring', id)
  end
end
budget = budget - #expired
if budget <= 0 then return answer(true) end

-- 4. Active jobs of workers that went away. Foreground jobs are skipped without using budget,
-- so a gone worker holding only those costs one look per repair.
for _, worker in ipairs(redis.call('HKEYS', P .. 'busy_workers')) do
  if redis.call('EXISTS', P .. 'worker:' .. worker) == 0 then
    for _, id in ipairs(redis.call('SMEMBERS', P .. 'worker_jobs:' .. worker)) do
      local f = redis.call('HMGET', job_key(id), 'state', 'queue', 'retries')
      if f[1] == 'active' and f[2] ~= 'minion_foreground' then
        if budget <= 0 then return answer(true) end
        complete_job(id, f[3], true, '"Worker went away"', now)
        counts[4] = counts[4] + 1
        budget = budget - 1
      end
    end
  end
end

-- 5. Stuck inactive jobs.
local stuck = due(P .. 'inactive_since', '-inf', '(' .. tstr(now - stuck_after))
for _, id in ipairs(stuck) do
  local jk = job_key(id)
  local f = redis.call('HMGET', jk, 'state', 'queue', 'task', 'parked', 'finished')
  if f[1] == 'inactive' then
    leave_inactive(id, f[2], f[3], f[4])
    set_state(id, 'inactive', 'failed', f[2], f[3])
    redis.call('HSET', jk, 'state', 'failed', 'result', '"Job appears stuck in queue"')
    -- Failed now, it counts in the hour of the `finished` an earlier attempt left, if any (as
    -- Minion's history would count it).
    if f[5] then history_add('failed', tonumber(f[5])) end
    if release_parked(id) > 0 then woke = true end
    counts[5] = counts[5] + 1
  else
    redis.call('ZREM', P .. 'inactive_since', id)
  end
end
budget = budget - #stuck
if budget <= 0 then return answer(true) end

-- Housekeeping: expired lock holders.
local dropped = drop_expired_locks(now, budget)
return answer(dropped >= budget)

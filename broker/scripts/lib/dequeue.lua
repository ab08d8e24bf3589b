-- Picking runnable jobs: promotion of due delayed jobs, the best-first pick across ready sets,
-- and activation. Shared by dequeue.lua and the streaming dispatcher.

-- Moves due delayed jobs into their ready sets and releases children of parents that expired.
-- Bounded per call; returns the time the next delayed job becomes due (or false).
local function promote(now)
  local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    redis.call('ZREM', P .. 'delayed', id)
    local f = redis.call('HMGET', job_key(id), 'state', 'queue', 'task', 'priority')
    if f[1] == 'inactive' then make_ready(id, f[2], f[3], f[4]) end
  end
  local expired = redis.call('ZRANGEBYSCORE', P .. 'parent_expiry', '-inf', now, 'LIMIT', 0, 100)
  for _, pid in ipairs(expired) do release_parked(pid) end
  local nxt = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
  if nxt[2] then return tonumber(nxt[2]) end
  return false
end

-- Ready-set keys for the queues and tasks asked for (tasks empty: every task of the queue). Only
-- tasks with ready jobs in the queue (readytasks:<q>) count, so a worker that registers many
-- tasks pays for the few that have work, not for all of them on every pick.
local function ready_keys(queues, tasks)
  local keys = {}
  local wanted
  if #tasks > 0 then
    wanted = {}
    for _, t in ipairs(tasks) do wanted[t] = true end
  end
  for _, q in ipairs(queues) do
    local rt = P .. 'readytasks:' .. q
    if wanted and #tasks < redis.call('SCARD', rt) then
      for _, t in ipairs(tasks) do
        if redis.call('SISMEMBER', rt, t) == 1 then keys[#keys + 1] = {ready_key(q, t), q, t} end
      end
    else
      for _, t in ipairs(redis.call('SMEMBERS', rt)) do
        if not wanted or wanted[t] then keys[#keys + 1] = {ready_key(q, t), q, t} end
      end
    end
  end
  return keys
end

-- The best runnable job (priority DESC, id ASC) among the ready sets, or nil. Expired jobs leave
-- the ready sets; jobs blocked by a parent are parked on it until it changes state, so nothing is
-- ever re-pushed and every step here is progress. Each key entry caches its set's head (k.head)
-- for the rest of the script: only the set a job was taken from changes between picks, so
-- picking `count` jobs reads each head once plus once per pick rather than every head per pick.
-- A head cached by another worker's key list that was taken meanwhile fails the state check
-- below and is read again.
local function pick(keys, min_priority, now)
  for _ = 1, 10000 do
    local best, best_prio, best_key
    for _, k in ipairs(keys) do
      if k.head == nil then
        local head = redis.call('ZRANGE', k[1], 0, 0, 'WITHSCORES')
        k.head = head[1] and {tonumber(head[1]), -tonumber(head[2])} or false
      end
      if k.head then
        local id, prio = k.head[1], k.head[2]
        if not best or prio > best_prio or (prio == best_prio and id < best) then
          best, best_prio, best_key = id, prio, k
        end
      end
    end
    if not best then return nil end
    if min_priority and best_prio < min_priority then return nil end
    best_key.head = nil  -- taken, dropped or parked below: read the head again next time
    local id = istr(best)
    local f = redis.call('HMGET', job_key(id), 'state', 'expires', 'parents', 'lax', 'pnext')
    local expires = tonumber(f[2])
    if f[1] ~= 'inactive' or (expires and expires <= now) then
      unready(id, best_key[2], best_key[3])
    else
      local blocker, blocker_expires = blocking_parent(id, f[3], f[4] == '1', now, f[5])
      if not blocker then return id end
      unready(id, best_key[2], best_key[3])
      redis.call('SADD', P .. 'parked:' .. blocker, id)
      redis.call('HSET', job_key(id), 'parked', blocker)
      if blocker_expires then redis.call('ZADD', P .. 'parent_expiry', blocker_expires, blocker) end
    end
  end
  return nil
end

-- Whether one named job may be dequeued now with these filters (dequeue's id option).
local function eligible(id, queues, tasks, min_priority, now)
  local f = redis.call('HMGET', job_key(id), 'state', 'delayed', 'expires', 'queue', 'task',
    'priority', 'parents', 'lax', 'pnext')
  if f[1] ~= 'inactive' or tonumber(f[2]) > now then return false end
  local expires = tonumber(f[3])
  if expires and expires <= now then return false end
  if min_priority and tonumber(f[6]) < min_priority then return false end
  local found = false
  for _, q in ipairs(queues) do if q == f[4] then found = true end end
  if not found then return false end
  if #tasks > 0 then
    found = false
    for _, t in ipairs(tasks) do if t == f[5] then found = true end end
    if not found then return false end
  end
  return blocking_parent(id, f[7], f[8] == '1', now, f[9]) == nil
end

-- How long a lease of this worker's jobs lasts without a heartbeat: its own lease_duration
-- (RegisterWorker), else the broker's default.
local function lease_duration(worker, default)
  return tonumber(redis.call('HGET', P .. 'worker:' .. worker, 'lease_duration')) or default
end

-- A job row as workers get it (dequeue, dispatch, subscribe):
-- {id, task, args, retries, queue, priority, attempts, parents, notes_flat, lease, trace,
-- delayed}, trace being the enqueue's W3C traceparent ("" for none) and delayed when the job
-- became runnable.
local function job_row(id)
  local f = redis.call('HMGET', job_key(id), 'queue', 'task', 'args', 'retries', 'priority',
    'attempts', 'parents', 'lease', 'trace', 'delayed')
  return {id, f[2], f[3], f[4], f[1], f[5], f[6], f[7], redis.call('HGETALL', notes_key(id)), f[8],
    f[9] or '', f[10]}
end

-- A new lease token for a job whose last one was `last` (nil: none): Redis' clock in
-- microseconds, and always above `last`, so each attempt of a job has its own token even if the
-- clock steps back. Fencing compares a job's current token with the one presented, so tokens
-- need to differ only between attempts of one job; after a reset, or a failover that lost the
-- job, a new job with the same id gets a token from a later clock than any earlier attempt.
local function new_lease(now, last)
  local lease = math.floor(now * 1000000)
  last = tonumber(last)
  if last and lease <= last then lease = last + 1 end
  return lease
end

-- Makes an inactive job active under a worker with a new lease expiring at `expires`; returns
-- what the worker needs to run it (job_row).
local function activate(id, worker, now, expires)
  local jk = job_key(id)
  local f = redis.call('HMGET', jk, 'queue', 'task', 'parked', 'args', 'retries', 'priority',
    'attempts', 'parents', 'trace', 'delayed', 'lease')
  leave_inactive(id, f[1], f[2], f[3])
  local lease = new_lease(now, f[11])
  redis.call('HSET', jk, 'state', 'active', 'started', tstr(now), 'worker', worker,
    'lease', istr(lease))
  redis.call('ZADD', P .. 'leases', expires, id)
  set_state(id, 'inactive', 'active', f[1], f[2])
  redis.call('SADD', P .. 'worker_jobs:' .. worker, id)
  redis.call('HINCRBY', P .. 'busy_workers', worker, 1)
  return {id, f[2], f[4], f[5], f[1], f[6], f[7], f[8], redis.call('HGETALL', notes_key(id)),
    lease, f[9] or '', f[10]}
end

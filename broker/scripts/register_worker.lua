-- register_worker: registers a new worker (next id) or heartbeats an existing one (Minion's
-- register_worker): notified moves to now and status is replaced; host, pid and started stay.
-- A streaming worker's workers_streaming score moves too.
-- An id that no longer exists (unregistered, or removed by repair) is re-created with that id.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  worker id, or "" for a new worker
-- ARGV[2]  host
-- ARGV[3]  pid
-- ARGV[4]  status, JSON object text
-- Returns  the worker id
local id, host, pid, status = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = now_time()

if id == '' then
  id = istr(redis.call('INCR', P .. 'ids:worker'))
elseif tonumber(redis.call('GET', P .. 'ids:worker') or '0') < tonumber(id) then
  -- A chosen id beyond the sequence: move the sequence on so no later new worker reuses it.
  redis.call('SET', P .. 'ids:worker', id)
end

local wk = P .. 'worker:' .. id
if redis.call('EXISTS', wk) == 1 then
  redis.call('HSET', wk, 'notified', tstr(now), 'status', status)
else
  redis.call('HSET', wk, 'host', host, 'pid', pid, 'started', tstr(now), 'notified', tstr(now),
    'status', status)
  redis.call('ZADD', P .. 'workers', tonumber(id), id)
end
redis.call('ZADD', P .. 'workers_notified', now, id)
redis.call('ZADD', P .. 'workers_streaming', 'XX', now, id)
return tonumber(id)

-- subscribe: opens a worker's stream. Marks the worker as streaming (repair then judges it by
-- stream_missing_after), drains its inbox, extends the leases of the jobs the worker says it is
-- running, and returns the jobs active under it that it does not list, so a job written to a
-- stream that died is delivered again (same attempt, same lease).
-- include: keys jobs dequeue
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  worker id
-- ARGV[2]  JSON array of job ids the worker is running
-- ARGV[3]  lease duration in seconds when the worker has set none
-- Each subscription gets a new epoch (worker hash field stream_epoch). Dispatch and undeliver
-- act only for the current epoch: once a worker has re-subscribed (on any replica) and been
-- given its jobs again, an older stream can neither receive new jobs nor hand jobs back.
-- Returns  false when the worker is not registered, else {epoch, commands (JSON texts), job...}
--          with jobs as dequeue returns them
local worker = ARGV[1]
local wk = P .. 'worker:' .. worker
if redis.call('EXISTS', wk) == 0 then return false end
local now = now_time()
local expires = now + lease_duration(worker, tonumber(ARGV[3]))
local epoch = redis.call('HINCRBY', wk, 'stream_epoch', 1)
redis.call('ZADD', P .. 'workers_streaming', now, worker)
local inbox = P .. 'inbox:' .. worker
local commands = redis.call('LRANGE', inbox, 0, -1)
redis.call('DEL', inbox)
local running = {}
for _, id in ipairs(cjson.decode(ARGV[2])) do running[istr(id)] = true end
local out = {epoch, commands}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'worker_jobs:' .. worker)) do
  redis.call('ZADD', P .. 'leases', 'XX', expires, id)
  if not running[id] then out[#out + 1] = job_row(id) end
end
return out

-- subscribe: opens a worker's stream. Marks the worker as streaming (repair then judges it by
-- stream_missing_after), drains its inbox, and returns the jobs active under it that the worker
-- says it is not running, so a job written to a stream that died is delivered again.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  worker id
-- ARGV[2]  JSON array of job ids the worker is running
-- Each subscription gets a new epoch (worker hash field stream_epoch). Dispatch and undeliver
-- act only for the current epoch: once a worker has re-subscribed (on any replica) and been
-- given its jobs again, an older stream can neither receive new jobs nor hand jobs back.
-- Returns  false when the worker is not registered, else {epoch, commands (JSON texts), job...}
local worker = ARGV[1]
local wk = P .. 'worker:' .. worker
if redis.call('EXISTS', wk) == 0 then return false end
local now = now_time()
local epoch = redis.call('HINCRBY', wk, 'stream_epoch', 1)
redis.call('ZADD', P .. 'workers_streaming', now, worker)
local inbox = P .. 'inbox:' .. worker
local commands = redis.call('LRANGE', inbox, 0, -1)
redis.call('DEL', inbox)
local running = {}
for _, id in ipairs(cjson.decode(ARGV[2])) do running[istr(id)] = true end
local out = {epoch, commands}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'worker_jobs:' .. worker)) do
  if not running[id] then
    local f = redis.call('HMGET', job_key(id), 'queue', 'task', 'args', 'retries', 'priority',
      'attempts', 'parents', 'trace')
    out[#out + 1] = {id, f[2], f[3], f[4], f[1], f[5], f[6], f[7], redis.call('HGETALL', notes_key(id)),
      f[8] or ''}
  end
end
return out

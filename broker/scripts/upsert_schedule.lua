-- upsert_schedule: creates a schedule, or replaces the one with the same name (Minion's schedule).
-- A replacement keeps the id, created, paused, last_job and last_run, and keeps next_run unless
-- the cron string changed.
-- include: keys schedules
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  name
-- ARGV[2]  cron expression (already validated by the caller)
-- ARGV[3]  next_run for that cron, epoch seconds (next_cron_time from Redis' clock)
-- ARGV[4]  job spec JSON as enqueue takes it: {task, args (JSON text), attempts, expire|null, lax,
--          notes {key: JSON text}, priority, queue}; delay and parents are ignored
-- Returns  the schedule id
local name, cron, next_run = ARGV[1], ARGV[2], tonumber(ARGV[3])
local spec = cjson.decode(ARGV[4])
local now = now_time()

local id = schedule_id(name)
if id then
  local sk = schedule_key(id)
  local f = redis.call('HMGET', sk, 'cron', 'paused')
  if f[1] ~= cron then
    redis.call('HSET', sk, 'next_run', tstr(next_run))
    if f[2] ~= '1' then redis.call('ZADD', P .. 'schedules_due', next_run, id) end
  end
else
  id = istr(redis.call('INCR', P .. 'ids:schedule'))
  redis.call('HSET', schedule_key(id), 'name', name, 'created', tstr(now), 'next_run',
    tstr(next_run), 'paused', '0')
  redis.call('ZADD', P .. 'schedules', tonumber(id), id)
  redis.call('HSET', P .. 'schedule_names', name, id)
  redis.call('ZADD', P .. 'schedules_due', next_run, id)
end

local sk = schedule_key(id)
redis.call('HSET', sk, 'cron', cron, 'task', spec.task, 'args', spec.args,
  'attempts', spec.attempts, 'lax', spec.lax and '1' or '0', 'notes', cjson.encode(spec.notes),
  'priority', spec.priority, 'queue', spec.queue)
if spec.expire and spec.expire ~= cjson.null then
  redis.call('HSET', sk, 'expire', tostring(spec.expire))
else
  redis.call('HDEL', sk, 'expire')
end
return id

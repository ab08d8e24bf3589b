-- due_schedules: the first half of dispatch; reads Redis' clock and the unpaused schedules whose
-- next_run has come, so the caller can compute each next firing time (croniter) for
-- fire_schedules. Changes nothing.
-- include: keys schedules
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  most schedules to return
-- Returns  {now, id, cron, next_run, id, cron, next_run, ...}; next_run exactly as stored
local now = now_time()
local out = {tstr(now)}
local due = redis.call('ZRANGEBYSCORE', P .. 'schedules_due', '-inf', tstr(now), 'LIMIT', 0,
  tonumber(ARGV[1]))
for _, id in ipairs(due) do
  local f = redis.call('HMGET', schedule_key(id), 'cron', 'next_run')
  if f[1] then
    out[#out + 1] = id
    out[#out + 1] = f[1]
    out[#out + 1] = f[2]
  end
end
return out

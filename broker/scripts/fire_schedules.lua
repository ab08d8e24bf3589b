-- fire_schedules: the second half of dispatch (Minion's dispatch_schedules). For each firing it
-- compares and sets: only while the schedule still exists, is unpaused and still has the cron
-- and next_run the caller read does it enqueue one job (create_job, exactly as enqueue would)
-- and move next_run on, recording last_job and last_run. However many dispatchers race with the
-- same reading, each due firing enqueues one job; the others' firings are skipped.
-- include: keys jobs schedules
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[4i-3..4i]  schedule id, expected next_run (as due_schedules returned it), expected cron,
--                 new next_run (epoch seconds)
-- Returns  {id, name, job id} per schedule fired; publishes the queue of each runnable job on
--          "wake"
local now = now_time()
local fired = {}
local woken = {}
for i = 1, #ARGV, 4 do
  local id, expected, cron, next_run = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local sk = schedule_key(id)
  local f = redis.call('HMGET', sk, 'next_run', 'cron', 'paused', 'name', 'task', 'args',
    'attempts', 'expire', 'lax', 'notes', 'priority', 'queue')
  if f[1] == expected and f[2] == cron and f[3] == '0' then
    local spec = {task = f[5], args = f[6], attempts = tonumber(f[7]), delay = 0,
      expire = tonumber(f[8]), lax = f[9] == '1', notes = cjson.decode(f[10]), parents = '[]',
      priority = tonumber(f[11]), queue = f[12]}
    local job, runnable = create_job(spec, now)
    if runnable then woken[spec.queue] = true end
    redis.call('HSET', sk, 'next_run', tstr(next_run), 'last_job', job, 'last_run', tstr(now))
    redis.call('ZADD', P .. 'schedules_due', next_run, id)
    fired[#fired + 1] = {id, f[4], job}
  end
end
for queue in pairs(woken) do publish_wake(queue) end
return fired

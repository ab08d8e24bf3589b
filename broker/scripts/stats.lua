-- stats: Minion's statistics from counters and sorted indexes, O(log n) whatever is stored.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- Returns  {active_jobs, active_locks, active_workers, delayed_jobs, enqueued_jobs, failed_jobs,
--          finished_jobs, inactive_jobs, inactive_schedules, inactive_workers, schedules, workers}
local now = now_time()
local workers = redis.call('ZCARD', P .. 'workers')
local active_workers = redis.call('HLEN', P .. 'busy_workers')
local schedules = redis.call('ZCARD', P .. 'schedules_due')
return {
  redis.call('ZCARD', P .. 'state:active'),
  redis.call('ZCOUNT', P .. 'locks', '(' .. tstr(now), '+inf'),
  active_workers,
  redis.call('ZCOUNT', P .. 'delayed', '(' .. tstr(now), '+inf'),
  tonumber(redis.call('GET', P .. 'ids:job') or '0'),
  redis.call('ZCARD', P .. 'state:failed'),
  redis.call('ZCARD', P .. 'state:finished'),
  redis.call('ZCARD', P .. 'state:inactive') - redis.call('ZCOUNT', P .. 'expiring', '-inf', now),
  redis.call('ZCARD', P .. 'schedules') - schedules,
  workers - active_workers,
  schedules,
  workers,
}

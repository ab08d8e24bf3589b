-- reclaim_leases: fails the active jobs whose lease expired -- their worker stopped extending it
-- (it died, hung, or could not reach the broker for longer than its lease duration) -- with
-- Minion's outcome for a worker that went away: failed, "Worker went away", retried
-- automatically while attempts remain. Cost follows what expired, not what is stored. Jobs in
-- queue minion_foreground are left to their worker, as repair does.
-- include: keys jobs
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  most jobs to look at in this call
-- Returns  {jobs failed, more (1/0)}
local budget = tonumber(ARGV[1])
local now = now_time()
local due = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', tstr(now), 'LIMIT', 0, budget)
local n = 0
for _, id in ipairs(due) do
  local f = redis.call('HMGET', job_key(id), 'state', 'retries', 'queue')
  if f[1] == 'active' and f[3] ~= 'minion_foreground' then
    complete_job(id, f[2], true, '"Worker went away"', now)
    n = n + 1
  else
    redis.call('ZREM', P .. 'leases', id)
  end
end
return {n, #due >= budget and 1 or 0}

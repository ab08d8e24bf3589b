-- hold_repair_lock: the cross-replica repair mutex. Takes the lock when free (SET NX PX), keeps
-- it for another `ms` when this token already holds it, and releases it (ms = 0) only when this
-- token holds it, so a replica never frees a lock that expired and passed to another.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  holder token
-- ARGV[2]  milliseconds to hold it for, or 0 to release
-- Returns  1 when this token holds the lock (or has just released it), 0 otherwise
local key = P .. 'repair_lock'
local token, ms = ARGV[1], tonumber(ARGV[2])
if redis.call('GET', key) == token then
  if ms > 0 then redis.call('PEXPIRE', key, ms) else redis.call('DEL', key) end
  return 1
end
if ms > 0 and redis.call('SET', key, token, 'NX', 'PX', ms) then return 1 end
return 0

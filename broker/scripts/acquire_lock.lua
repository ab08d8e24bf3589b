-- acquire_lock: Minion's lock(name, duration, {limit}). Expired holders of the namespace are
-- dropped first; with `limit` or more live holders of the name the answer is 0. Otherwise a
-- duration > 0 adds one holder expiring at now + duration and a duration <= 0 only checks.
-- Each holder has its own expiry: a short lock never shortens another holder's.
-- include: keys locks
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  lock name
-- ARGV[2]  duration, seconds (float)
-- ARGV[3]  limit (>= 1)
-- Returns  1 when acquired (or, for duration <= 0, when it could be), 0 otherwise
local name = ARGV[1]
local duration = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local now = now_time()

drop_expired_locks(now, nil)
local key = P .. 'lock:' .. name
if redis.call('ZCARD', key) >= limit then return 0 end
if duration <= 0 then return 1 end

local id = istr(redis.call('INCR', P .. 'ids:lock'))
local expires = tstr(now + duration)
redis.call('ZADD', key, expires, id)
redis.call('ZADD', P .. 'locks', expires, id)
redis.call('ZADD', P .. 'lock_ids', tonumber(id), id)
redis.call('HSET', P .. 'lock_names', id, name)
return 1

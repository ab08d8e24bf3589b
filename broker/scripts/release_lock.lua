-- release_lock: Minion's unlock(name): deletes the one live holder of the name that expires
-- soonest.
-- include: keys locks
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  lock name
-- Returns  1 when a holder was deleted, 0 when the name has no live holder
local name = ARGV[1]
local now = now_time()
local first = redis.call('ZRANGEBYSCORE', P .. 'lock:' .. name, '(' .. tstr(now), '+inf', 'LIMIT', 0, 1)
if #first == 0 then return 0 end
drop_holder(first[1], name)
return 1

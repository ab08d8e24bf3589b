-- Lock holders: each holder id sits in lock:<name> and locks (score expires), lock_ids (score id)
-- and lock_names (id -> name). Shared by the lock scripts and repair.

local function drop_holder(id, name)
  redis.call('ZREM', P .. 'lock:' .. name, id)
  redis.call('ZREM', P .. 'locks', id)
  redis.call('ZREM', P .. 'lock_ids', id)
  redis.call('HDEL', P .. 'lock_names', id)
end

-- Deletes up to `max` holders (all when nil) that expired before `now` (Minion's
-- "expires < NOW()"), oldest first; returns how many. Cost is proportional to those deleted.
local function drop_expired_locks(now, max)
  local args = {'ZRANGEBYSCORE', P .. 'locks', '-inf', '(' .. tstr(now)}
  if max then
    args[5], args[6], args[7] = 'LIMIT', 0, max
  end
  local expired = redis.call(unpack(args))
  for _, id in ipairs(expired) do
    local name = redis.call('HGET', P .. 'lock_names', id)
    if name then drop_holder(id, name) else redis.call('ZREM', P .. 'locks', id) end
  end
  return #expired
end

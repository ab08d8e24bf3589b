-- Schedule helpers shared by the schedule scripts (keys as named in broker/keyspace.py).

local function schedule_key(id) return P .. 'schedule:' .. id end

-- Id of the schedule with that name, or nil.
local function schedule_id(name)
  return redis.call('HGET', P .. 'schedule_names', name) or nil
end

-- delete_schedule: removes a schedule by name (Minion's unschedule).
-- include: keys schedules
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  name
-- Returns  1 when the schedule existed, else 0
local id = schedule_id(ARGV[1])
if not id then return 0 end
redis.call('DEL', schedule_key(id))
redis.call('ZREM', P .. 'schedules', id)
redis.call('ZREM', P .. 'schedules_due', id)
redis.call('HDEL', P .. 'schedule_names', ARGV[1])
return 1

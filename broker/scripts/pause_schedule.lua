-- pause_schedule: stops a schedule from firing; it leaves schedules_due (Minion's pause_schedule).
-- include: keys schedules
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  name
-- Returns  1 when the schedule exists (paused already or not), else 0
local id = schedule_id(ARGV[1])
if not id then return 0 end
redis.call('HSET', schedule_key(id), 'paused', '1')
redis.call('ZREM', P .. 'schedules_due', id)
return 1

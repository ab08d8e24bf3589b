-- resume_schedule: lets a paused schedule fire again at its stored next_run; an overdue one fires
-- once at the next dispatch (Minion's resume_schedule).
-- include: keys schedules
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  name
-- Returns  1 when the schedule exists (paused or not), else 0
local id = schedule_id(ARGV[1])
if not id then return 0 end
local sk = schedule_key(id)
redis.call('HSET', sk, 'paused', '0')
redis.call('ZADD', P .. 'schedules_due', tonumber(redis.call('HGET', sk, 'next_run')), id)
return 1

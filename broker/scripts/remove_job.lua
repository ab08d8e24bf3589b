-- remove_job: deletes an inactive, failed or finished job and its index entries (never an active
-- one). Children are untouched; a removed parent no longer blocks them.
-- include: keys jobs
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  job id
-- Returns  1 when removed, 0 when missing or active.
local state = redis.call('HGET', job_key(ARGV[1]), 'state')
if not state or state == 'active' then return 0 end
delete_job(ARGV[1])
return 1

-- retry_job: moves a job back to inactive whatever its state (Minion's retry_job), guarded only
-- by matching retries; options left out keep the job's values.
-- include: keys jobs
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  job id
-- ARGV[2]  expected retries
-- ARGV[3]  options, JSON: {attempts?, delay?, expire?, lax?, parents? (JSON text), priority?, queue?}
-- Returns  1 when retried, 0 when the job is missing or its retries differ.
local id = ARGV[1]
local current = redis.call('HGET', job_key(id), 'retries')
if not current or tonumber(current) ~= tonumber(ARGV[2]) then return 0 end
local o = cjson.decode(ARGV[3])
retry_core(id, o, now_time())
return 1

-- retry_job: moves a job back to inactive whatever its state (Minion's retry_job), guarded only
-- by matching retries, and by the attempt's lease when the caller presents one (then the job
-- must still be active under that lease); options left out keep the job's values.
-- include: keys jobs
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  job id
-- ARGV[2]  expected retries
-- ARGV[3]  options, JSON: {attempts?, delay?, expire?, lax?, parents? (JSON text), priority?, queue?}
-- ARGV[4]  lease, or ""
-- Returns  1 when retried, 0 when the job is missing or its retries (or lease) differ.
local id = ARGV[1]
local f = redis.call('HMGET', job_key(id), 'retries', 'state', 'lease')
if not f[1] or tonumber(f[1]) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[4] ~= '' and (f[2] ~= 'active' or f[3] ~= ARGV[4]) then return 0 end
local o = cjson.decode(ARGV[3])
retry_core(id, o, now_time())
return 1

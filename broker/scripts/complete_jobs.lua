-- complete_jobs: finishes or fails active jobs (Minion's finish_job / fail_job), each guarded by
-- state active and matching retries; a failed job with attempts left is retried automatically
-- with backoff retries^4 + 15 seconds.
-- include: keys jobs
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV     repeated quadruples: job id, expected retries, "finished"|"failed", result JSON text
-- Returns  one 1/0 per job, in order; publishes the worker id on "slots" for each freed slot.
local now = now_time()
local out = {}
for i = 1, #ARGV, 4 do
  out[#out + 1] = complete_job(ARGV[i], ARGV[i + 1], ARGV[i + 2] == 'failed', ARGV[i + 3], now)
    and 1 or 0
end
return out

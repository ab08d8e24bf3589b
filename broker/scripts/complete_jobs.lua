-- complete_jobs: finishes or fails active jobs (Minion's finish_job / fail_job), each guarded by
-- state active and matching retries, and by the attempt's lease when the caller presents one; a
-- failed job with attempts left is retried automatically with backoff retries^4 + 15 seconds.
-- include: keys jobs
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV     repeated quintuples: job id, expected retries, "finished"|"failed", result JSON text,
--          lease ("" when not presented)
-- Returns  {now, then per job in order: its start time when applied, else 0}; publishes the
--          worker id on "slots" for each freed slot.
local now = now_time()
local out = {tstr(now)}
for i = 1, #ARGV, 5 do
  out[#out + 1] = complete_job(ARGV[i], ARGV[i + 1], ARGV[i + 2] == 'failed', ARGV[i + 3], now,
    ARGV[i + 4]) or 0
end
return out

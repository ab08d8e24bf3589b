-- undeliver_jobs: returns jobs that were handed to a worker's stream but never written to it to
-- inactive, unchanged (retries stays, so no handle goes stale), as if never dequeued.
-- include: keys jobs
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  worker id
-- ARGV[2]  the stream's epoch (see subscribe.lua): nothing is returned once the worker has
--          re-subscribed, because the new subscription already got these jobs again;
--          "" for jobs of a Dequeue call whose caller went away before the answer
-- ARGV[3..] pairs: job id, lease it was handed out with
-- Returns  number of jobs returned
local worker = ARGV[1]
if ARGV[2] ~= '' and redis.call('HGET', P .. 'worker:' .. worker, 'stream_epoch') ~= ARGV[2] then
  return 0
end
local now = now_time()
local n = 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HGET', job_key(id), 'lease') == ARGV[i + 1] and hand_back(id, worker, now) then
    n = n + 1
  end
end
if n > 0 then publish_wake('') end
return n

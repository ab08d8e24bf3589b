-- dequeue: hands up to `count` runnable jobs to a worker, best first (priority DESC, id ASC),
-- honouring queues, tasks, min_priority, id, delay, expiry and parents (Minion's dequeue).
-- include: keys jobs dequeue
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  worker id
-- ARGV[2]  most jobs to hand out
-- ARGV[3]  only this job id, or ""
-- ARGV[4]  minimum priority, or ""
-- ARGV[5]  queues, JSON array of strings
-- ARGV[6]  tasks, JSON array of strings (empty: any task)
-- ARGV[7]  lease duration in seconds when the worker has set none (see register_worker)
-- Returns  {now, next_delayed_due or false, job...}; job = {id, task, args, retries, queue, priority,
--          attempts, parents, notes_flat, lease, trace ("" for none), delayed (when it became
--          runnable)}
local worker = ARGV[1]
local count = tonumber(ARGV[2])
local only_id = ARGV[3]
local min_priority = tonumber(ARGV[4])
local queues = cjson.decode(ARGV[5])
local tasks = cjson.decode(ARGV[6])

local now = now_time()
local expires = now + lease_duration(worker, tonumber(ARGV[7]))
local next_due = promote(now)
local out = {tstr(now), next_due}
if only_id ~= '' then
  if eligible(only_id, queues, tasks, min_priority, now) then
    out[3] = activate(only_id, worker, now, expires)
  end
  return out
end
local keys = ready_keys(queues, tasks)
for _ = 1, count do
  local id = pick(keys, min_priority, now)
  if not id then break end
  out[#out + 1] = activate(id, worker, now, expires)
end
return out

-- enqueue: creates one or more inactive jobs atomically (Minion's enqueue; batch enqueue).
-- include: keys jobs
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[i]  one job spec per argument, JSON: {task, args (JSON text), attempts, delay, expire|null,
--          lax, notes {key: JSON text}, parents (JSON text), priority, queue}
-- Returns  the new ids, in argument order; publishes the queue of each runnable job on "wake".
local now = now_time()
local ids = {}
local woken = {}
for i = 1, #ARGV do
  local spec = cjson.decode(ARGV[i])
  local id, runnable = create_job(spec, now)
  ids[i] = id
  if runnable then woken[spec.queue] = true end
end
for queue in pairs(woken) do publish_wake(queue) end
return ids

-- enqueue: creates one or more inactive jobs atomically (Minion's enqueue; batch enqueue).
-- include: keys jobs
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[i]  one job spec per argument, JSON: {task, args (JSON text), attempts, delay, expire|null,
--          lax, notes {key: JSON text}, parents (JSON text), priority, queue}
-- Returns  the new ids, in argument order. Publishes each queue on "wake", delayed jobs too, so
--          waiting dequeues and stream dispatchers learn when to look again.
local now = now_time()
local ids = {}
local woken = {}
local first = redis.call('INCRBY', P .. 'ids:job', #ARGV) - #ARGV
for i = 1, #ARGV do
  local spec = cjson.decode(ARGV[i])
  ids[i] = create_job(spec, now, first + i)
  woken[spec.queue] = true
end
for queue in pairs(woken) do publish_wake(queue) end
return ids

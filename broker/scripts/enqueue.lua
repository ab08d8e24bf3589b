-- enqueue: creates one or more inactive jobs atomically (Minion's enqueue; batch enqueue).
-- include: keys jobs
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV     11 per job: task, args (JSON text), attempts, delay, expire ("" never), lax ("1"/"0"),
--          notes (JSON object of JSON texts, or ""), parents (JSON text), priority, queue,
--          trace (the producer's W3C traceparent, or "")
-- Returns  the new ids, in argument order. Publishes each queue on "wake", delayed jobs too, so
--          waiting dequeues and stream dispatchers learn when to look again.
local now = now_time()
local ids = {}
local woken = {}
local count = #ARGV / 11
local first = redis.call('INCRBY', P .. 'ids:job', count) - count
for i = 1, count do
  local a = (i - 1) * 11
  local spec = {task = ARGV[a + 1], args = ARGV[a + 2], attempts = tonumber(ARGV[a + 3]),
    delay = tonumber(ARGV[a + 4]), expire = tonumber(ARGV[a + 5]), lax = ARGV[a + 6] == '1',
    parents = ARGV[a + 8], priority = tonumber(ARGV[a + 9]), queue = ARGV[a + 10],
    trace = ARGV[a + 11]}
  if ARGV[a + 7] ~= '' then spec.notes = cjson.decode(ARGV[a + 7]) end
  ids[i] = create_job(spec, now, first + i)
  woken[spec.queue] = true
end
for queue in pairs(woken) do publish_wake(queue) end
return ids

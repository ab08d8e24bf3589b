-- unregister_worker: deletes a worker and its inbox (Minion's unregister_worker). Its active jobs
-- stay active under its id; repair fails them once it sees the worker gone.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  worker id
-- Returns  1 when the worker existed, 0 otherwise
local id = ARGV[1]
redis.call('ZREM', P .. 'workers', id)
redis.call('ZREM', P .. 'workers_notified', id)
redis.call('ZREM', P .. 'workers_streaming', id)
return redis.call('DEL', P .. 'worker:' .. id, P .. 'inbox:' .. id) > 0 and 1 or 0

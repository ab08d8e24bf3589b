-- register_worker: registers a new worker (next id) or heartbeats an existing one (Minion's
-- register_worker): notified moves to now and status is replaced; host, pid and started stay.
-- A streaming worker's workers_streaming score moves too.
-- An id that no longer exists (unregistered, or removed by repair) is re-created with that id;
-- then "slots" is published for it, so the replica holding its old stream ends that stream (the
-- stream's epoch is gone with the old hash) and the worker subscribes again.
-- Leases: every heartbeat extends the leases of the jobs active under the worker. A worker that
-- lists what it runs gets only those extended; a job active under it that it does not list and
-- that was activated more than `grace` seconds ago never reached it (a lost reply, a dead
-- stream) and is handed back to inactive at once, unchanged.
-- include: keys jobs dequeue
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  worker id, or "" for a new worker
-- ARGV[2]  host
-- ARGV[3]  pid
-- ARGV[4]  status, JSON object text
-- ARGV[5]  the worker's lease duration in seconds, or "" to keep the one it has
-- ARGV[6]  lease duration in seconds for workers that have set none
-- ARGV[7]  grace in seconds before an unlisted job is handed back
-- ARGV[8]  "1" when ARGV[9..] lists every job the worker runs, "" when it does not say
-- ARGV[9..] job ids the worker runs
-- Returns  {worker id, created (1/0), lost job id...}: lost are listed jobs that are no longer
--          active under the worker
local id, host, pid, status = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = now_time()

if id == '' then
  id = istr(redis.call('INCR', P .. 'ids:worker'))
elseif tonumber(redis.call('GET', P .. 'ids:worker') or '0') < tonumber(id) then
  -- A chosen id beyond the sequence: move the sequence on so no later new worker reuses it.
  redis.call('SET', P .. 'ids:worker', id)
end

local wk = P .. 'worker:' .. id
local created = 0
if redis.call('EXISTS', wk) == 1 then
  redis.call('HSET', wk, 'notified', tstr(now), 'status', status)
else
  redis.call('HSET', wk, 'host', host, 'pid', pid, 'started', tstr(now), 'notified', tstr(now),
    'status', status)
  redis.call('ZADD', P .. 'workers', tonumber(id), id)
  redis.call('PUBLISH', P .. 'slots', id)
  created = 1
end
if ARGV[5] ~= '' then redis.call('HSET', wk, 'lease_duration', ARGV[5]) end
redis.call('ZADD', P .. 'workers_notified', now, id)
redis.call('ZADD', P .. 'workers_streaming', 'XX', now, id)

local expires = now + lease_duration(id, tonumber(ARGV[6]))
local grace = tonumber(ARGV[7])
local listing = ARGV[8] == '1'
local listed = {}
for i = 9, #ARGV do listed[ARGV[i]] = true end
local handed = 0
for _, jid in ipairs(redis.call('SMEMBERS', P .. 'worker_jobs:' .. id)) do
  if not listing or listed[jid] then
    redis.call('ZADD', P .. 'leases', 'XX', expires, jid)
    listed[jid] = nil
  elseif tonumber(redis.call('HGET', job_key(jid), 'started') or now) <= now - grace then
    if hand_back(jid, id, now) then handed = handed + 1 end
  end
end
if handed > 0 then publish_wake('') end
local out = {tonumber(id), created}
if listing then
  for jid in pairs(listed) do out[#out + 1] = tonumber(jid) end
end
return out

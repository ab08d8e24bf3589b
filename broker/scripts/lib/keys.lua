-- Key names and small helpers shared by every script (mirrors broker/keyspace.py).
-- KEYS[1] is the namespace prefix "jobwire:{<namespace>}:"; every key below starts with it, so a
-- script touches one Redis Cluster slot.
if redis.replicate_commands then redis.replicate_commands() end

local P = KEYS[1]

local function istr(n)
  return string.format('%d', n)
end

local function now_time()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function tstr(t)
  return string.format('%.6f', t)
end

local function job_key(id) return P .. 'job:' .. id end
local function notes_key(id) return P .. 'notes:' .. id end

-- Runnable jobs of one queue and task; the length prefix keeps ("a:b","c") and ("a","b:c") apart.
local function ready_key(queue, task)
  return P .. 'ready:' .. #queue .. ':' .. queue .. ':' .. task
end

-- Jobs of one state and queue, one state and task, one queue and task, and one state, queue and
-- task, scored by id: list_jobs answers any mix of those filters from these. The length prefix
-- keeps queue and task apart as in ready_key.
local function sq_key(state, queue) return P .. 'sq:' .. state .. ':' .. queue end
local function st_key(state, task) return P .. 'st:' .. state .. ':' .. task end
local function qt_key(queue, task) return P .. 'qt:' .. #queue .. ':' .. queue .. ':' .. task end
local function sqt_key(state, queue, task)
  return P .. 'sqt:' .. state .. ':' .. #queue .. ':' .. queue .. ':' .. task
end

-- SADD that runs once per key and member within one script call (batches repeat the same
-- queue and task names); srem_seen must run wherever the member may leave the set.
local sadded = {}
local function sadd_once(key, member)
  local k = key .. '\0' .. member
  if not sadded[k] then
    redis.call('SADD', key, member)
    sadded[k] = true
  end
end
local function srem_seen(key, member)
  redis.call('SREM', key, member)
  sadded[key .. '\0' .. member] = nil
end

-- Ready-set member: zero-padded so that equal priorities sort by id ascending.
local function ready_member(id)
  return string.format('%020d', tonumber(id))
end

-- list_workers: one page of workers, id descending, with Minion's filters (before, ids) and a
-- total that ignores offset and limit (0 when the page is empty, as Minion answers).
-- Cost: O(page + log n) without ids; O(#ids) with them.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  offset
-- ARGV[2]  limit
-- ARGV[3]  before (only ids lower), or ""
-- ARGV[4]  ids, JSON array (empty: every worker)
-- Returns  {total, row...}; row = {id, worker_hash_flat, active job ids}
local offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local before = tonumber(ARGV[3])
local ids = cjson.decode(ARGV[4])
local max = before and ('(' .. istr(before)) or '+inf'

local page, total = {}, 0
if #ids > 0 then
  table.sort(ids, function(a, b) return a > b end)
  local last
  for _, n in ipairs(ids) do
    if n ~= last and (not before or n < before) and redis.call('ZSCORE', P .. 'workers', istr(n)) then
      total = total + 1
      if total > offset and #page < limit then page[#page + 1] = istr(n) end
    end
    last = n
  end
else
  total = redis.call('ZCOUNT', P .. 'workers', '-inf', max)
  if limit > 0 then
    page = redis.call('ZREVRANGEBYSCORE', P .. 'workers', max, '-inf', 'LIMIT', offset, limit)
  end
end
if #page == 0 then total = 0 end

local out = {total}
for _, id in ipairs(page) do
  out[#out + 1] = {id, redis.call('HGETALL', P .. 'worker:' .. id),
    redis.call('SMEMBERS', P .. 'worker_jobs:' .. id)}
end
return out

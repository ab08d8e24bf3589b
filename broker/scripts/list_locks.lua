-- list_locks: one page of live lock holders (expires > now), id descending, optionally only
-- of some names, with a total that ignores offset and limit (0 when the page is empty, as
-- Minion answers). Read-only: expired holders not yet dropped are skipped, never deleted here.
-- Cost: O(page + expired holders not yet dropped) without names; O(holders of the names) with.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  offset
-- ARGV[2]  limit
-- ARGV[3]  names, JSON array of strings (empty: every name)
-- Returns  {total, row...}; row = {id, name, expires}
local offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local names = cjson.decode(ARGV[3])
local now = now_time()
local live = '(' .. tstr(now)

local page, total = {}, 0
if #names > 0 then
  local ids, seen = {}, {}
  for _, name in ipairs(names) do
    if not seen[name] then
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'lock:' .. name, live, '+inf')) do
        ids[#ids + 1] = tonumber(id)
      end
    end
    seen[name] = true
  end
  table.sort(ids, function(a, b) return a > b end)
  total = #ids
  for i = offset + 1, math.min(offset + limit, #ids) do page[#page + 1] = istr(ids[i]) end
else
  total = redis.call('ZCOUNT', P .. 'locks', live, '+inf')
  local skipped, bound = 0, '+inf'
  while #page < limit do
    local chunk = redis.call('ZREVRANGEBYSCORE', P .. 'lock_ids', bound, '-inf', 'LIMIT', 0, 256)
    for _, id in ipairs(chunk) do
      local expires = tonumber(redis.call('ZSCORE', P .. 'locks', id))
      if expires and expires > now then
        skipped = skipped + 1
        if skipped > offset and #page < limit then page[#page + 1] = id end
      end
    end
    if #chunk < 256 then break end
    bound = '(' .. chunk[#chunk]
  end
end
if #page == 0 then total = 0 end

local out = {total}
for _, id in ipairs(page) do
  out[#out + 1] = {id, redis.call('HGET', P .. 'lock_names', id), redis.call('ZSCORE', P .. 'locks', id)}
end
return out

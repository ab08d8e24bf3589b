-- list_schedules: one page of schedules, id descending, with Minion's filters (ANDed; ids and
-- names each "any of") and a total that ignores offset and limit; an empty page has total 0.
-- Without ids or names the page and total come from the schedules index (O(page + log n)).
-- include: keys schedules
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  offset
-- ARGV[2]  limit
-- ARGV[3]  before (only ids lower), or ""
-- ARGV[4]  JSON array of ids (empty: any)
-- ARGV[5]  JSON array of names (empty: any)
-- Returns  {total, row...}; row = {id, schedule_hash_flat}
local offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local before = tonumber(ARGV[3])
local ids, names = cjson.decode(ARGV[4]), cjson.decode(ARGV[5])

local page, total = {}, 0
if #ids > 0 or #names > 0 then
  local wanted
  if #ids > 0 then
    wanted = {}
    for _, id in ipairs(ids) do wanted[tonumber(id)] = true end
  end
  local chosen = {}
  if #names > 0 then
    for _, name in ipairs(names) do
      local id = tonumber(schedule_id(name))
      if id and (not wanted or wanted[id]) then chosen[id] = true end
    end
  else
    chosen = wanted
  end
  local list = {}
  for id in pairs(chosen) do
    if (not before or id < before) and redis.call('ZSCORE', P .. 'schedules', istr(id)) then
      list[#list + 1] = id
    end
  end
  table.sort(list, function(a, b) return a > b end)
  total = #list
  for i = offset + 1, math.min(offset + limit, #list) do page[#page + 1] = istr(list[i]) end
else
  local max = before and ('(' .. istr(before)) or '+inf'
  total = redis.call('ZCOUNT', P .. 'schedules', '-inf', max)
  if limit > 0 then
    page = redis.call('ZREVRANGEBYSCORE', P .. 'schedules', max, '-inf', 'LIMIT', offset, limit)
  end
end
-- Minion's quirk: total is 0 when the page is empty.
if #page == 0 then total = 0 end

local out = {total}
for _, id in ipairs(page) do
  out[#out + 1] = {id, redis.call('HGETALL', schedule_key(id))}
end
return out

-- history: finished and failed jobs per hour for the last 24 hours, oldest first (Minion's
-- buckets at NOW-23h .. NOW, counted into hourly counters as jobs end).
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- Returns  {now, finished_1, failed_1, ..., finished_24, failed_24}
local now = now_time()
local out = {tstr(now)}
for i = 23, 0, -1 do
  local hour = istr(math.floor((now - i * 3600) / 3600))
  local f = redis.call('HMGET', P .. 'history', hour .. ':finished', hour .. ':failed')
  out[#out + 1] = tonumber(f[1] or '0')
  out[#out + 1] = tonumber(f[2] or '0')
end
return out

-- broadcast: appends one remote-control command to the inbox of the listed workers, or of every
-- worker when none are listed (Minion's broadcast). Unknown ids are skipped, as in Minion.
-- Publishes each reached worker's id on "inbox" so streams can deliver the command at once.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  the command, JSON array text [command, arg...]
-- ARGV[2]  worker ids, JSON array (empty: all workers)
-- Returns  1 when at least one worker was reached, 0 otherwise
local message = ARGV[1]
local ids = cjson.decode(ARGV[2])
local reached = 0

local function deliver(id)
  redis.call('RPUSH', P .. 'inbox:' .. id, message)
  redis.call('PUBLISH', P .. 'inbox', id)
  reached = reached + 1
end

if #ids > 0 then
  local seen = {}
  for _, n in ipairs(ids) do
    local id = istr(n)
    if not seen[id] and redis.call('EXISTS', P .. 'worker:' .. id) == 1 then deliver(id) end
    seen[id] = true
  end
else
  local from = '-inf'
  while true do
    local chunk = redis.call('ZRANGEBYSCORE', P .. 'workers', from, '+inf', 'LIMIT', 0, 500)
    for _, id in ipairs(chunk) do deliver(id) end
    if #chunk < 500 then break end
    from = '(' .. chunk[#chunk]
  end
end
return reached > 0 and 1 or 0

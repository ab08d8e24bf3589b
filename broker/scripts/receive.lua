-- receive: returns a worker's pending remote-control commands, oldest first, and empties its
-- inbox in the same step (Minion's receive). Unknown workers have an empty inbox.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  worker id
-- Returns  the commands, each JSON array text [command, arg...]
local key = P .. 'inbox:' .. ARGV[1]
local commands = redis.call('LRANGE', key, 0, -1)
if #commands > 0 then redis.call('DEL', key) end
return commands

-- note_job: merges top-level keys into a job's notes; a JSON null value removes the key.
-- include: keys
-- KEYS[1]  namespace prefix "jobwire:{ns}:"
-- ARGV[1]  job id
-- ARGV[2..] pairs: key, JSON text of the value ("null" removes the key)
-- Returns  1 when the job exists, else 0 (nothing written).
local id = ARGV[1]
if redis.call('EXISTS', job_key(id)) == 0 then return 0 end
for i = 2, #ARGV, 2 do
  local key, value = ARGV[i], ARGV[i + 1]
  if value == 'null' then
    redis.call('HDEL', notes_key(id), key)
    redis.call('ZREM', P .. 'note:' .. key, id)
  else
    redis.call('HSET', notes_key(id), key, value)
    redis.call('ZADD', P .. 'note:' .. key, tonumber(id), id)
    redis.call('SADD', P .. 'notekeys', key)
  end
end
return 1

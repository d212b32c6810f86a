-- unfreeze.lua: undoes freeze.lua when the new key turned out to be taken: the session stays
-- where it was, with its own deadline again.
-- KEYS[1]  the session's hash   ARGV[1]  the mark freeze.lua set
-- Returns 1 when the session was released, 0 when it is not marked so (gone: the lease ran out).
local key = KEYS[1]
if redis.call('HGET', key, 'm') ~= ARGV[1] then
  return 0
end
redis.call('HDEL', key, 'm')
redis.call('PEXPIREAT', key, redis.call('HGET', key, 'e'))
return 1

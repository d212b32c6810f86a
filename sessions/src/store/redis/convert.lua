-- Replaces a session stored in the old layout (a hash, legacy.rs) by its entry, if the hash is
-- still exactly what was read.
-- KEYS[1]  the session's key
-- ARGV[1]  the entry's bytes   ARGV[2]  its end, ms since the Unix epoch (PXAT)
-- ARGV[3..] the hash's field, value pairs as read
-- Returns 1 when replaced, 0 when the key changed since it was read.
local key = KEYS[1]
if redis.call('TYPE', key)['ok'] ~= 'hash' then
  return 0
end
if redis.call('HLEN', key) * 2 ~= #ARGV - 2 then
  return 0
end
for i = 3, #ARGV, 2 do
  if redis.call('HGET', key, ARGV[i]) ~= ARGV[i + 1] then
    return 0
  end
end
redis.call('DEL', key)
redis.call('SET', key, ARGV[1], 'PXAT', ARGV[2])
redis.call('EXISTS', key)
return 1

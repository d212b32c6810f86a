-- Files a new session; never overwrites one (layout: layout.rs).
-- KEYS[1]  the session's hash
-- ARGV[1]  created_at (ms since the epoch)   ARGV[2]  expires_at (ms)
-- ARGV[3..] hash field, value, hash field, value, ... (slot revisions included)
-- Returns 1 when created, 0 when the key is taken (a session being moved included).
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  return 0
end
redis.call('HSET', key, 'c', ARGV[1], 'e', ARGV[2])
-- In chunks: unpack has a stack limit.
for from = 3, #ARGV, 1000 do
  redis.call('HSET', key, unpack(ARGV, from, math.min(from + 999, #ARGV)))
end
-- A deadline in the past deletes the key at once.
redis.call('PEXPIREAT', key, ARGV[2])
return 1

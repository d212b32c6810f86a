-- freeze.lua: the first step of a cycle on Redis Cluster, where the old and the new key live in
-- different hash slots and no script can touch both (see cycle.rs). Runs after apply.lua.
-- KEYS[1]  the session's hash
-- ARGV[1]  the mark: the new key   ARGV[2]  the lease (ms)   ARGV[3..] the changes (apply.lua)
-- Checks the changes against the stored session without writing them; when they fit, marks
-- the session as moving (`m`): from then on every load finds it absent and every save finds
-- it missing, so nothing written to it can be lost. The key expires within the lease unless
-- it ends sooner: a mover that dies leaves nothing that lives on.
-- Returns {'frozen', field, value, ...} (the whole hash, mark included) or the refusal of
-- prepare() in apply.lua ({'missing'} for a session that is gone or another cycle is moving).
local key = KEYS[1]
local at, state = prepare(key)
if not at then
  return state
end
redis.call('HSET', key, 'm', ARGV[1])
local lease, left = tonumber(ARGV[2]), redis.call('PTTL', key)
if left < 0 or left > lease then
  redis.call('PEXPIRE', key, lease)
end
local entries = redis.call('HGETALL', key)
table.insert(entries, 1, 'frozen')
return entries

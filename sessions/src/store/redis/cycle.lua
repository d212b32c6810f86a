-- cycle.lua: moves a session to a new key with a changeset applied, atomically (one server,
-- both keys on it). Runs after apply.lua.
-- KEYS[1]  the session's hash   KEYS[2]  the new key
-- ARGV[1]  created_at (ms)      ARGV[2]  expires_at (ms)      ARGV[3..] the changes (apply.lua)
-- Returns {'ok'}, {'collision'} (KEYS[2] is taken) or the refusal of prepare() in apply.lua
-- ({'missing'} for a session that is gone or being moved); on every refusal nothing is written.
local from, to = KEYS[1], KEYS[2]
local at, state = prepare(from)
if not at then
  return state
end
if redis.call('EXISTS', to) == 1 then
  return {'collision'}
end
write(from, at, state, {'c', ARGV[1], 'e', ARGV[2]})
redis.call('RENAME', from, to)
-- A deadline in the past deletes the key at once.
redis.call('PEXPIREAT', to, ARGV[2])
return {'ok'}

-- save.lua: applies one changeset to a stored session, atomically. Runs after apply.lua.
-- KEYS[1]  the session's hash
-- ARGV[1]  created_at (ms), or '' to keep the stored deadline   ARGV[2]  expires_at (ms)
-- ARGV[3..] the changes (see apply.lua)
-- Returns {'ok'}, or the refusal of prepare() in apply.lua ({'missing'} for a session that is
-- gone or being moved): then nothing was written.
local key = KEYS[1]
local at, state = prepare(key)
if not at then
  return state
end
if ARGV[1] == '' then
  write(key, at, state, nil)
else
  write(key, at, state, {'c', ARGV[1], 'e', ARGV[2]})
  -- A deadline in the past deletes the key at once.
  redis.call('PEXPIREAT', key, ARGV[2])
end
return {'ok'}

-- save_fast.lua: the common save, run before apply.lua is even read: a field update of one
-- slot whose fields are all stored already, with the deadline, no expectations. One HMGET,
-- one HSET, one PEXPIREAT, and none of the general machinery. Anything else (a new field, a
-- session stored before revisions, several changes) writes nothing here and goes on to the
-- general path below, which answers the same for every case this one handles.
-- ARGV: created_at, expires_at, 'F', slot, '<version>:<format>:', n, field, bytes, ...
if ARGV[1] ~= '' and ARGV[3] == 'F' and #ARGV == 6 + 2 * ARGV[6] and #ARGV <= 1000 then
  local key, slot, prefix = KEYS[1], ARGV[4], ARGV[5]
  local head = 'f:' .. string.len(slot) .. ':' .. slot .. ':'
  local names = {'e', 'm', 'h:' .. slot, 'r:' .. slot}
  for j = 7, #ARGV, 2 do
    names[#names + 1] = head .. ARGV[j]
  end
  local stored = redis.call('HMGET', key, unpack(names))
  local header, revision = stored[3], stored[4]
  local known = revision and header and string.sub(header, 1, #prefix) == prefix
  for j = 5, #names do
    known = known and stored[j]
  end
  if stored[1] and not stored[2] and known then
    local args = {}
    for j = 7, #ARGV, 2 do
      args[#args + 1] = names[(j - 7) / 2 + 5]
      args[#args + 1] = ARGV[j + 1]
    end
    args[#args + 1] = 'r:' .. slot
    args[#args + 1] = string.format('%d', tonumber(revision) + 1)
    args[#args + 1] = 'c'
    args[#args + 1] = ARGV[1]
    args[#args + 1] = 'e'
    args[#args + 1] = ARGV[2]
    redis.call('HSET', key, unpack(args))
    redis.call('PEXPIREAT', key, ARGV[2])
    return {'ok'}
  end
end

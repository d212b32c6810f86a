-- The compare-and-swap of one session entry (the layout: redis.rs; the entry: store/blob.rs).
-- KEYS[1]  the session's key
-- ARGV[1]  the first 9 bytes (marker, version) the stored entry must start with;
--          '' when nothing may be stored there
-- ARGV[2]  the new entry's bytes; '' deletes
-- ARGV[3]  the new entry's end, ms since the Unix epoch (PXAT)
-- ARGV[4]  '1' when this script keeps the owner index (one server); '0' when the caller does
--          (Redis Cluster, where the index lives in another hash slot)
-- ARGV[5]  the new entry's owner as '=' .. owner; '' for none
-- Returns 0 when the stored entry is not the expected one (nothing is written); 1 when it
-- wrote and the owner did not change (the common save: no index work, the smallest reply);
-- else {1, the replaced entry's owner ('=' .. owner, or ''), the new owner's index size when
-- this script bound the session to it (else 0)}.
local key = KEYS[1]
local stored = redis.pcall('GET', key)
-- Not a string (an old-layout hash, which a load converts first, or foreign data): refused.
if type(stored) == 'table' then
  return 0
end
if ARGV[1] == '' then
  if stored then
    return 0
  end
elseif not stored or string.sub(stored, 1, 9) ~= ARGV[1] then
  return 0
end
local old = ''
-- A live entry (kind 1 at byte 10; 17 when bound to its key) names its owner at byte 35: a
-- 4-byte length (all ones for none), then the owner.
local kind = stored and string.byte(stored, 10)
if (kind == 1 or kind == 17) and #stored >= 38 then
  local length = struct.unpack('>I4', stored, 35)
  if length ~= 4294967295 then
    old = '=' .. string.sub(stored, 39, 38 + length)
  end
end
if ARGV[2] == '' then
  redis.call('DEL', key)
else
  -- An end in the past deletes the key at once.
  redis.call('SET', key, ARGV[2], 'PXAT', ARGV[3])
end
-- A read after the write: a client tracking its reads (the local cache) hears of the next
-- change of this key too.
redis.call('EXISTS', key)
if old == ARGV[5] then
  return 1
end
local size = 0
if ARGV[4] == '1' then
  -- The index keys: the session key's prefix, 'o:', the owner in braces; the member is the
  -- session key (the 64 hex digits inside the key's braces).
  local prefix = string.sub(key, 1, #key - 66) .. 'o:{'
  local member = string.sub(key, #key - 64, #key - 1)
  if old ~= '' then
    redis.call('SREM', prefix .. string.sub(old, 2) .. '}', member)
  end
  if ARGV[5] ~= '' then
    local index = prefix .. string.sub(ARGV[5], 2) .. '}'
    redis.call('SADD', index, member)
    size = redis.call('SCARD', index)
  end
end
return {1, old, size}

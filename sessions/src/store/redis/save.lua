-- Applies one changeset to a stored session, atomically (layout: layout.rs).
-- KEYS[1]  the session's hash
-- ARGV[1]  created_at (ms), or '' to keep the stored deadline   ARGV[2]  expires_at (ms)
-- ARGV[3..] the changes, each one of:
--   'P', slot, header, n, field, bytes, ... (n pairs)   put the slot whole
--   'F', slot, version, format, n, field, bytes, ...    update fields of a slot with that header
--   'R', slot                                           remove the slot
--   'G', slot, header, field list, n, field, bytes, ... guard: the stored slot must be exactly this
--                                                       (header, field list and every field's bytes)
-- Returns {'ok'}, {'missing'} (no session: nothing written), {'slot_missing', slot},
-- {'slot_changed', slot, stored header} or {'guard', slot}. Every check
-- runs before anything is written: a refused changeset writes nothing.
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return {'missing'}
end

local function split(list)
  local names, pos = {}, 1
  while pos <= #list do
    local colon = string.find(list, ':', pos, true)
    if not colon then break end
    local length = tonumber(string.sub(list, pos, colon - 1))
    if not length then break end
    names[#names + 1] = string.sub(list, colon + 1, colon + length)
    pos = colon + length + 1
  end
  return names
end

local function join(names)
  local parts = {}
  for i, name in ipairs(names) do
    parts[i] = #name .. ':' .. name
  end
  return table.concat(parts)
end

local function index_of(names, name)
  for i, candidate in ipairs(names) do
    if candidate == name then return i end
  end
  return nil
end

local function field_key(slot, field)
  return 'f:' .. #slot .. ':' .. slot .. ':' .. field
end

-- Deletes a slot's header, field list and every field entry.
local function clear_slot(slot)
  local prefix = 'f:' .. #slot .. ':' .. slot .. ':'
  redis.call('HDEL', key, 'h:' .. slot, 'o:' .. slot)
  for _, name in ipairs(redis.call('HKEYS', key)) do
    if string.sub(name, 1, #prefix) == prefix then
      redis.call('HDEL', key, name)
    end
  end
end

-- Read the changes.
local changes, i = {}, 3
while i <= #ARGV do
  local change = {kind = ARGV[i], slot = ARGV[i + 1]}
  if change.kind == 'P' then
    change.header, change.n, change.first = ARGV[i + 2], tonumber(ARGV[i + 3]), i + 4
    i = change.first + 2 * change.n
  elseif change.kind == 'F' then
    change.version, change.format = ARGV[i + 2], ARGV[i + 3]
    change.n, change.first = tonumber(ARGV[i + 4]), i + 5
    i = change.first + 2 * change.n
  elseif change.kind == 'R' then
    i = i + 2
  elseif change.kind == 'G' then
    change.header, change.order = ARGV[i + 2], ARGV[i + 3]
    change.n, change.first = tonumber(ARGV[i + 4]), i + 5
    i = change.first + 2 * change.n
  else
    return redis.error_reply('sessions: unknown change kind ' .. tostring(change.kind))
  end
  changes[#changes + 1] = change
end

-- Check everything before writing anything.
for _, change in ipairs(changes) do
  if change.kind == 'F' then
    local header = redis.call('HGET', key, 'h:' .. change.slot)
    if not header then
      return {'slot_missing', change.slot}
    end
    local version, format = string.match(header, '^(%d+):(%d+):')
    if version ~= change.version or format ~= change.format then
      return {'slot_changed', change.slot, header}
    end
  elseif change.kind == 'G' then
    local header = redis.call('HGET', key, 'h:' .. change.slot)
    if header ~= change.header or redis.call('HGET', key, 'o:' .. change.slot) ~= change.order then
      return {'guard', change.slot}
    end
    for j = change.first, change.first + 2 * change.n - 1, 2 do
      if redis.call('HGET', key, field_key(change.slot, ARGV[j])) ~= ARGV[j + 1] then
        return {'guard', change.slot}
      end
    end
  end
end

-- Write.
local slots = split(redis.call('HGET', key, 's') or '')
local slots_changed = false
for _, change in ipairs(changes) do
  local slot = change.slot
  if change.kind == 'P' then
    clear_slot(slot)
    if not index_of(slots, slot) then
      slots[#slots + 1] = slot
      slots_changed = true
    end
    local names = {}
    redis.call('HSET', key, 'h:' .. slot, change.header)
    for j = change.first, change.first + 2 * change.n - 1, 2 do
      if not index_of(names, ARGV[j]) then names[#names + 1] = ARGV[j] end
      redis.call('HSET', key, field_key(slot, ARGV[j]), ARGV[j + 1])
    end
    redis.call('HSET', key, 'o:' .. slot, join(names))
  elseif change.kind == 'F' then
    local names = split(redis.call('HGET', key, 'o:' .. slot) or '')
    local grown = false
    for j = change.first, change.first + 2 * change.n - 1, 2 do
      if not index_of(names, ARGV[j]) then
        names[#names + 1] = ARGV[j]
        grown = true
      end
      redis.call('HSET', key, field_key(slot, ARGV[j]), ARGV[j + 1])
    end
    if grown then
      redis.call('HSET', key, 'o:' .. slot, join(names))
    end
  elseif change.kind == 'R' then
    clear_slot(slot)
    local at = index_of(slots, slot)
    if at then
      table.remove(slots, at)
      slots_changed = true
    end
  end
end
if slots_changed then
  redis.call('HSET', key, 's', join(slots))
end
if ARGV[1] ~= '' then
  redis.call('HSET', key, 'c', ARGV[1], 'e', ARGV[2])
  -- A deadline in the past deletes the key at once.
  redis.call('PEXPIREAT', key, ARGV[2])
end
return {'ok'}

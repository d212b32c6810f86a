-- Checks and applies a changeset to one stored session (layout: layout.rs). The first part of
-- save.lua, cycle.lua and freeze.lua: each script is this file followed by its own body.
--
-- The changes are read from ARGV, from index 3 on; each one of:
--   'E', slot, revision                                  expect: the slot is stored at this
--                                                        revision ('0': the slot is absent)
--   'F', slot, '<version>:<format>:', n, field, bytes, ... update n fields of a slot stored with
--                                                        that version and format
--   'P', slot, header, n, field, bytes, ...              put the slot whole (n fields)
--   'R', slot                                            remove the slot
--   'G', slot, header, field list, n, field, bytes, ...  guard: the stored slot must be exactly
--                                                        this (header, field list, every field)
-- Expectations come first, so a conflict is reported before any other refusal, as
-- `Record::apply` does. Every check runs before anything is written.
--
-- A slot's revision is its `r:<slot>` entry, a decimal; a slot stored without one (by a release
-- before revisions) is at revision '1', an absent slot at '0'. Every write of a slot moves it
-- by one. The hot path (a field update: one HMGET, one HSET, one PEXPIREAT) builds no tables per
-- change and no field lists unless a field is new.

-- Where each change starts in ARGV.
local function read_changes(first)
  local at, i, argc = {}, first, #ARGV
  while i <= argc do
    local kind = ARGV[i]
    at[#at + 1] = i
    if kind == 'F' or kind == 'P' then
      i = i + 4 + 2 * tonumber(ARGV[i + 3])
    elseif kind == 'G' then
      i = i + 5 + 2 * tonumber(ARGV[i + 4])
    elseif kind == 'E' then
      i = i + 3
    elseif kind == 'R' then
      i = i + 2
    else
      error('sessions: unknown change kind ' .. tostring(kind))
    end
  end
  return at
end

-- What the changes need to know of the stored session, in one HMGET: nil when the session is
-- absent, expired or being moved by a cluster cycle (`m`); else, per slot named by an
-- 'E', 'F' or 'P' change, {header (false when absent), revision, whether `r:` is stored}.
local function read_state(key, at)
  local names, slots = {'e', 'm'}, {}
  for _, i in ipairs(at) do
    local kind = ARGV[i]
    if kind == 'E' or kind == 'F' or kind == 'P' then
      local slot = ARGV[i + 1]
      slots[#slots + 1] = slot
      names[#names + 1] = 'h:' .. slot
      names[#names + 1] = 'r:' .. slot
    end
  end
  local values = redis.call('HMGET', key, unpack(names))
  if not values[1] or values[2] then
    return nil
  end
  local state = {}
  for j, slot in ipairs(slots) do
    local header, revision = values[2 * j + 1], values[2 * j + 2]
    state[slot] = {
      header = header,
      revision = header and (revision or '1') or '0',
      has_revision = revision and true or false,
    }
  end
  return state
end

local function field_key(slot, field)
  return 'f:' .. #slot .. ':' .. slot .. ':' .. field
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

local function next_revision(revision)
  return string.format('%d', tonumber(revision) + 1)
end

-- HSET of a flat name/value list, in chunks (unpack has a stack limit); how many names were new.
local function hset(key, args)
  local added = 0
  for from = 1, #args, 1000 do
    added = added + redis.call('HSET', key, unpack(args, from, math.min(from + 999, #args)))
  end
  return added
end

-- Deletes a slot's header, field list, revision and every field entry.
local function clear_slot(key, slot)
  local prefix = 'f:' .. #slot .. ':' .. slot .. ':'
  local doomed = {'h:' .. slot, 'o:' .. slot, 'r:' .. slot}
  for _, name in ipairs(redis.call('HKEYS', key)) do
    if string.sub(name, 1, #prefix) == prefix then
      doomed[#doomed + 1] = name
    end
  end
  for from = 1, #doomed, 1000 do
    redis.call('HDEL', key, unpack(doomed, from, math.min(from + 999, #doomed)))
  end
end

-- nil when every change fits the stored session; else the reply refusing the changeset:
-- {'conflict', slot, expected, stored}, {'slot_missing', slot}, {'slot_changed', slot, header}
-- or {'guard', slot}.
local function check(key, at, state)
  for _, i in ipairs(at) do
    local kind, slot = ARGV[i], ARGV[i + 1]
    if kind == 'E' then
      local stored = state[slot].revision
      if stored ~= ARGV[i + 2] then
        return {'conflict', slot, ARGV[i + 2], stored}
      end
    elseif kind == 'F' then
      local header, prefix = state[slot].header, ARGV[i + 2]
      if not header then
        return {'slot_missing', slot}
      end
      if string.sub(header, 1, #prefix) ~= prefix then
        return {'slot_changed', slot, header}
      end
    elseif kind == 'G' then
      local n, first = tonumber(ARGV[i + 4]), i + 5
      local stored = redis.call('HMGET', key, 'h:' .. slot, 'o:' .. slot)
      if stored[1] ~= ARGV[i + 2] or stored[2] ~= ARGV[i + 3] then
        return {'guard', slot}
      end
      for j = first, first + 2 * n - 1, 2 do
        if redis.call('HGET', key, field_key(slot, ARGV[j])) ~= ARGV[j + 1] then
          return {'guard', slot}
        end
      end
    end
  end
  return nil
end

-- Applies the checked changes. `tail` (a name/value list, or nil) is written with the first
-- HSET, so a field update and the deadline are one command.
local function write(key, at, state, tail)
  local slots, slots_changed = nil, false
  local function slot_list()
    if not slots then
      slots = split(redis.call('HGET', key, 's') or '')
    end
    return slots
  end
  local function with_tail(args)
    if tail then
      for _, value in ipairs(tail) do
        args[#args + 1] = value
      end
      tail = nil
    end
    return args
  end
  for _, i in ipairs(at) do
    local kind, slot = ARGV[i], ARGV[i + 1]
    if kind == 'F' then
      local n, first, stored = tonumber(ARGV[i + 3]), i + 4, state[slot]
      local args = {}
      for j = first, first + 2 * n - 1, 2 do
        args[#args + 1] = field_key(slot, ARGV[j])
        args[#args + 1] = ARGV[j + 1]
      end
      args[#args + 1] = 'r:' .. slot
      args[#args + 1] = next_revision(stored.revision)
      -- `c` and `e` always exist: only new fields (and a first `r:`) count as added.
      local added = hset(key, with_tail(args))
      if added > (stored.has_revision and 0 or 1) then
        local names = split(redis.call('HGET', key, 'o:' .. slot) or '')
        local known = {}
        for _, name in ipairs(names) do known[name] = true end
        for j = first, first + 2 * n - 1, 2 do
          if not known[ARGV[j]] then
            names[#names + 1] = ARGV[j]
            known[ARGV[j]] = true
          end
        end
        redis.call('HSET', key, 'o:' .. slot, join(names))
      end
    elseif kind == 'P' then
      local n, first, stored = tonumber(ARGV[i + 3]), i + 4, state[slot]
      if stored.header then
        clear_slot(key, slot)
      end
      local list = slot_list()
      local listed = false
      for _, name in ipairs(list) do
        if name == slot then listed = true break end
      end
      if not listed then
        list[#list + 1] = slot
        slots_changed = true
      end
      local names, known, args = {}, {}, {'h:' .. slot, ARGV[i + 2]}
      for j = first, first + 2 * n - 1, 2 do
        if not known[ARGV[j]] then
          names[#names + 1] = ARGV[j]
          known[ARGV[j]] = true
        end
        args[#args + 1] = field_key(slot, ARGV[j])
        args[#args + 1] = ARGV[j + 1]
      end
      args[#args + 1] = 'o:' .. slot
      args[#args + 1] = join(names)
      args[#args + 1] = 'r:' .. slot
      args[#args + 1] = next_revision(stored.revision)
      hset(key, with_tail(args))
    elseif kind == 'R' then
      clear_slot(key, slot)
      local list = slot_list()
      for at_index, name in ipairs(list) do
        if name == slot then
          table.remove(list, at_index)
          slots_changed = true
          break
        end
      end
    end
  end
  if slots_changed then
    redis.call('HSET', key, 's', join(slots))
  end
  if tail then
    redis.call('HSET', key, unpack(tail))
  end
end

-- The changes of ARGV (from index 3 on) and what they need of the stored session, once every
-- check passed: `at, state`; else `nil, reply`: {'missing'} when the session is absent,
-- expired or being moved, or the refusal of check().
local function prepare(key)
  local at = read_changes(3)
  local state = read_state(key, at)
  if not state then
    return nil, {'missing'}
  end
  local refused = check(key, at, state)
  if refused then
    return nil, refused
  end
  return at, state
end

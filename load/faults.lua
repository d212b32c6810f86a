-- wrk script for load/faults.sh: load/cart.lua's mixed reads and writes, but a write counts
-- only once the app acknowledged it (200), so a store outage can be checked for lost writes.
--
--   LOAD_RESULT=result.txt LOAD_STATE=state.txt \
--     wrk -t C -c C -d 30s -s load/faults.lua http://127.0.0.1:PORT -- C SESSIONS 30
--
-- Run it with as many threads as connections (-t C -c C): wrk keeps one Lua state per thread and
-- tells response() nothing about which request it answers, so with ONE connection per thread
-- every response() answers the request() just before it, and the script knows exactly which
-- write (session, add/remove, sku) a 200 or a 503 belongs to. Thread i owns sessions i+1, i+1+C,
-- ... of SESSIONS ("<cookie> <sku>" lines, load/sessions.py create), round robin.
--
-- Per session it keeps the cart as acknowledged by the app: a write changes it only when
-- answered 200. Every 200 carries the whole cart (JSON lines), and it is compared with what the
-- client expects: the acknowledged cart, plus the write when it was one. Outcomes counted:
--   ok              the body is exactly the expected cart
--   lost            the app answered an EMPTY cart where the client had acknowledged lines: the
--                   store forgot the session (a Redis without persistence, killed)
--   contradiction   any other difference: the app acknowledged data the client never saw, or
--                   dropped part of a cart: always a failure
--   resync          after a write whose outcome is unknown (no answer, or a 503 "session not
--                   saved": the store may have applied it before failing; such a session is
--                   only read until then), the next 200 shows exactly that write applied. Not a
--                   lost acknowledged write: an unacknowledged one that landed. Anything else
--                   but the acknowledged cart, that cart plus the write, or an empty (forgotten)
--                   cart is a contradiction
-- A 404 on remove means the store no longer holds the line (lost data): the session is re-read.
-- A Set-Cookie with a different id (the app filed a new session, because the old one was gone)
-- replaces the session's cookie; done() writes the final cookies and carts to $LOAD_STATE.
-- A 503 counts as "503" when it carries a message (x-session-error header, or a body), else
-- as "503-nomsg". Statuses, outcomes and the worst latency are counted per 100 ms of wall-clock time
-- (gettimeofday through LuaJIT's ffi) and written to $LOAD_RESULT, for load/faults_report.py.
-- In the last 3 s only reads are sent, so every cart's content is known exactly at the end.

local ffi = require("ffi")
ffi.cdef [[
   typedef struct { long tv_sec; long tv_usec; } faults_timeval;
   int gettimeofday(faults_timeval *tv, void *tz);
]]
local tv = ffi.new("faults_timeval")
local function now_ms()
   ffi.C.gettimeofday(tv, nil)
   return tonumber(tv.tv_sec) * 1000 + math.floor(tonumber(tv.tv_usec) / 1000)
end

local CATALOGUE = { "apple", "bread", "cheese", "coffee", "olive-oil", "tea" }
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

-- flat tables only (wrk's thread:get): cookies[i], cart_text[i] ("a,b"), uncertain[i] (0 known, 1 a write of unknown outcome, 2 a line found
-- forgotten: re-read);
-- buckets["<100 ms bucket> <key>"] = count, where key is a status ("200", "503", "503-nomsg"),
-- an outcome ("ok", "lost", ...) or "maxms" (the worst latency, a max not a count)
local cookies, carts, cart_text, uncertain, buckets = {}, {}, {}, {}, {}
local next_session, calls, read_percent, writes_until = 0, 0, 70, math.huge
local pending = nil
local unknown_write = {} -- session -> the request whose outcome is unknown (uncertain 1)

function init(args)
   local nthreads = tonumber(args[1])
   local file = assert(io.open(args[2], "r"))
   local n = 0
   for line in file:lines() do
      local cookie, sku = line:match("^(%S+) (%S+)$")
      if cookie then
         if n % nthreads == id then
            table.insert(cookies, cookie)
            table.insert(carts, { sku })
            table.insert(cart_text, sku)
            table.insert(uncertain, 0)
         end
         n = n + 1
      end
   end
   file:close()
   assert(#cookies > 0, "no sessions for thread " .. id)
   read_percent = tonumber(os.getenv("READ_PERCENT") or "70")
   if args[3] then writes_until = os.time() + tonumber(args[3]) - 3 end
   math.randomseed(os.time() + id * 7919)
   sessions_cookies, sessions_carts, sessions_uncertain, time_buckets =
      cookies, cart_text, uncertain, buckets
end

local function bump(bucket, key, n)
   local k = bucket .. " " .. key
   buckets[k] = (buckets[k] or 0) + (n or 1)
end

local function has(cart, sku)
   for i, s in ipairs(cart) do
      if s == sku then return i end
   end
   return nil
end

local function sorted_text(list)
   local copy = {}
   for i, s in ipairs(list) do copy[i] = s end
   table.sort(copy)
   return table.concat(copy, ",")
end

function request()
   calls = calls + 1
   -- wrk calls thread 0's request() once at start-up and throws that request away: a read,
   -- not remembered
   if calls == 1 and id == 0 then
      return wrk.format("GET", "/api/cart", { ["Cookie"] = "session=" .. cookies[1] })
   end
   if pending ~= nil then
      -- no answer came for the previous request (the connection broke): a write may or may
      -- not have been applied
      if pending.op ~= "GET" then
         uncertain[pending.i] = 1
         unknown_write[pending.i] = pending
      end
      bump(math.floor(pending.t / 100), "noanswer")
      pending = nil
   end
   next_session = next_session % #cookies + 1
   local i = next_session
   local cart = carts[i]
   local headers = { ["Cookie"] = "session=" .. cookies[i] }
   local t = now_ms()
   if uncertain[i] ~= 0 or math.random(100) <= read_percent or os.time() >= writes_until then
      pending = { i = i, op = "GET", t = t }
      return wrk.format("GET", "/api/cart", headers)
   end
   if #cart == 0 or (#cart < 3 and math.random(2) == 1) then
      local sku
      repeat sku = CATALOGUE[math.random(#CATALOGUE)] until not has(cart, sku)
      pending = { i = i, op = "ADD", sku = sku, t = t }
      headers["Content-Type"] = "application/json"
      return wrk.format("POST", "/api/cart/items", headers, '{"sku":"' .. sku .. '","qty":1}')
   end
   local sku = cart[math.random(#cart)]
   pending = { i = i, op = "DEL", sku = sku, t = t }
   return wrk.format("DELETE", "/api/cart/items/" .. sku, headers)
end

local function set_cart(i, list)
   carts[i] = list
   cart_text[i] = table.concat(list, ",")
end

function response(status, headers, body)
   local p = pending
   pending = nil
   local t = now_ms()
   if p == nil then return end -- the start-up request of thread 0
   local bucket = math.floor(t / 100)
   local k = bucket .. " maxms"
   local ms = t - p.t
   if (buckets[k] or 0) < ms then buckets[k] = ms end
   local session_error = headers["x-session-error"] or headers["X-Session-Error"]
   if status == 503 then
      -- the message: x-session-error (a save failed) or the body (the session did not load)
      if session_error ~= nil and session_error ~= "" then
         bump(bucket, "503")
         bump(bucket, "msg-header")
         -- the handler ran and the SAVE failed: the store may still have applied it (a commit
         -- whose reply was lost in the crash), so the outcome is unknown, as after a timeout
         if p.op ~= "GET" then
            uncertain[p.i] = 1
            unknown_write[p.i] = p
         end
      elseif body ~= nil and body:find("%S") then
         bump(bucket, "503")
         bump(bucket, "msg-body")
      else
         bump(bucket, "503-nomsg")
      end
   else
      bump(bucket, tostring(status))
   end
   if status == 404 and p.op == "DEL" then
      -- the store no longer holds the line: read the session again (2: forgotten, not unknown)
      uncertain[p.i] = 2
      return
   end
   if status ~= 200 then return end
   -- a new session id (the old session was gone): the client follows it, as a browser would
   local set_cookie = headers["set-cookie"] or headers["Set-Cookie"]
   if set_cookie then
      local new = set_cookie:match("session=([^;]*)")
      if new and new ~= "" and new ~= cookies[p.i] then
         cookies[p.i] = new
         bump(bucket, "newcookie")
      end
   end
   local got = {}
   for sku in body:gmatch('"sku":"([^"]+)"') do table.insert(got, sku) end
   local expected = {}
   for n, s in ipairs(carts[p.i]) do expected[n] = s end
   if p.op == "ADD" then
      table.insert(expected, p.sku)
   elseif p.op == "DEL" then
      table.remove(expected, has(expected, p.sku))
   end
   if sorted_text(got) == sorted_text(expected) then
      bump(bucket, "ok")
   elseif uncertain[p.i] == 1 then
      -- the unknown write, applied on top of the acknowledged cart?
      local w, with = unknown_write[p.i], {}
      for n, s in ipairs(carts[p.i]) do with[n] = s end
      if w.op == "ADD" then
         table.insert(with, w.sku)
      else
         table.remove(with, has(with, w.sku))
      end
      if p.op == "GET" and sorted_text(got) == sorted_text(with) then
         bump(bucket, "resync")
      elseif #got == 0 then
         bump(bucket, "lost")
      else
         bump(bucket, "contradiction")
         io.stderr:write("faults.lua: contradiction after an unknown write: ", w.op, " ", w.sku,
            " acknowledged [", sorted_text(carts[p.i]), "] got [", sorted_text(got), "]\n")
      end
   elseif uncertain[p.i] == 2 then
      bump(bucket, "lost")
   elseif #got == 0 and p.op == "GET" then
      bump(bucket, "lost")
   elseif p.op == "ADD" and #got == 1 and got[1] == p.sku then
      -- the add landed in an empty cart: the session had been forgotten before it
      bump(bucket, "lost")
   else
      bump(bucket, "contradiction")
      io.stderr:write("faults.lua: contradiction: ", p.op, " ", p.sku or "", " expected [",
         sorted_text(expected), "] got [", sorted_text(got), "]\n")
   end
   uncertain[p.i] = 0
   unknown_write[p.i] = nil
   set_cart(p.i, got)
end

function done(summary, latency, requests)
   local result = assert(io.open(os.getenv("LOAD_RESULT"), "w"))
   local state = assert(io.open(os.getenv("LOAD_STATE"), "w"))
   local all = {}
   local left_uncertain = 0
   for _, thread in ipairs(threads) do
      for key, n in pairs(thread:get("time_buckets")) do
         if key:sub(-6) == " maxms" then
            if (all[key] or 0) < n then all[key] = n end
         else
            all[key] = (all[key] or 0) + n
         end
      end
      local cs, carts_, unc = thread:get("sessions_cookies"), thread:get("sessions_carts"),
         thread:get("sessions_uncertain")
      for i, cookie in ipairs(cs) do
         if unc[i] ~= 0 then
            left_uncertain = left_uncertain + 1
         else
            state:write(cookie, " ", carts_[i], "\n")
         end
      end
   end
   state:close()
   local e = summary.errors
   result:write("requests ", summary.requests, "\n")
   result:write("seconds ", string.format("%.2f", summary.duration / 1e6), "\n")
   result:write("socket_errors connect:", e.connect, ",read:", e.read, ",write:", e.write,
      ",timeout:", e.timeout, "\n")
   result:write("p99_ms ", string.format("%.2f", latency:percentile(99) / 1000), "\n")
   result:write("max_ms ", string.format("%.2f", latency.max / 1000), "\n")
   result:write("left_uncertain ", left_uncertain, "\n")
   for key, n in pairs(all) do
      result:write("bucket ", key, " ", n, "\n")
   end
   result:close()
end

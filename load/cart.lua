-- wrk script for the cart app's JSON API: mixed reads and writes over pre-created sessions.
--
--   LOAD_RESULT=result.txt LOAD_STATE=state.txt \
--     wrk -t T -c C -d 60s --latency -s load/cart.lua http://127.0.0.1:PORT -- T SESSIONS 60
--
-- SESSIONS: "<cookie value> <sku>" per line (load/sessions.py create), one session per line, each
-- holding one line of that sku. Thread i (0-based) owns lines i+1, i+1+T, ...: its own slice, so
-- no two threads ever touch one session. wrk gives a script no per-connection state (one Lua
-- state per thread, shared by that thread's C/T connections), so each request takes the next
-- session of its thread's slice, round robin, and sends that session's cookie: with 10,000
-- sessions and C requests in flight at most, a session comes round again only after thousands
-- of other requests, so it never has two requests in flight. The script keeps each session's
-- cart (which skus it holds), so every write is one the app must accept:
--   READ_PERCENT% (env, default 70)  GET /api/cart
--   the rest                         POST /api/cart/items {"sku":..}  (a sku not in the cart)
--                                    or DELETE /api/cart/items/{sku} (a sku in the cart),
--                                    keeping 1 to 3 lines per cart
-- In the last 3 seconds of the run (the last argument: the run's length) only reads are sent,
-- so no write is in flight when wrk stops and every cart's content is known exactly.
-- Any answer but 200 is then an app error. response() counts answers by status; done() writes
-- the counts and wrk's figures to $LOAD_RESULT (key=value lines) and each session's expected
-- cart to $LOAD_STATE (load/sessions.py verify reads every cart back and compares).

local CATALOGUE = { "apple", "bread", "cheese", "coffee", "olive-oil", "tea" }
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

-- carts[i] is session i's skus; cart_text[i] the same joined with "," for done() (wrk's
-- thread:get copies flat tables only: a table of tables crashes wrk 4.1)
local cookies, carts, cart_text, counts = {}, {}, {}, {}
local next_session, calls, read_percent, writes_until = 0, 0, 70, math.huge

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
         end
         n = n + 1
      end
   end
   file:close()
   assert(#cookies > 0, "no sessions for thread " .. id)
   read_percent = tonumber(os.getenv("READ_PERCENT") or "70")
   if args[3] then writes_until = os.time() + tonumber(args[3]) - 3 end
   math.randomseed(os.time() + id * 7919)
   -- exported to done() through thread:get
   sessions_cookies, sessions_carts, status_counts = cookies, cart_text, counts
end

local function has(cart, sku)
   for i, s in ipairs(cart) do
      if s == sku then return i end
   end
   return nil
end

function request()
   calls = calls + 1
   next_session = next_session % #cookies + 1
   local cookie, cart = cookies[next_session], carts[next_session]
   local headers = { ["Cookie"] = "session=" .. cookie }
   -- wrk calls request() once at start-up to check the script and throws that request away:
   -- the first call of every thread is a read, so it changes no cart.
   if calls == 1 or math.random(100) <= read_percent or os.time() >= writes_until then
      return wrk.format("GET", "/api/cart", headers)
   end
   local add = #cart == 0 or (#cart < 3 and math.random(2) == 1)
   if add then
      local sku
      repeat sku = CATALOGUE[math.random(#CATALOGUE)] until not has(cart, sku)
      table.insert(cart, sku)
      cart_text[next_session] = table.concat(cart, ",")
      headers["Content-Type"] = "application/json"
      return wrk.format("POST", "/api/cart/items", headers, '{"sku":"' .. sku .. '","qty":1}')
   end
   local i = math.random(#cart)
   local sku = table.remove(cart, i)
   cart_text[next_session] = table.concat(cart, ",")
   return wrk.format("DELETE", "/api/cart/items/" .. sku, headers)
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local result = assert(io.open(os.getenv("LOAD_RESULT"), "w"))
   local state = assert(io.open(os.getenv("LOAD_STATE"), "w"))
   local by_status = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("status_counts")) do
         by_status[status] = (by_status[status] or 0) + n
      end
      local cs, carts_ = thread:get("sessions_cookies"), thread:get("sessions_carts")
      for i, cookie in ipairs(cs) do
         state:write(cookie, " ", carts_[i], "\n")
      end
   end
   state:close()
   local statuses, non200 = {}, 0
   for status, n in pairs(by_status) do
      table.insert(statuses, status .. ":" .. n)
      if status ~= 200 then non200 = non200 + n end
   end
   table.sort(statuses)
   local e = summary.errors
   local seconds = summary.duration / 1e6
   local lines = {
      "requests=" .. summary.requests,
      "seconds=" .. string.format("%.2f", seconds),
      "rps=" .. string.format("%.0f", summary.requests / seconds),
      "p50_ms=" .. string.format("%.2f", latency:percentile(50) / 1000),
      "p90_ms=" .. string.format("%.2f", latency:percentile(90) / 1000),
      "p99_ms=" .. string.format("%.2f", latency:percentile(99) / 1000),
      "max_ms=" .. string.format("%.2f", latency.max / 1000),
      "non_2xx_3xx=" .. e.status,
      "non_200=" .. non200,
      "socket_errors=" .. (e.connect + e.read + e.write + e.timeout),
      "socket_errors_detail=connect:" .. e.connect .. ",read:" .. e.read .. ",write:" .. e.write
         .. ",timeout:" .. e.timeout,
      "statuses=" .. table.concat(statuses, ","),
   }
   result:write(table.concat(lines, "\n"), "\n")
   result:close()
   print("cart.lua: answers by status: " .. table.concat(statuses, " "))
end

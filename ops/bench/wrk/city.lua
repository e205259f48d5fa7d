-- wrk script for ops/bench/city.py: a city's traffic against Farmacy or the plain service.
--
--   wrk -t2 -c64 -d15s -s ops/bench/wrk/city.lua http://127.0.0.1:PORT -- \
--       mode=menus|orders|mixed tokens=FILE venues=FILE fridges=FILE meals=FILE \
--       route=body|fridge reads=10 run=PREFIX
--
-- menus:  GET /venues/{venue}/menu, a random venue.
-- orders: one unit of a random meal at a random fridge of `fridges` (one line: the hot fridge),
--         as POST /orders {"fridge_id", "lines"} (route=body) or POST /fridges/{id}/orders
--         {"lines"} (route=fridge, which a load balancer can hash on).
-- mixed:  `reads` menu reads, then one order, over and over (per wrk thread).
-- Every request carries a random customer's bearer token (one of the lines of `tokens`); every
-- order a fresh Idempotency-Key (the run's prefix, the thread, a counter: never repeated).
-- done() prints one line "CITYBENCH {json}": requests, seconds, status-code counts, socket
-- errors and latency percentiles in microseconds, for Python to parse.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("thread_index", #threads + 1)
   table.insert(threads, thread)
end

local function lines_of(path)
   local found = {}
   for line in io.lines(path) do
      if line ~= "" then table.insert(found, line) end
   end
   if #found == 0 then error("city.lua: " .. path .. " is empty") end
   return found
end

local function pick(list)
   return list[math.random(#list)]
end

function init(args)
   local options = {}
   for _, arg in ipairs(args) do
      local name, value = arg:match("^([%w_]+)=(.*)$")
      if not name then error("city.lua: expected name=value, got " .. arg) end
      options[name] = value
   end
   mode = options.mode or "menus"
   route = options.route or "body"
   reads = tonumber(options.reads or "10")
   run = options.run or "run"
   tokens = lines_of(options.tokens)
   if mode ~= "orders" then venues = lines_of(options.venues) end
   if mode ~= "menus" then
      fridges = lines_of(options.fridges)
      meals = lines_of(options.meals)
   end
   if mode ~= "menus" and mode ~= "orders" and mode ~= "mixed" then
      error("city.lua: mode must be menus, orders or mixed, got " .. mode)
   end
   if route ~= "body" and route ~= "fridge" then
      error("city.lua: route must be body or fridge, got " .. route)
   end
   math.randomseed(os.time() * 1000 + thread_index)
   counts = {}
end

local function menu()
   return wrk.format("GET", "/venues/" .. pick(venues) .. "/menu",
                     {["Authorization"] = "Bearer " .. pick(tokens)})
end

local function order()
   counter = counter + 1
   local fridge = pick(fridges)
   local lines = '[{"meal_id":"' .. pick(meals) .. '","quantity":1}]'
   local path, body
   if route == "fridge" then
      path, body = "/fridges/" .. fridge .. "/orders", '{"lines":' .. lines .. '}'
   else
      path, body = "/orders", '{"fridge_id":"' .. fridge .. '","lines":' .. lines .. '}'
   end
   return wrk.format("POST", path, {
      ["Authorization"] = "Bearer " .. pick(tokens),
      ["Idempotency-Key"] = run .. "-" .. thread_index .. "-" .. counter,
      ["Content-Type"] = "application/json",
   }, body)
end

local sent = 0

function request()
   sent = sent + 1
   if mode == "menus" then return menu() end
   if mode == "orders" then return order() end
   if sent % (reads + 1) == 0 then return order() end
   return menu()
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local statuses = {}
   for _, thread in ipairs(threads) do
      local counted = thread:get("counts") or {}
      for status, n in pairs(counted) do
         statuses[status] = (statuses[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(statuses) do
      table.insert(parts, string.format('"%d":%d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      'CITYBENCH {"requests":%d,"seconds":%.6f,"statuses":{%s},' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration / 1e6, table.concat(parts, ","),
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
end

-- Shared by the wrk scripts of bench/http.sh. After the run it prints two
-- machine-readable lines, which bench/http/report.py reads:
--
--   WRK_RESULT requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N
--     max_us=N non2xx=N connect=N read=N write=N timeout=N sent=N exhausted=N
--   WRK_HIST us:count,us:count,...
--
-- non2xx is wrk's count of answers with a status above 399. sent and
-- exhausted are filled only by walk.lua (-1 otherwise). WRK_HIST is the
-- latency histogram with values rounded to three significant digits (at
-- most 0.5% off), so that runs can be merged before taking percentiles.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local function three_digits(us)
   local scale = 1
   while us >= 1000 * scale do scale = scale * 10 end
   return math.floor(us / scale + 0.5) * scale
end

function done(summary, latency, requests)
   local sent, exhausted = -1, -1
   for _, thread in ipairs(threads) do
      local s = thread:get("sent")
      if s ~= nil then
         if sent < 0 then sent, exhausted = 0, 0 end
         sent = sent + s
         exhausted = exhausted + (thread:get("exhausted") or 0)
      end
   end
   local seconds = summary.duration / 1e6
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d "
         .. "non2xx=%d connect=%d read=%d write=%d timeout=%d sent=%d exhausted=%d\n",
      summary.requests, summary.duration, summary.requests / seconds,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      summary.errors.status, summary.errors.connect, summary.errors.read,
      summary.errors.write, summary.errors.timeout, sent, exhausted))
   -- #latency distinct values; latency(i) is the i-th value and its count.
   local buckets, order = {}, {}
   for i = 1, #latency do
      local value, count = latency(i)
      local key = three_digits(value)
      if buckets[key] == nil then
         buckets[key] = 0
         table.insert(order, key)
      end
      buckets[key] = buckets[key] + count
   end
   local parts = {}
   for _, key in ipairs(order) do
      table.insert(parts, string.format("%d:%d", key, buckets[key]))
   end
   io.write("WRK_HIST " .. table.concat(parts, ",") .. "\n")
end

-- The first line of a file, without its line break.
function first_line(path)
   local file = assert(io.open(path, "r"), "cannot open " .. tostring(path))
   local line = file:read("*l")
   file:close()
   return assert(line, tostring(path) .. " is empty")
end

-- POSTs each line of a file once, in order, as a JSON body: the import
-- bodies of http-prepare, which must arrive in order. Lines before OFFSET
-- (0 if not given) are skipped, so that successive runs carry on where the
-- previous one stopped (its WRK_RESULT `sent`).
--
-- Use it with one thread and one connection (-t1 -c1): each wrk thread has
-- its own Lua state, and two connections would race. Once every line was
-- sent it sends `{}`, which the client refuses (422), so running out shows
-- as non-2xx answers and as exhausted=1, never as a silent repeat.
--   wrk -t1 -c1 ... -s bench/http/walk.lua URL -- BODIES_FILE [OFFSET]
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local bodies = {}
local next_body = 1
local headers = { ["Content-Type"] = "application/json" }
sent = 0
exhausted = 0

function init(args)
   local skip = tonumber(args[2] or "0")
   local file = assert(io.open(args[1], "r"), "cannot open " .. tostring(args[1]))
   local n = 0
   for line in file:lines() do
      n = n + 1
      if n > skip and #line > 0 then table.insert(bodies, line) end
   end
   file:close()
   assert(#bodies > 0, tostring(args[1]) .. " holds no bodies after line " .. skip)
end

function request()
   local body = bodies[next_body]
   if body == nil then
      exhausted = 1
      body = "{}"
   else
      next_body = next_body + 1
      sent = sent + 1
   end
   return wrk.format("POST", wrk.path, headers, body)
end

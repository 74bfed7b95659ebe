-- POSTs the same JSON body, the first line of the file given after `--`,
-- on every request:
--   wrk ... -s bench/http/post.lua URL -- BODY_FILE
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

function init(args)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.body = first_line(args[1])
end

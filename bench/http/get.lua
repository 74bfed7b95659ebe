-- GET on the URL given to wrk; only adds the result line.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

-- A fixed request (wrk's own fast path, no request() function): used for ping.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

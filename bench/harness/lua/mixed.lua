-- Hands out prebuilt, distinct Hawk-signed requests of any method and target, in file order.
--   wrk -s mixed.lua URL -- FILE HOST
-- FILE holds one request a line: `METHOD\tTARGET\t<Authorization value>\t<JSON body or nothing>`.
-- As in signed.lua, every request string is built in init(), before wrk starts its clock.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local prebuilt = {}
bench_loaded, bench_handed = 0, 0

function init(args)
  local file, host = args[1], args[2]
  local n = 0
  for line in io.lines(file) do
    local method, target, auth, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$")
    local head = method .. " " .. target .. " HTTP/1.1\r\nHost: " .. host
      .. "\r\nAuthorization: " .. auth
    n = n + 1
    if body ~= "" then
      prebuilt[n] = head .. "\r\nContent-Type: application/json\r\nContent-Length: "
        .. #body .. "\r\n\r\n" .. body
    else
      prebuilt[n] = head .. "\r\n\r\n"
    end
  end
  bench_loaded = n
  collectgarbage()
end

function request()
  bench_handed = bench_handed + 1
  return prebuilt[(bench_handed - 1) % bench_loaded + 1]
end

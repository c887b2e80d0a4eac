-- Shared by every wrk run of the harness: after the run, print one line
--   BENCH {"requests":..,"duration_us":..,"p50_us":..,...}
-- holding wrk's counters, its latency percentiles and, per thread, how many prebuilt requests
-- were loaded and handed out (`reused` > 0: a request string was sent twice).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local loaded, handed, reused = 0, 0, 0
  for _, thread in ipairs(threads) do
    local n, h = thread:get("bench_loaded") or 0, thread:get("bench_handed") or 0
    loaded, handed = loaded + n, handed + h
    if n > 0 and h > n then reused = reused + h - n end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},' ..
    '"loaded":%d,"handed":%d,"reused":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9),
    loaded, handed, reused))
end

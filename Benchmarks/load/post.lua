-- wrk script: POST the chat-completions request body from $WRK_BODY_FILE and print a
-- machine-readable summary line ("WRKJSON {...}") when the run ends.
-- No response() callback on purpose: defining one makes wrk parse every body in Lua.
local path = os.getenv("WRK_BODY_FILE")
local f = assert(io.open(path, "rb"), "cannot open WRK_BODY_FILE " .. tostring(path))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local auth = os.getenv("WRK_AUTHORIZATION")
if auth ~= nil and auth ~= "" then
   wrk.headers["Authorization"] = auth
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.2f,"stdev":%.2f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end

-- wrk script for bench_serving.py: POST the JSON body in $WRK_BODY_FILE and print one summary line
-- "WRKJSON {...}" (latencies in microseconds, error counts; status = responses with status > 399).
-- With WRK_COUNT_STATUS=1 every response's status is also counted (costs a little throughput).
local f = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  codes = {}
end

if os.getenv("WRK_COUNT_STATUS") == "1" then
  function response(status, headers, body)
    codes[status] = (codes[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("codes")
    if c then
      for k, v in pairs(c) do
        merged[tostring(k)] = (merged[tostring(k)] or 0) + v
      end
    end
  end
  local parts = {}
  for k, v in pairs(merged) do
    table.insert(parts, string.format('"%s":%d', k, v))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"codes":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status,
    e.timeout, table.concat(parts, ",")))
end

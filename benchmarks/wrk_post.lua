-- wrk script for bench_serving.py: POST the JSON body in $WRK_BODY_FILE and print one summary line
-- "WRKJSON {...}" (latencies in microseconds, error counts; status = responses with status > 399).
-- With WRK_COUNT_STATUS=1 every response's status is also counted (costs a little throughput), and
-- "ok_p99_us" estimates the p99 of the 200s alone: wrk keeps one latency histogram for every answer,
-- so with a share s of non-200 answers (503s from load shedding, which come back faster than any
-- accepted request) it is the histogram's 100 * (s + 0.99 * (1 - s)) percentile.
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
  local ok_p99 = latency:percentile(99)
  local ok = merged["200"]
  if ok ~= nil and summary.requests > 0 then
    local shed = 1 - ok / summary.requests
    ok_p99 = latency:percentile(math.min(100, 100 * (shed + 0.99 * (1 - shed))))
  end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"ok_p99_us":%d,' ..
    '"codes":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status,
    e.timeout, ok_p99, table.concat(parts, ",")))
end

-- wrk script of the benchmark: POST the JSON bodies of $BENCH_BODIES (one a line) in
-- turn; stop after $BENCH_LIMIT responses when set; print the figures as one JSON line.
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do
  if #line > 0 then bodies[#bodies + 1] = line end
end
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0") or 0
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0") or 0
local index = offset
local seen = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  index = index % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[index])
end

if limit > 0 then
  function response(status, headers, body)
    seen = seen + 1
    if seen >= limit then wrk.thread:stop() end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end

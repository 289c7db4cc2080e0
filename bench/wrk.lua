-- wrk script for the bench: GET round-robin over paths, or one fixed POST body; JSON summary.
-- Arguments after `--`: "get" path... | "post" body-file content-type

local paths, next_path = {}, 0

function init(args)
  if args[1] == "post" then
    local file = assert(io.open(args[2], "rb"))
    wrk.body = file:read("*a")
    file:close()
    wrk.method = "POST"
    wrk.headers["Content-Type"] = args[3]
    request = nil -- a static request: wrk builds it once
    return
  end
  for k = 2, #args do
    paths[#paths + 1] = args[k]
  end
end

function request()
  next_path = next_path % #paths + 1
  return wrk.format(nil, paths[next_path])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end

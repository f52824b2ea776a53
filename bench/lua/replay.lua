-- Replays pre-rendered raw HTTP requests, picked at random, and prints the
-- latency distribution as one JSON line when the run ends.
-- Usage: wrk -s replay.lua URL -- /path/to/requests.bin
-- requests.bin holds complete requests separated by the line "\n--wrk-request--\n".

local requests = {}

local function load(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  local sep = "\n--wrk-request--\n"
  local start = 1
  while true do
    local i, j = string.find(data, sep, start, true)
    if not i then
      if start <= #data then
        table.insert(requests, string.sub(data, start))
      end
      break
    end
    table.insert(requests, string.sub(data, start, i - 1))
    start = j + 1
  end
end

function init(args)
  load(args[1])
  math.randomseed(os.time() + (tonumber(args[2]) or 0))
end

function request()
  return requests[math.random(#requests)]
end

function done(summary, latency, reqs)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end

-- wrk script: POST the JSON body in the file given after `--`, report requests and latency
-- percentiles (microseconds) as one JSON line that bench/serve.py reads.
init = function(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  wrk.headers["Content-Type"] = "application/json"
  file:close()
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "errors": %d, "non_2xx": %d, "seconds": %f, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, errors.connect + errors.read + errors.write + errors.timeout,
    errors.status, summary.duration / 1e6, latency:percentile(50), latency:percentile(99)))
end

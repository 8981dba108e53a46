-- Static POST for wrk (client_credentials, password login).
-- Configured through the environment (set per run by bench/lib/measure.mjs):
--   BENCH_BODY    form body (application/x-www-form-urlencoded)
--   BENCH_AUTH    optional Authorization header value
--   BENCH_COOKIE  optional Cookie header value
--   BENCH_ORIGIN  optional Origin header value
--   BENCH_ACCEPT  Accept header (default application/json)
--   BENCH_EXPECT  expected HTTP status (default 200); anything else counts
--                 as an error and is reported by done() as "bench_errors: N"
--   BENCH_EXPECT_MATCH  optional Lua pattern the response body must match
--                 (e.g. '"active"%s*:%s*true' for introspection); a 2xx
--                 response that does not match counts as an error ("nomatch")
--   BENCH_METHOD  HTTP method (default POST; GET sends no body)
--   BENCH_BODY_FILE  optional file with one form body per line: each request
--                 takes the next one (each thread starts at its own offset and
--                 wraps around), e.g. distinct tokens for introspection. Without
--                 it the request is static (formatted once by wrk)
-- done() also prints exact latency percentiles from wrk's histogram
-- ("bench_latency_us: p50=.. p90=.. p99=.."), finer than wrk's own text.
wrk.method = os.getenv("BENCH_METHOD") or "POST"
if wrk.method == "" then wrk.method = "POST" end
if wrk.method ~= "GET" then
  wrk.body = os.getenv("BENCH_BODY") or ""
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
wrk.headers["Accept"] = os.getenv("BENCH_ACCEPT") or "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
local cookie = os.getenv("BENCH_COOKIE")
if cookie and cookie ~= "" then wrk.headers["Cookie"] = cookie end
local origin = os.getenv("BENCH_ORIGIN")
if origin and origin ~= "" then wrk.headers["Origin"] = origin end

local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
local match = os.getenv("BENCH_EXPECT_MATCH")
if match == "" then match = nil end

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local body_file = os.getenv("BENCH_BODY_FILE")
if body_file == "" then body_file = nil end

function init(args)
  ok = 0
  errors = 0
  statuses = {}
  if body_file then
    bodies = {}
    for line in io.lines(body_file) do
      if line ~= "" then bodies[#bodies + 1] = line end
    end
    if #bodies == 0 then error("BENCH_BODY_FILE " .. body_file .. " is empty") end
    local n = tonumber(os.getenv("BENCH_THREADS") or "1") or 1
    nextb = (tid * math.floor(#bodies / n)) % #bodies
  end
end

if body_file then
  function request()
    nextb = nextb % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[nextb])
  end
end

function response(status, headers, body)
  if status == expect and (not match or string.find(body or "", match)) then
    ok = ok + 1
  else
    errors = errors + 1
    local k = tostring(status)
    if status == expect then k = k .. "-nomatch" end
    statuses[k] = (statuses[k] or 0) + 1
    if errors <= 3 then
      io.stderr:write("unexpected status " .. status .. ": " .. string.sub(body or "", 1, 200) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local total_ok, total_err, st = 0, 0, {}
  for _, t in ipairs(threads) do
    total_ok = total_ok + (t:get("ok") or 0)
    total_err = total_err + (t:get("errors") or 0)
    local s = t:get("statuses") or {}
    for k, v in pairs(s) do st[k] = (st[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(st) do table.insert(parts, k .. "=" .. v) end
  io.write(string.format("bench_ok: %d\nbench_errors: %d\nbench_error_statuses: %s\n",
    total_ok, total_err, table.concat(parts, ",")))
  io.write(string.format("bench_latency_us: p50=%d p90=%d p99=%d mean=%.1f\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end

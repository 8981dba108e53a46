-- refresh_token grant with rotation, for wrk.
-- Every successful refresh returns a NEW refresh token and invalidates the old
-- one, so each wrk thread keeps a queue of live tokens: request() pops one,
-- response() parses the rotated token out of the JSON body and pushes it back.
-- A failed request loses its token (it cannot be known which one it was), so
-- seed more tokens than connections per thread.
--
-- Environment (set per run by bench/lib/measure.mjs):
--   REFRESH_TOKENS_IN   file with one refresh token per line; line i goes to
--                       thread (i mod BENCH_THREADS)
--   BENCH_THREADS       wrk's -t
--   REFRESH_TOKENS_OUT  optional: done() writes the live tokens left in the
--                       queues here (so a warmup run can hand them on)
--   REFRESH_CLIENT_ID   client_id (public client: sent in the body)
--   BENCH_AUTH          optional Authorization header (confidential client)
--   REFRESH_SCOPE       optional scope parameter
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end

local client_id = os.getenv("REFRESH_CLIENT_ID") or ""
local scope = os.getenv("REFRESH_SCOPE") or ""

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local threads = {}
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  errors = 0
  empty = 0
  statuses = {}
  queue = {}
  qhead = 1
  qtail = 0
  -- must equal wrk -t: every token goes to exactly one thread (a token sent
  -- twice would be a refresh-token replay)
  local n = tonumber(os.getenv("BENCH_THREADS") or "")
  if not n or n < 1 then error("BENCH_THREADS must be set to wrk's -t") end
  local path = os.getenv("REFRESH_TOKENS_IN")
  if not path then error("REFRESH_TOKENS_IN not set") end
  local f = assert(io.open(path, "r"))
  -- wrk calls request() once on thread 0's state before the run, to check it,
  -- and throws that request away: give thread 0 a sentinel to spend on that.
  if tid == 0 then
    qtail = 1
    queue[1] = "wrk-verify-sentinel"
  end
  local i = 0
  for line in f:lines() do
    if line ~= "" then
      if (i % n) == tid then
        qtail = qtail + 1
        queue[qtail] = line
      end
      i = i + 1
    end
  end
  f:close()
  if qtail < qhead then
    io.stderr:write("refresh.lua: thread " .. tid .. " got no refresh tokens\n")
  end
end

local prefix = "grant_type=refresh_token"
if client_id ~= "" then prefix = prefix .. "&client_id=" .. urlencode(client_id) end
if scope ~= "" then prefix = prefix .. "&scope=" .. urlencode(scope) end

function request()
  local tok
  if qhead <= qtail then
    tok = queue[qhead]
    queue[qhead] = nil
    qhead = qhead + 1
  else
    -- queue ran dry (only after errors): send a request that must fail so
    -- the error shows in the counts instead of stalling the connection
    empty = empty + 1
    tok = "queue-empty"
  end
  return wrk.format(nil, nil, nil, prefix .. "&refresh_token=" .. urlencode(tok))
end

function response(status, headers, body)
  if status == 200 then
    local rt = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
    if rt then
      ok = ok + 1
      qtail = qtail + 1
      queue[qtail] = rt
      return
    end
  end
  errors = errors + 1
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
  if errors <= 3 then
    io.stderr:write("refresh error status " .. status .. ": " .. string.sub(body or "", 1, 200) .. "\n")
  end
end

function live_tokens()
  local out = {}
  for i = qhead, qtail do table.insert(out, queue[i]) end
  return out
end

function done(summary, latency, requests)
  local total_ok, total_err, total_empty, st = 0, 0, 0, {}
  local out_path = os.getenv("REFRESH_TOKENS_OUT")
  local f = nil
  if out_path and out_path ~= "" then f = assert(io.open(out_path, "w")) end
  local live = 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + (t:get("ok") or 0)
    total_err = total_err + (t:get("errors") or 0)
    total_empty = total_empty + (t:get("empty") or 0)
    local s = t:get("statuses") or {}
    for k, v in pairs(s) do st[k] = (st[k] or 0) + v end
    local q = t:get("queue") or {}
    local h = t:get("qhead") or 1
    local tl = t:get("qtail") or 0
    for i = h, tl do
      if q[i] then
        live = live + 1
        if f then f:write(q[i], "\n") end
      end
    end
  end
  if f then f:close() end
  local parts = {}
  for k, v in pairs(st) do table.insert(parts, k .. "=" .. v) end
  io.write(string.format("bench_ok: %d\nbench_errors: %d\nbench_error_statuses: %s\nbench_queue_empty: %d\nbench_live_tokens: %d\n",
    total_ok, total_err, table.concat(parts, ","), total_empty, live))
  io.write(string.format("bench_latency_us: p50=%d p90=%d p99=%d mean=%.1f\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end

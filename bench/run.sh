#!/usr/bin/env bash
# Keycard one-command benchmark. Run from the repo root:
#
#   bash bench/run.sh
#
# Measures, in one run on this machine: openssl sign baselines, node-oidc-provider
# (the peer) client_credentials RS256/ES256, and Keycard client_credentials,
# refresh-token rotation, password login, RSS and start-up time; prints a table
# of targets (ratio to baseline, PASS/FAIL) and writes bench/out/results.json.
# See bench/README.md. Knobs (env):
#   DURATION=10 WARMUP=2 THREADS=2 CONNECTIONS=32   wrk settings per phase
#   NODE_PORT=18100 KC_PORT=18200                   loopback ports
#   KEYCARD_BIN=target/release/keycard              binary under test
#   BUILD=1        run `cargo build --release -p keycard-cli` even if the binary exists
#   SKIP_OPENSSL=1 SKIP_NODE=1 SKIP_KEYCARD=1 SKIP_LOGIN=1   leave phases out
#   READY_RUNS=5   restarts timed for the readiness measurement
#   STRICT=1       exit 3 when any target is not PASS
# Exit status: 0 measured (whatever the verdicts), 2 a phase aborted (the
# table still prints what was measured), 3 STRICT=1 and a target not PASS.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
OUT=${OUT:-$BENCH_DIR/out}
RAW=$OUT/raw
TOOLS="$BENCH_DIR/tools.mjs"
LUA=$BENCH_DIR/lua

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
NODE_PORT=${NODE_PORT:-18100}
KC_PORT=${KC_PORT:-18200}
KEYCARD_BIN=${KEYCARD_BIN:-$ROOT/target/release/keycard}
READY_RUNS=${READY_RUNS:-5}
REFRESH_SEED=${REFRESH_SEED:-$(( 2 * CONNECTIONS > 64 ? 2 * CONNECTIONS : 64 ))}
SKIP_OPENSSL=${SKIP_OPENSSL:-0}
SKIP_NODE=${SKIP_NODE:-0}
SKIP_KEYCARD=${SKIP_KEYCARD:-0}
SKIP_LOGIN=${SKIP_LOGIN:-0}
LOGIN_ALG=RS256
KEYCARD_LOG=${KEYCARD_LOG:-warn}

AUD=https://api.example.com
REDIRECT=http://127.0.0.1:9/cb
BENCH_USER=alice
# long enough for any sane password policy
BENCH_PASS='bench-Password-correct-horse-42'
NODE_CC_ID=bench-cc
NODE_CC_SECRET=bench-cc-secret-0123456789abcdef0123456789abcdef

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
problem() { log "PROBLEM: $*"; printf '%s\n' "$*" >> "$OUT/problems.txt"; }
die() { log "FATAL: $*"; printf '%s\n' "$*" >> "$OUT/problems.txt"; exit 1; }

# key=value ... -> JSON object (numbers stay numbers)
jobj() {
  node -e '
    const o = {};
    for (const a of process.argv.slice(1)) {
      const i = a.indexOf("="); const k = a.slice(0, i); const v = a.slice(i + 1);
      o[k] = v !== "" && !Number.isNaN(Number(v)) ? Number(v) : v;
    }
    console.log(JSON.stringify(o));' -- "$@"
}
# jget FILE FIELD -> value of a top-level JSON field ("" when absent)
# (tolerates log lines around the JSON and finds the field in nested objects)
jget() {
  node -e '
    const t = require("fs").readFileSync(process.argv[1], "utf8"); let j;
    try { j = JSON.parse(t); } catch {
      try { j = JSON.parse(t.slice(t.indexOf("{"), t.lastIndexOf("}") + 1)); } catch {
        console.error(`jget: no JSON object in ${process.argv[1]}: ${JSON.stringify(t.slice(0, 300))}`); process.exit(1);
      }
    }
    const find = (o, k) => {
      if (o == null || typeof o !== "object") return undefined;
      if (k in o) return o[k];
      for (const v of Object.values(o)) { const r = find(v, k); if (r !== undefined) return r; }
      return undefined;
    };
    const v = find(j, process.argv[2]);
    process.stdout.write(v == null ? "" : String(v));' "$1" "$2"
}

# ------------------------------------------------------------------ processes
# Every server we start is recorded here; the EXIT trap (also installed in the
# phase subshells) stops them.
PIDS=()
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.1
}
cleanup() {
  local pid
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do stop_pid "$pid"; done
  PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kib() { ps -o rss= -p "$1" 2>/dev/null | tr -d ' ' || true; }

# sample RSS of PID every 200 ms into FILE until killed
rss_sampler() {
  local pid=$1 file=$2
  while kill -0 "$pid" 2>/dev/null; do
    ps -o rss= -p "$pid" >> "$file" 2>/dev/null || true
    sleep 0.2
  done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_http_200() { # URL PID TIMEOUT_S LOGFILE
  local url=$1 pid=$2 timeout=$3 logf=$4 t0
  t0=$(date +%s)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true)" = 200 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$logf" >&2 || true
      die "server (pid $pid) exited before $url answered 200; log: $logf"
    fi
    if (( $(date +%s) - t0 > timeout )); then
      tail -n 30 "$logf" >&2 || true
      die "$url not 200 after ${timeout}s; log: $logf"
    fi
    sleep 0.01
  done
}

# ------------------------------------------------------------------ wrk phases
# wrk_phase NAME PID SCRIPT URL [WARMUP_ENV...]: runs a warmup, then the
# measured run with --latency while sampling the server's RSS. The lua script
# reads its configuration from the environment (exported by the caller).
wrk_run() { # OUTFILE DURATION SCRIPT URL [--latency]
  local outf=$1 dur=$2 script=$3 url=$4; shift 4
  BENCH_THREADS=$THREADS timeout $(( dur + 30 )) \
    wrk "$@" -t"$THREADS" -c"$CONNECTIONS" -d"${dur}s" --timeout 10s -s "$script" "$url" \
    > "$outf" 2> "${outf%.txt}.err" || die "wrk failed ($outf): $(cat "${outf%.txt}.err")"
}

measure() { # NAME PID SCRIPT URL
  local name=$1 pid=$2 script=$3 url=$4 sampler
  : > "$RAW/$name.rss.txt"
  rss_sampler "$pid" "$RAW/$name.rss.txt" &
  sampler=$!
  wrk_run "$RAW/$name.wrk.txt" "$DURATION" "$script" "$url" --latency
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  node "$TOOLS" parse-wrk "$RAW/$name.wrk.txt" > "$RAW/wrk-$name.json"
  node "$TOOLS" rss-stats "$RAW/$name.rss.txt" > "$RAW/rss-$name.json"
  node -e '
    const w = require(process.argv[1]); const r = require(process.argv[2]);
    console.error(`[bench] ${process.argv[3]}: ${w.rps} req/s, errors ${w.errors}` +
      `${w.bench_error_statuses ? " (" + w.bench_error_statuses + ")" : ""}, p50 ${w.latency_ms.p50} ms,` +
      ` p99 ${w.latency_ms.p99} ms, peak RSS ${r.max_kib} KiB`);' \
    "$RAW/wrk-$name.json" "$RAW/rss-$name.json" "$name"
  local errs; errs=$(jget "$RAW/wrk-$name.json" errors)
  if [ "${errs:-0}" != 0 ]; then
    problem "$name: $errs requests failed ($(jget "$RAW/wrk-$name.json" bench_error_statuses)); see $RAW/$name.wrk.txt and .err"
  fi
}

# run a phase function in a subshell with its own -e and cleanup, so a broken
# phase is reported and the rest of the run still happens
run_phase() {
  local name=$1 rc; shift
  set +e
  (
    set -e
    PIDS=()
    trap cleanup EXIT
    "$@"
  )
  rc=$?
  set -e
  if [ "$rc" != 0 ]; then
    problem "phase '$name' aborted (exit $rc); its measurements are missing"
    ABORTED=$(( ABORTED + 1 ))
  fi
  return 0
}

# ------------------------------------------------------------------ setup
setup() {
  mkdir -p "$OUT"
  rm -rf "$RAW" "$OUT/problems.txt" "$OUT/results.json"
  mkdir -p "$RAW"
  command -v node >/dev/null || die "node is required"
  command -v curl >/dev/null || die "curl is required"
  if ! command -v wrk >/dev/null; then
    log "installing wrk (apt-get)"
    local SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
  fi
  command -v openssl >/dev/null || die "openssl is required"
  if [ "$SKIP_NODE" != 1 ] && [ ! -d "$BENCH_DIR/node/node_modules/oidc-provider" ]; then
    log "npm ci in bench/node"
    (cd "$BENCH_DIR/node" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  for p in "$NODE_PORT" "$KC_PORT"; do
    port_free "$p" || die "port $p is in use (set NODE_PORT / KC_PORT)"
  done

  local cpu
  cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
  jobj date="$(date -Is)" nproc="$(nproc)" cpu="${cpu:-unknown}" kernel="$(uname -r)" \
    threads="$THREADS" connections="$CONNECTIONS" duration_s="$DURATION" warmup_s="$WARMUP" \
    node="$(node --version)" wrk="$(wrk --version 2>&1 | head -n1 | awk '{print $2}')" \
    openssl="$(openssl version)" \
    oidc_provider="$(node -p 'require(process.argv[1]).version' "$BENCH_DIR/node/node_modules/oidc-provider/package.json" 2>/dev/null || echo n/a)" \
    git_commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)" \
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)" \
    > "$RAW/meta.json"
  log "$(nproc) cores, ${cpu:-unknown CPU}, kernel $(uname -r); load avg $(cut -d' ' -f1-3 /proc/loadavg)"
  local l1; l1=$(cut -d' ' -f1 /proc/loadavg)
  if awk -v l="$l1" 'BEGIN{exit !(l > 0.5)}'; then
    log "warning: the machine is not idle (load $l1): numbers will be low"
  fi
}

# ------------------------------------------------------------------ 1. openssl
phase_openssl() {
  log "openssl speed rsa2048 / ecdsap256 (3 s each, single core)"
  openssl speed -seconds 3 rsa2048 > "$RAW/openssl-rsa2048.txt" 2>/dev/null
  openssl speed -seconds 3 ecdsap256 > "$RAW/openssl-ecdsap256.txt" 2>/dev/null
  local rsa ec
  rsa=$(awk '/^rsa 2048 bits/ {print $(NF-1)}' "$RAW/openssl-rsa2048.txt" | tail -n1)
  ec=$(awk '/ecdsa \(nistp256\)/ {print $(NF-1)}' "$RAW/openssl-ecdsap256.txt" | tail -n1)
  [ -n "$rsa" ] && [ -n "$ec" ] || die "cannot parse openssl speed output (see $RAW/openssl-*.txt)"
  jobj rsa2048_sign_per_s="$rsa" ecdsap256_sign_per_s="$ec" > "$RAW/openssl.json"
  log "openssl: rsa2048 sign/s $rsa, ecdsap256 sign/s $ec"
}

# ------------------------------------------------------------------ 2. node-oidc-provider
basic_auth() { # ID SECRET -> "Basic base64(urlenc(id):urlenc(secret))" (RFC 6749 2.3.1)
  node -e 'const e=encodeURIComponent; process.stdout.write("Basic "+Buffer.from(e(process.argv[1])+":"+e(process.argv[2])).toString("base64"))' "$1" "$2"
}

check_cc_token() { # NAME BASE AUTH ALG
  local name=$1 base=$2 auth=$3 alg=$4 got
  curl -s --max-time 10 -H "Authorization: $auth" -d grant_type=client_credentials -d scope=read \
    "$base/token" > "$RAW/$name.token.json" || die "$name: token request failed"
  node "$TOOLS" token-check "$RAW/$name.token.json" > "$RAW/$name.token-check.json" \
    || die "$name: token response is not a JWT access token: $(cat "$RAW/$name.token-check.json")"
  got=$(jget "$RAW/$name.token-check.json" alg)
  [ "$got" = "$alg" ] || die "$name: access token alg is $got, expected $alg"
  log "$name: token request OK, access_token is a JWT ($got, $(jget "$RAW/$name.token-check.json" length) chars)"
}

phase_node() { # ALG
  local alg=$1 pid base="http://127.0.0.1:$NODE_PORT"
  log "node-oidc-provider $alg: starting (single node process)"
  (cd "$BENCH_DIR/node" && PORT=$NODE_PORT ALG=$alg CLIENT_ID=$NODE_CC_ID CLIENT_SECRET=$NODE_CC_SECRET \
    exec node server.mjs) > "$OUT/node-$alg.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_http_200 "$base/.well-known/openid-configuration" "$pid" 30 "$OUT/node-$alg.log"
  local auth; auth=$(basic_auth "$NODE_CC_ID" "$NODE_CC_SECRET")
  check_cc_token "node-cc-$alg" "$base" "$auth" "$alg"
  jobj rss_kib="$(rss_kib "$pid")" > "$RAW/node-idle-$alg.json"
  export BENCH_BODY="grant_type=client_credentials&scope=read" BENCH_AUTH="$auth" BENCH_EXPECT=200
  export BENCH_COOKIE="" BENCH_ORIGIN=""
  log "node-oidc-provider $alg: warmup ${WARMUP}s, then ${DURATION}s"
  wrk_run "$RAW/node-cc-$alg.warmup.txt" "$WARMUP" "$LUA/post.lua" "$base/token"
  measure "node-cc-$alg" "$pid" "$LUA/post.lua" "$base/token"
  stop_pid "$pid"
}

# ------------------------------------------------------------------ 3. Keycard
ensure_keycard() {
  if [ "${BUILD:-0}" = 1 ] || [ ! -x "$KEYCARD_BIN" ]; then
    command -v cargo >/dev/null || die "$KEYCARD_BIN missing and cargo not found"
    log "building keycard: cargo build --release -p keycard-cli (this can take minutes)"
    (cd "$ROOT" && cargo build --release -p keycard-cli) || die "cargo build failed"
  fi
  [ -x "$KEYCARD_BIN" ] || die "$KEYCARD_BIN not found after build"
  if [ "$KEYCARD_BIN" = "$ROOT/target/release/keycard" ] && [ -d "$ROOT/crates" ] && [ -n "$(find "$ROOT/crates" -name '*.rs' -newer "$KEYCARD_BIN" -print -quit 2>/dev/null)" ]; then
    log "warning: $KEYCARD_BIN is older than sources under crates/ (BUILD=1 rebuilds)"
  fi
}

kc() { "$KEYCARD_BIN" --database-url "$KC_URL" "$@"; }

kc_start() { # ALG LOGFILE -> sets KC_PID
  local alg=$1 logf=$2
  port_free "$KC_PORT" || die "port $KC_PORT still in use"
  RUST_LOG=$KEYCARD_LOG "$KEYCARD_BIN" --database-url "$KC_URL" serve --addr "127.0.0.1:$KC_PORT" \
    --issuer "http://127.0.0.1:$KC_PORT" --signing-alg "$alg" >> "$logf" 2>&1 &
  KC_PID=$!
  PIDS+=("$KC_PID")
}

phase_keycard() { # ALG
  local alg=$1 dir="$OUT/keycard-$1" base="http://127.0.0.1:$KC_PORT"
  rm -rf "$dir"; mkdir -p "$dir"
  KC_URL="sqlite://$dir/keycard.db"
  local logf="$OUT/keycard-$alg.log"; : > "$logf"
  log "keycard $alg: initialising fresh database $dir/keycard.db"
  kc api add "$AUD" --scope read --json > "$dir/api.json" || die "keycard api add failed"
  kc client add bench-cc --confidential --grant client_credentials --audience "$AUD" --scope read --json \
    > "$dir/client-cc.json" || die "keycard client add bench-cc failed"
  kc client add bench-web --public --first-party --grant authorization_code --grant refresh_token \
    --redirect-uri "$REDIRECT" --scope "openid offline_access read" --audience "$AUD" --json \
    > "$dir/client-web.json" || die "keycard client add bench-web failed"
  kc client add bench-consent --public --grant authorization_code --redirect-uri "$REDIRECT" --scope openid --json \
    > "$dir/client-consent.json" || die "keycard client add bench-consent failed"
  printf '%s\n' "$BENCH_PASS" | kc user add "$BENCH_USER" --password-stdin --json > "$dir/user.json" \
    || die "keycard user add failed"
  local cc_id cc_secret web_id consent_id
  cc_id=$(jget "$dir/client-cc.json" client_id); cc_secret=$(jget "$dir/client-cc.json" client_secret)
  web_id=$(jget "$dir/client-web.json" client_id); consent_id=$(jget "$dir/client-consent.json" client_id)
  [ -n "$cc_id" ] && [ -n "$cc_secret" ] || die "client add bench-cc printed no client_id/client_secret: $(cat "$dir/client-cc.json")"
  [ -n "$web_id" ] && [ -n "$consent_id" ] || die "client add printed no client_id (see $dir/client-*.json)"

  log "keycard $alg: serve --signing-alg $alg"
  kc_start "$alg" "$logf"
  local pid=$KC_PID
  wait_http_200 "$base/readyz" "$pid" 60 "$logf"
  sleep 1
  local idle_fresh; idle_fresh=$(rss_kib "$pid")
  log "keycard $alg: idle RSS ${idle_fresh} KiB"

  # (a)/(b) client_credentials
  local auth; auth=$(basic_auth "$cc_id" "$cc_secret")
  check_cc_token "keycard-cc-$alg" "$base" "$auth" "$alg"
  export BENCH_BODY="grant_type=client_credentials&scope=read" BENCH_AUTH="$auth" BENCH_EXPECT=200
  export BENCH_COOKIE="" BENCH_ORIGIN=""
  log "keycard $alg client_credentials: warmup ${WARMUP}s, then ${DURATION}s"
  wrk_run "$RAW/keycard-cc-$alg.warmup.txt" "$WARMUP" "$LUA/post.lua" "$base/token"
  measure "keycard-cc-$alg" "$pid" "$LUA/post.lua" "$base/token"

  # (c) refresh_token rotation: two fresh batches (warmup / measured), each
  # obtained by one password login + N SSO authorize + code exchanges
  log "keycard $alg refresh: obtaining 2 x $REFRESH_SEED refresh tokens via SSO authorize + code exchange"
  local batch
  for batch in warmup run; do
    timeout 300 node "$TOOLS" sso-tokens "$base" "$web_id" "$REDIRECT" "openid offline_access read" \
      "$BENCH_USER" "$BENCH_PASS" "$REFRESH_SEED" "$dir/refresh-$batch.txt" > "$RAW/keycard-sso-$alg-$batch.json" \
      || die "could not obtain refresh tokens"
  done
  log "keycard $alg refresh: $(cat "$RAW/keycard-sso-$alg-run.json")"
  unset BENCH_BODY BENCH_EXPECT BENCH_COOKIE BENCH_ORIGIN
  export BENCH_AUTH="" REFRESH_CLIENT_ID="$web_id" REFRESH_SCOPE=""
  log "keycard $alg refresh: warmup ${WARMUP}s, then ${DURATION}s"
  REFRESH_TOKENS_IN="$dir/refresh-warmup.txt" REFRESH_TOKENS_OUT="$dir/refresh-warmup-left.txt" \
    wrk_run "$RAW/keycard-refresh-$alg.warmup.txt" "$WARMUP" "$LUA/refresh.lua" "$base/token"
  export REFRESH_TOKENS_IN="$dir/refresh-run.txt" REFRESH_TOKENS_OUT="$dir/refresh-run-left.txt"
  measure "keycard-refresh-$alg" "$pid" "$LUA/refresh.lua" "$base/token"
  unset REFRESH_TOKENS_IN REFRESH_TOKENS_OUT REFRESH_CLIENT_ID REFRESH_SCOPE

  # (d) password login (argon2id verify + session write), once
  if [ "$alg" = "$LOGIN_ALG" ] && [ "$SKIP_LOGIN" != 1 ]; then
    log "keycard login: opening a login transaction for bench-consent"
    timeout 60 node "$TOOLS" login-setup "$base" "$consent_id" "$REDIRECT" openid "$BENCH_USER" "$BENCH_PASS" \
      > "$dir/login-setup.json" || die "login setup failed"
    export BENCH_BODY; BENCH_BODY=$(jget "$dir/login-setup.json" body)
    export BENCH_COOKIE; BENCH_COOKIE=$(jget "$dir/login-setup.json" cookie)
    export BENCH_ORIGIN="$base" BENCH_EXPECT=303 BENCH_AUTH="" BENCH_ACCEPT="text/html,application/xhtml+xml"
    log "keycard login: POST /login answered 303 -> $(jget "$dir/login-setup.json" location); warmup ${WARMUP}s, then ${DURATION}s"
    wrk_run "$RAW/keycard-login.warmup.txt" "$WARMUP" "$LUA/post.lua" "$base/login"
    measure "keycard-login" "$pid" "$LUA/post.lua" "$base/login"
  fi

  stop_pid "$pid"
  sleep 0.5

  # (f) time from spawn to first 200 on /readyz, database already initialised
  log "keycard $alg: timing $READY_RUNS restarts (spawn -> first 200 on /readyz)"
  local i r rpid runs=() idle_restart=""
  for i in $(seq 1 "$READY_RUNS"); do
    for _ in $(seq 1 100); do port_free "$KC_PORT" && break; sleep 0.05; done
    RUST_LOG=$KEYCARD_LOG timeout 30 node "$TOOLS" ready "$base/readyz" 10000 "$logf" -- \
      "$KEYCARD_BIN" --database-url "$KC_URL" serve --addr "127.0.0.1:$KC_PORT" \
      --issuer "http://127.0.0.1:$KC_PORT" --signing-alg "$alg" > "$dir/ready-$i.json" \
      || die "restart $i did not become ready"
    rpid=$(jget "$dir/ready-$i.json" pid); PIDS+=("$rpid")
    r=$(jget "$dir/ready-$i.json" ready_ms); runs+=("$r")
    if [ "$i" = 1 ]; then sleep 1; idle_restart=$(rss_kib "$rpid"); fi
    stop_pid "$rpid"
  done
  local med; med=$(printf '%s\n' "${runs[@]}" | sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')
  node -e 'const r=process.argv.slice(1).map(Number); console.log(JSON.stringify({median_ms:r[0], runs_ms:r.slice(1)}))' \
    "$med" "${runs[@]}" > "$RAW/keycard-ready-$alg.json"
  local worst=$idle_fresh
  if [ -n "$idle_restart" ] && [ "$idle_restart" -gt "$worst" ]; then worst=$idle_restart; fi
  jobj rss_kib="$worst" fresh_start_kib="$idle_fresh" restart_kib="$idle_restart" > "$RAW/keycard-idle-$alg.json"
  log "keycard $alg: ready median ${med} ms (${runs[*]}); idle RSS fresh ${idle_fresh} KiB, restart ${idle_restart} KiB"
}

phase_argon2() {
  log "keycard bench argon2 --seconds 5 --threads 2"
  "$KEYCARD_BIN" bench argon2 --seconds 5 --threads 2 --json > "$RAW/argon2.txt" || die "keycard bench argon2 failed"
  node -e 'const t=require("fs").readFileSync(process.argv[1],"utf8"); const m=t.match(/\{[\s\S]*\}/); const j=JSON.parse(m[0]); if(!(j.hashes_per_sec>0)) throw new Error("no hashes_per_sec"); console.log(JSON.stringify(j))' \
    "$RAW/argon2.txt" > "$RAW/argon2.json" || die "cannot parse argon2 output: $(cat "$RAW/argon2.txt")"
  log "argon2id raw: $(jget "$RAW/argon2.json" hashes_per_sec) hashes/s"
}

# ------------------------------------------------------------------ main
T0=$(date +%s)
ABORTED=0
setup
[ "$SKIP_OPENSSL" = 1 ] || run_phase openssl phase_openssl
if [ "$SKIP_NODE" != 1 ]; then
  run_phase node-RS256 phase_node RS256
  run_phase node-ES256 phase_node ES256
fi
if [ "$SKIP_KEYCARD" != 1 ]; then
  run_phase keycard-build ensure_keycard
  if [ -x "$KEYCARD_BIN" ]; then
    run_phase keycard-RS256 phase_keycard RS256
    run_phase keycard-ES256 phase_keycard ES256
    [ "$SKIP_LOGIN" = 1 ] || run_phase argon2 phase_argon2
  fi
fi

if [ -s "$OUT/problems.txt" ]; then
  node -e 'console.log(JSON.stringify(require("fs").readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean)))' \
    "$OUT/problems.txt" > "$RAW/errors.json"
fi
log "measurements done in $(( $(date +%s) - T0 )) s"
rc=0
node "$TOOLS" report "$OUT" || rc=$?
if [ "$ABORTED" != 0 ]; then
  log "$ABORTED phase(s) aborted: the run is incomplete (exit 2)"
  exit 2
fi
exit "$rc"

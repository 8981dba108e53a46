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
#   SKIP_VALIDATE=1 SKIP_DEMO_API=1 SKIP_INTROSPECT=1 SKIP_PG=1  leave the
#                  resource-server / PostgreSQL phases out; SKIP_SQLITE=1 leaves
#                  out the SQLite cc/refresh/login/ready/argon2 phases
#   SCALE=1        also run the PostgreSQL scale phase (bulk load of 1M users,
#                  100k clients, 10M refresh tokens; slow, off by default)
#   DEMO_PORT=18300 KC_PORT2=18201 LOWLOAD_DURATION=5 VALIDATE_SECONDS=5
#   PG_HOST=127.0.0.1 PG_PORT=5432 PG_USER=postgres PG_ADMIN_DB=test  KEEP_DB=1
#   READY_RUNS=5   restarts timed for the readiness measurement
#   ALGS="RS256 ES256"  signing algorithms of the SQLite and PostgreSQL phases
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
ALGS=${ALGS:-RS256 ES256}
SKIP_OPENSSL=${SKIP_OPENSSL:-0}
SKIP_NODE=${SKIP_NODE:-0}
SKIP_KEYCARD=${SKIP_KEYCARD:-0}
SKIP_LOGIN=${SKIP_LOGIN:-0}
SKIP_VALIDATE=${SKIP_VALIDATE:-0}
SKIP_DEMO_API=${SKIP_DEMO_API:-0}
SKIP_INTROSPECT=${SKIP_INTROSPECT:-0}
SKIP_PG=${SKIP_PG:-0}
SKIP_SQLITE=${SKIP_SQLITE:-0}
SCALE=${SCALE:-0}
SCALE_USERS=${SCALE_USERS:-1000000}
SCALE_CLIENTS=${SCALE_CLIENTS:-100000}
SCALE_GRANTS=${SCALE_GRANTS:-2000000}
SCALE_REFRESH=${SCALE_REFRESH:-10000000}
DEMO_PORT=${DEMO_PORT:-18300}
KC_PORT2=${KC_PORT2:-18201}
LOWLOAD_DURATION=${LOWLOAD_DURATION:-5}
VALIDATE_SECONDS=${VALIDATE_SECONDS:-5}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-postgres}
PG_ADMIN_DB=${PG_ADMIN_DB:-test}
KEEP_DB=${KEEP_DB:-0}
RUN_TS=$(date +%Y%m%d_%H%M%S)
# one master key for every PostgreSQL node of this run (exported only inside
# the PostgreSQL phases, so the SQLite phases keep their <db>.key file)
PG_MASTER_KEY=${KEYCARD_MASTER_KEY:-$(openssl rand 32 | basenc --base64url | tr -d '=\n')}
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
PG_DBS=()
cleanup() {
  local pid db
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do stop_pid "$pid"; done
  PIDS=()
  for db in "${PG_DBS[@]+"${PG_DBS[@]}"}"; do
    if [ "$KEEP_DB" = 1 ]; then log "KEEP_DB=1: keeping PostgreSQL database $db"; continue; fi
    pg_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 \
      || log "warning: could not drop PostgreSQL database $db"
  done
  PG_DBS=()
}
pg_admin() { psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" -v ON_ERROR_STOP=1 -qAtX "$@"; }
pg_db() { local db=$1; shift; psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$db" -v ON_ERROR_STOP=1 -qAtX "$@"; }
pg_create() { # NAME -> a fresh database, dropped by cleanup
  local db=$1
  pg_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  pg_admin -c "CREATE DATABASE $db" >/dev/null || die "cannot create PostgreSQL database $db"
  PG_DBS+=("$db")
}
pg_url() { printf 'postgres://%s@%s:%s/%s' "$PG_USER" "$PG_HOST" "$PG_PORT" "$1"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# rss_kib PID: resident set size in KiB, read from /proc with shell builtins only (a `ps` per
# sample cost ~1-2 % of the two cores that the process under test shares with the sampler)
rss_kib() {
  local k v _
  while read -r k v _; do
    if [ "$k" = "VmRSS:" ]; then echo "$v"; return 0; fi
  done 2>/dev/null < "/proc/$1/status" || true
}

# sample RSS of PID every 200 ms into FILE until killed
rss_sampler() {
  local pid=$1 file=$2
  while kill -0 "$pid" 2>/dev/null; do
    rss_kib "$pid" >> "$file"
    sleep 0.2
  done
}

# errline FILE: the first line that looks like an error (else the first line), for Problems
errline() {
  { grep -m1 -iE 'error|unsupported|unrecognized|panic|fatal' "$1" 2>/dev/null || head -n1 "$1" 2>/dev/null || true; } \
    | tr -d '\r' | cut -c1-300
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_http_200() { # URL PID TIMEOUT_S LOGFILE
  local url=$1 pid=$2 timeout=$3 logf=$4 t0
  t0=$(date +%s)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true)" = 200 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$logf" >&2 || true
      die "server (pid $pid) exited before $url answered 200: $(errline "$logf") (log: $logf)"
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
  phase_summary "$name"
}

phase_summary() { # NAME: log the numbers, list errors under Problems
  local name=$1
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
    PG_DBS=()
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
  for p in "$NODE_PORT" "$KC_PORT" "$KC_PORT2" "$DEMO_PORT"; do
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
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)" scale="$SCALE" \
    postgres="$(psql --version 2>/dev/null | awk '{print $NF}' || echo n/a)" \
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
  # last line of each table: "rsa 2048 bits 0.000837s 0.000019s 1195.0 51512.7"
  # (sign/s, verify/s are the last two columns); the same runs give both
  local rsa ec rsav ecv
  rsa=$(awk '/^rsa 2048 bits/ {print $(NF-1)}' "$RAW/openssl-rsa2048.txt" | tail -n1)
  rsav=$(awk '/^rsa 2048 bits/ {print $NF}' "$RAW/openssl-rsa2048.txt" | tail -n1)
  ec=$(awk '/ecdsa \(nistp256\)/ {print $(NF-1)}' "$RAW/openssl-ecdsap256.txt" | tail -n1)
  ecv=$(awk '/ecdsa \(nistp256\)/ {print $NF}' "$RAW/openssl-ecdsap256.txt" | tail -n1)
  [ -n "$rsa" ] && [ -n "$ec" ] && [ -n "$rsav" ] && [ -n "$ecv" ] \
    || die "cannot parse openssl speed output (see $RAW/openssl-*.txt)"
  jobj rsa2048_sign_per_s="$rsa" ecdsap256_sign_per_s="$ec" \
    rsa2048_verify_per_s="$rsav" ecdsap256_verify_per_s="$ecv" > "$RAW/openssl.json"
  log "openssl: rsa2048 sign/s $rsa verify/s $rsav, ecdsap256 sign/s $ec verify/s $ecv"
}

# openssl_sign RS256 OUT: one core's openssl RSA-2048 sign rate, 2 s.
openssl_sign() {
  openssl speed -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {v=$(NF-1)} END {print v}' > "$2"
}

# The cc RS256 target's baseline (2 x one core's RSA-2048 sign rate) measured right before and
# right after that phase, averaged, as for the login and the validator.
phase_rsa_adjacent() {
  node -e 'const fs=require("fs"); const b=Number(fs.readFileSync(process.argv[1],"utf8")), a=Number(fs.readFileSync(process.argv[2],"utf8"));
    if (!(b>0 && a>0)) process.exit(1); console.log(JSON.stringify({rsa2048_sign_per_s:(b+a)/2, before:b, after:a}))' \
    "$RAW/cc-RS256.openssl-before.txt" "$RAW/cc-RS256.openssl-after.txt" > "$RAW/cc-RS256-openssl.json" \
    || die "cannot parse the openssl sign rates next to cc RS256"
  log "openssl rsa2048 sign/s next to cc RS256: $(jget "$RAW/cc-RS256-openssl.json" rsa2048_sign_per_s) (before $(jget "$RAW/cc-RS256-openssl.json" before), after $(jget "$RAW/cc-RS256-openssl.json" after))"
}

# openssl_verify ALG OUT: one core's openssl verify rate for ALG's curve or key size, 2 s.
openssl_verify() {
  local alg=$1 out=$2
  if [ "$alg" = RS256 ]; then
    openssl speed -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {v=$NF} END {print v}' > "$out"
  else
    openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/ecdsa \(nistp256\)/ {v=$NF} END {print v}' > "$out"
  fi
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

kc_start() { # ALG LOGFILE [PORT] -> sets KC_PID (the issuer is always KC_PORT's URL,
  # so a second node on KC_PORT2 serves the same issuer, as behind a load balancer)
  local alg=$1 logf=$2 port=${3:-$KC_PORT}
  port_free "$port" || die "port $port still in use"
  RUST_LOG=$KEYCARD_LOG "$KEYCARD_BIN" --database-url "$KC_URL" serve --addr "127.0.0.1:$port" \
    --issuer "http://127.0.0.1:$KC_PORT" --signing-alg "$alg" >> "$logf" 2>&1 &
  KC_PID=$!
  PIDS+=("$KC_PID")
}

# kc_seed DIR: the API, clients and user every cc/refresh/login phase uses, in
# the database KC_URL; sets CC_ID CC_SECRET WEB_ID CONSENT_ID
kc_seed() {
  local dir=$1
  kc api add "$AUD" --scope read --json > "$dir/api.json" 2> "$dir/api.err" \
    || die "keycard api add failed: $(errline "$dir/api.err")"
  kc client add bench-cc --confidential --grant client_credentials --audience "$AUD" --scope read --json \
    > "$dir/client-cc.json" 2> "$dir/client-cc.err" || die "keycard client add bench-cc failed: $(errline "$dir/client-cc.err")"
  kc client add bench-web --public --first-party --grant authorization_code --grant refresh_token \
    --redirect-uri "$REDIRECT" --scope "openid offline_access read" --audience "$AUD" --json \
    > "$dir/client-web.json" 2> "$dir/client-web.err" || die "keycard client add bench-web failed: $(errline "$dir/client-web.err")"
  kc client add bench-consent --public --grant authorization_code --redirect-uri "$REDIRECT" --scope openid --json \
    > "$dir/client-consent.json" 2> "$dir/client-consent.err" \
    || die "keycard client add bench-consent failed: $(errline "$dir/client-consent.err")"
  printf '%s\n' "$BENCH_PASS" | kc user add "$BENCH_USER" --password-stdin --json > "$dir/user.json" 2> "$dir/user.err" \
    || die "keycard user add failed: $(errline "$dir/user.err")"
  CC_ID=$(jget "$dir/client-cc.json" client_id); CC_SECRET=$(jget "$dir/client-cc.json" client_secret)
  WEB_ID=$(jget "$dir/client-web.json" client_id); CONSENT_ID=$(jget "$dir/client-consent.json" client_id)
  [ -n "$CC_ID" ] && [ -n "$CC_SECRET" ] || die "client add bench-cc printed no client_id/client_secret: $(cat "$dir/client-cc.json")"
  [ -n "$WEB_ID" ] && [ -n "$CONSENT_ID" ] || die "client add printed no client_id (see $dir/client-*.json)"
}

phase_keycard() { # ALG
  local alg=$1 dir="$OUT/keycard-$1" base="http://127.0.0.1:$KC_PORT"
  rm -rf "$dir"; mkdir -p "$dir"
  KC_URL="sqlite://$dir/keycard.db"
  local logf="$OUT/keycard-$alg.log"; : > "$logf"
  log "keycard $alg: initialising fresh database $dir/keycard.db"
  kc_seed "$dir"
  local cc_id=$CC_ID cc_secret=$CC_SECRET web_id=$WEB_ID consent_id=$CONSENT_ID

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
  if [ "$alg" = RS256 ] && [ "$SKIP_OPENSSL" != 1 ]; then
    openssl_sign RS256 "$RAW/cc-RS256.openssl-before.txt"
  fi
  log "keycard $alg client_credentials: warmup ${WARMUP}s, then ${DURATION}s"
  wrk_run "$RAW/keycard-cc-$alg.warmup.txt" "$WARMUP" "$LUA/post.lua" "$base/token"
  measure "keycard-cc-$alg" "$pid" "$LUA/post.lua" "$base/token"
  if [ "$alg" = RS256 ] && [ "$SKIP_OPENSSL" != 1 ]; then
    # The machine-limit baseline again, right after (the server idle): see phase_rsa_adjacent.
    openssl_sign RS256 "$RAW/cc-RS256.openssl-after.txt"
    phase_rsa_adjacent
  fi

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
    argon2_raw before
    wrk_run "$RAW/keycard-login.warmup.txt" "$WARMUP" "$LUA/post.lua" "$base/login"
    measure "keycard-login" "$pid" "$LUA/post.lua" "$base/login"
    argon2_raw after
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

# argon2_raw WHEN: the raw hash rate (2 threads, reused buffers) into $RAW/argon2-WHEN.json.
argon2_raw() {
  local when=$1
  log "keycard bench argon2 --seconds 3 --threads 2 ($when the login phase)"
  "$KEYCARD_BIN" bench argon2 --seconds 3 --threads 2 --json > "$RAW/argon2-$when.txt" || die "keycard bench argon2 failed"
  node -e 'const t=require("fs").readFileSync(process.argv[1],"utf8"); const m=t.match(/\{[\s\S]*\}/); const j=JSON.parse(m[0]); if(!(j.hashes_per_sec>0)) throw new Error("no hashes_per_sec"); console.log(JSON.stringify(j))' \
    "$RAW/argon2-$when.txt" > "$RAW/argon2-$when.json" || die "cannot parse argon2 output: $(cat "$RAW/argon2-$when.txt")"
}

# The login's baseline, measured right before and right after it (the server idle, holding
# its buffers) and averaged: a neighbour's load on this shared VM then weighs on both sides of
# the ratio alike instead of on one.
phase_argon2() {
  node -e 'const f=n=>JSON.parse(require("fs").readFileSync(n,"utf8")); const a=f(process.argv[1]), b=f(process.argv[2]);
    console.log(JSON.stringify({hashes_per_sec:(a.hashes_per_sec+b.hashes_per_sec)/2, threads:a.threads, before:a.hashes_per_sec, after:b.hashes_per_sec}))' \
    "$RAW/argon2-before.json" "$RAW/argon2-after.json" > "$RAW/argon2.json" || die "argon2 baseline not measured"
  log "argon2id raw: $(jget "$RAW/argon2.json" hashes_per_sec) hashes/s (before $(jget "$RAW/argon2.json" before), after $(jget "$RAW/argon2.json" after))"
}

# ------------------------------------------------------------------ shared load helpers
# kc_cc NAME PID BASE AUTH: client_credentials warmup + measured run on one node
kc_cc() {
  local name=$1 pid=$2 base=$3 auth=$4
  export BENCH_BODY="grant_type=client_credentials&scope=read" BENCH_AUTH="$auth" BENCH_EXPECT=200
  export BENCH_COOKIE="" BENCH_ORIGIN="" BENCH_METHOD=POST BENCH_EXPECT_MATCH=""
  log "$name: warmup ${WARMUP}s, then ${DURATION}s"
  wrk_run "$RAW/$name.warmup.txt" "$WARMUP" "$LUA/post.lua" "$base/token"
  measure "$name" "$pid" "$LUA/post.lua" "$base/token"
}

# kc_refresh_tokens BASE WEB_ID FILE TAG: one batch of REFRESH_SEED refresh tokens
kc_refresh_tokens() {
  timeout 300 node "$TOOLS" sso-tokens "$1" "$2" "$REDIRECT" "openid offline_access read" \
    "$BENCH_USER" "$BENCH_PASS" "$REFRESH_SEED" "$3" > "$RAW/sso-$4.json" \
    || die "could not obtain refresh tokens ($4)"
}

# kc_refresh NAME PID BASE DIR WEB_ID: refresh rotation warmup + measured run on one node
kc_refresh() {
  local name=$1 pid=$2 base=$3 dir=$4 web_id=$5
  log "$name: obtaining 2 x $REFRESH_SEED refresh tokens via SSO authorize + code exchange"
  kc_refresh_tokens "$base" "$web_id" "$dir/$name-warmup.txt" "$name-warmup"
  kc_refresh_tokens "$base" "$web_id" "$dir/$name-run.txt" "$name-run"
  (
    unset BENCH_BODY BENCH_EXPECT BENCH_COOKIE BENCH_ORIGIN
    export BENCH_AUTH="" REFRESH_CLIENT_ID="$web_id" REFRESH_SCOPE=""
    log "$name: warmup ${WARMUP}s, then ${DURATION}s"
    REFRESH_TOKENS_IN="$dir/$name-warmup.txt" REFRESH_TOKENS_OUT="$dir/$name-warmup-left.txt" \
      wrk_run "$RAW/$name.warmup.txt" "$WARMUP" "$LUA/refresh.lua" "$base/token"
    export REFRESH_TOKENS_IN="$dir/$name-run.txt" REFRESH_TOKENS_OUT="$dir/$name-run-left.txt"
    measure "$name" "$pid" "$LUA/refresh.lua" "$base/token"
  )
}

# wrk_pair OUTBASE DURATION SCRIPT URL1 URL2 [wrk args]: two wrk processes at
# once (one per node), each -t1 and half the connections. PAIR_IN1/PAIR_IN2
# (and PAIR_OUT1/PAIR_OUT2) give each its own refresh-token file.
wrk_pair() {
  local ob=$1 dur=$2 script=$3 u1=$4 u2=$5; shift 5
  local half=$(( CONNECTIONS / 2 > 0 ? CONNECTIONS / 2 : 1 )) p1 p2 rc1=0 rc2=0
  (
    if [ -n "${PAIR_IN1:-}" ]; then export REFRESH_TOKENS_IN=$PAIR_IN1 REFRESH_TOKENS_OUT=${PAIR_OUT1:-}; fi
    THREADS=1 CONNECTIONS=$half wrk_run "$ob.node1.txt" "$dur" "$script" "$u1" "$@"
  ) & p1=$!
  (
    if [ -n "${PAIR_IN2:-}" ]; then export REFRESH_TOKENS_IN=$PAIR_IN2 REFRESH_TOKENS_OUT=${PAIR_OUT2:-}; fi
    THREADS=1 CONNECTIONS=$half wrk_run "$ob.node2.txt" "$dur" "$script" "$u2" "$@"
  ) & p2=$!
  wait "$p1" || rc1=$?
  wait "$p2" || rc2=$?
  [ "$rc1" = 0 ] && [ "$rc2" = 0 ] || die "wrk pair failed ($ob.node1/.node2: exit $rc1/$rc2)"
}

# measure2 NAME PID1 PID2 SCRIPT URL1 URL2: measured two-node run; req/s added
measure2() {
  local name=$1 pid1=$2 pid2=$3 script=$4 u1=$5 u2=$6 s1 s2
  : > "$RAW/$name.node1.rss.txt"; : > "$RAW/$name.node2.rss.txt"
  rss_sampler "$pid1" "$RAW/$name.node1.rss.txt" & s1=$!
  rss_sampler "$pid2" "$RAW/$name.node2.rss.txt" & s2=$!
  wrk_pair "$RAW/$name" "$DURATION" "$script" "$u1" "$u2" --latency
  kill "$s1" "$s2" 2>/dev/null || true
  wait "$s1" "$s2" 2>/dev/null || true
  node "$TOOLS" parse-wrk "$RAW/$name.node1.txt" > "$RAW/$name.node1.wrkjson"
  node "$TOOLS" parse-wrk "$RAW/$name.node2.txt" > "$RAW/$name.node2.wrkjson"
  node "$TOOLS" sum-wrk "$RAW/$name.node1.wrkjson" "$RAW/$name.node2.wrkjson" > "$RAW/wrk-$name.json"
  cat "$RAW/$name.node1.rss.txt" "$RAW/$name.node2.rss.txt" > "$RAW/$name.rss.txt"
  node "$TOOLS" rss-stats "$RAW/$name.rss.txt" > "$RAW/rss-$name.json"
  phase_summary "$name"
}

# ------------------------------------------------------------------ 4. resource servers
# Each validation rate is compared with openssl's verify rate measured right before and right
# after it (averaged), not with the run's first openssl measurement minutes earlier: on a
# shared VM the two ends of such a ratio otherwise see different neighbours.
phase_validate() {
  local alg
  for alg in RS256 ES256; do
    [ "$SKIP_OPENSSL" = 1 ] || openssl_verify "$alg" "$RAW/validate-$alg.openssl-before.txt"
    log "keycard bench validate --seconds $VALIDATE_SECONDS --alg $alg (one core)"
    if ! "$KEYCARD_BIN" bench validate --seconds "$VALIDATE_SECONDS" --alg "$alg" --json \
      > "$RAW/validate-$alg.txt" 2> "$RAW/validate-$alg.err"; then
      if [ "$alg" = ES256 ]; then
        problem "keycard bench validate --alg ES256 failed (informational only): $(errline "$RAW/validate-$alg.err")"
        continue
      fi
      die "keycard bench validate --alg $alg failed (does this binary have 'bench validate'?): $(errline "$RAW/validate-$alg.err")"
    fi
    node -e 'const t=require("fs").readFileSync(process.argv[1],"utf8"); const m=t.match(/\{[\s\S]*\}/); const j=JSON.parse(m[0]); if(!(j.verifications_per_sec>0)) throw new Error("no verifications_per_sec"); console.log(JSON.stringify(j))' \
      "$RAW/validate-$alg.txt" > "$RAW/validate-$alg.raw.json" \
      || die "cannot parse keycard bench validate output: $(head -c 300 "$RAW/validate-$alg.txt")"
    if [ "$SKIP_OPENSSL" = 1 ]; then
      cp "$RAW/validate-$alg.raw.json" "$RAW/validate-$alg.json"
    else
      openssl_verify "$alg" "$RAW/validate-$alg.openssl-after.txt"
      node -e 'const fs=require("fs"); const j=JSON.parse(fs.readFileSync(process.argv[1],"utf8"));
        const b=Number(fs.readFileSync(process.argv[2],"utf8")), a=Number(fs.readFileSync(process.argv[3],"utf8"));
        if (b>0 && a>0) { j.openssl_verify_per_s=(b+a)/2; j.openssl_verify_before=b; j.openssl_verify_after=a; }
        console.log(JSON.stringify(j))' \
        "$RAW/validate-$alg.raw.json" "$RAW/validate-$alg.openssl-before.txt" "$RAW/validate-$alg.openssl-after.txt" \
        > "$RAW/validate-$alg.json" || die "cannot combine the validate and openssl measurements"
    fi
    log "validate $alg: $(jget "$RAW/validate-$alg.json" verifications_per_sec) validations/s (openssl verify next to it: $(jget "$RAW/validate-$alg.json" openssl_verify_per_s)/s)"
  done
}

# Keycard (SQLite, RS256) with the photos API and the photos-api client; MODE
# demo: `keycard demo-api`, /photos (local JWT validation) vs /public/photos
# (no validation) latency at low load, and req/s at -t/-c; MODE introspect:
# POST /introspect throughput. Each mode starts from a fresh database.
phase_rs() { # MODE
  local mode=$1 dir="$OUT/keycard-rs-$1" base="http://127.0.0.1:$KC_PORT" demo="http://127.0.0.1:$DEMO_PORT"
  rm -rf "$dir"; mkdir -p "$dir"
  KC_URL="sqlite://$dir/keycard.db"
  local logf="$OUT/keycard-rs-$mode.log" dlog="$OUT/demo-api.log"; : > "$logf"; : > "$dlog"
  local scopes="photos:read orders:write"
  log "resource servers: fresh database $dir/keycard.db, api $AUD ($scopes), client photos-api"
  kc api add "$AUD" --scope "$scopes" --json > "$dir/api.json" 2> "$dir/api.err" \
    || die "keycard api add --scope '$scopes' failed: $(errline "$dir/api.err")"
  kc client add photos-api --confidential --grant client_credentials --audience "$AUD" --scope "$scopes" --json \
    > "$dir/client-photos-api.json" 2> "$dir/client-photos-api.err" \
    || die "keycard client add photos-api failed: $(errline "$dir/client-photos-api.err")"
  local id secret
  id=$(jget "$dir/client-photos-api.json" client_id); secret=$(jget "$dir/client-photos-api.json" client_secret)
  [ -n "$id" ] && [ -n "$secret" ] || die "client add photos-api printed no client_id/client_secret: $(cat "$dir/client-photos-api.json")"
  kc_start RS256 "$logf"
  local pid=$KC_PID
  wait_http_200 "$base/readyz" "$pid" 60 "$logf"
  local auth at; auth=$(basic_auth "$id" "$secret")
  curl -s --max-time 10 -H "Authorization: $auth" --data-urlencode grant_type=client_credentials \
    --data-urlencode "scope=$scopes" "$base/token" > "$RAW/rs.token.json" || die "photos-api token request failed"
  node "$TOOLS" token-check "$RAW/rs.token.json" > "$RAW/rs.token-check.json" \
    || die "photos-api: token response is not a JWT access token: $(cat "$RAW/rs.token-check.json")"
  at=$(jget "$RAW/rs.token.json" access_token)
  log "resource servers: photos-api token scope '$(jget "$RAW/rs.token-check.json" scope)', aud $(jget "$RAW/rs.token-check.json" aud)"

  if [ "$mode" = demo ]; then
    port_free "$DEMO_PORT" || die "port $DEMO_PORT is in use (set DEMO_PORT)"
    KEYCARD_DEMO_API_CLIENT_ID=$id KEYCARD_DEMO_API_CLIENT_SECRET=$secret RUST_LOG=$KEYCARD_LOG \
      "$KEYCARD_BIN" demo-api --addr "127.0.0.1:$DEMO_PORT" --issuer "$base" --audience "$AUD" >> "$dlog" 2>&1 &
    local dpid=$!
    PIDS+=("$dpid")
    wait_http_200 "$demo/healthz" "$dpid" 30 "$dlog"
    local c
    c=$(curl -s -o "$RAW/demo-public.body" -w '%{http_code}' --max-time 5 "$demo/public/photos")
    [ "$c" = 200 ] || die "demo-api GET /public/photos answered $c"
    c=$(curl -s -o "$RAW/demo-noauth.body" -w '%{http_code}' --max-time 5 "$demo/photos")
    [ "$c" = 401 ] || die "demo-api GET /photos without a token answered $c, expected 401"
    c=$(curl -s -o "$RAW/demo-photos.body" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $at" "$demo/photos")
    [ "$c" = 200 ] || die "demo-api GET /photos with a photos:read token answered $c: $(head -c 300 "$RAW/demo-photos.body")"
    c=$(curl -s -o "$RAW/demo-orders.body" -w '%{http_code}' --max-time 5 -X POST -H "Authorization: Bearer $at" "$demo/orders")
    [ "$c" = 200 ] || problem "demo-api POST /orders (introspection) answered $c: $(head -c 300 "$RAW/demo-orders.body")"
    log "demo-api: /public/photos 200, /photos 401 without token and 200 with, /orders $c"
    (
      export BENCH_METHOD=GET BENCH_EXPECT=200 BENCH_EXPECT_MATCH="" BENCH_COOKIE="" BENCH_ORIGIN="" BENCH_BODY=""
      local route
      for route in public photos; do
        local url="$demo/photos"; export BENCH_AUTH="Bearer $at"
        if [ "$route" = public ]; then url="$demo/public/photos"; export BENCH_AUTH=""; fi
        log "demo-api $route: low load (1 thread, 1 connection) 1s warmup, then ${LOWLOAD_DURATION}s"
        THREADS=1 CONNECTIONS=1 wrk_run "$RAW/demo-low-$route.warmup.txt" 1 "$LUA/post.lua" "$url"
        THREADS=1 CONNECTIONS=1 DURATION=$LOWLOAD_DURATION measure "demo-low-$route" "$dpid" "$LUA/post.lua" "$url"
      done
      for route in public photos; do
        local url="$demo/photos"; export BENCH_AUTH="Bearer $at"
        if [ "$route" = public ]; then url="$demo/public/photos"; export BENCH_AUTH=""; fi
        log "demo-api $route: -t$THREADS -c$CONNECTIONS warmup ${WARMUP}s, then ${DURATION}s"
        wrk_run "$RAW/demo-$route.warmup.txt" "$WARMUP" "$LUA/post.lua" "$url"
        measure "demo-$route" "$dpid" "$LUA/post.lua" "$url"
      done
    )
    stop_pid "$dpid"
  fi

  if [ "$mode" = introspect ]; then
    curl -s --max-time 10 -H "Authorization: $auth" --data-urlencode "token=$at" "$base/introspect" \
      > "$RAW/keycard-introspect.sample.json" || die "POST /introspect failed"
    grep -Eq '"active"[[:space:]]*:[[:space:]]*true' "$RAW/keycard-introspect.sample.json" \
      || die "POST /introspect did not say active:true: $(head -c 300 "$RAW/keycard-introspect.sample.json")"
    export BENCH_METHOD=POST BENCH_BODY="token=$at" BENCH_AUTH="$auth" BENCH_EXPECT=200
    export BENCH_EXPECT_MATCH='"active"%s*:%s*true' BENCH_COOKIE="" BENCH_ORIGIN=""
    log "keycard introspect: warmup ${WARMUP}s, then ${DURATION}s"
    wrk_run "$RAW/keycard-introspect.warmup.txt" "$WARMUP" "$LUA/post.lua" "$base/introspect"
    measure "keycard-introspect" "$pid" "$LUA/post.lua" "$base/introspect"
  fi
  stop_pid "$pid"
}

# node-oidc-provider introspection. It refuses to introspect JWT access tokens
# ("Structured JWT Tokens cannot be introspected"), so this phase runs it with
# accessTokenFormat 'opaque' (the token lives in its in-memory adapter).
phase_node_introspect() {
  local pid base="http://127.0.0.1:$NODE_PORT" at auth
  log "node-oidc-provider introspection: starting (RS256, opaque access tokens)"
  (cd "$BENCH_DIR/node" && PORT=$NODE_PORT ALG=RS256 TOKEN_FORMAT=opaque CLIENT_ID=$NODE_CC_ID CLIENT_SECRET=$NODE_CC_SECRET \
    exec node server.mjs) > "$OUT/node-introspect.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_http_200 "$base/.well-known/openid-configuration" "$pid" 30 "$OUT/node-introspect.log"
  auth=$(basic_auth "$NODE_CC_ID" "$NODE_CC_SECRET")
  curl -s --max-time 10 -H "Authorization: $auth" -d grant_type=client_credentials -d scope=read \
    "$base/token" > "$RAW/node-introspect.token.json" || die "node token request failed"
  at=$(jget "$RAW/node-introspect.token.json" access_token)
  [ -n "$at" ] || die "node: no access_token: $(cat "$RAW/node-introspect.token.json")"
  curl -s --max-time 10 -H "Authorization: $auth" --data-urlencode "token=$at" "$base/token/introspection" \
    > "$RAW/node-introspect.sample.json" || die "node introspection request failed"
  grep -Eq '"active"[[:space:]]*:[[:space:]]*true' "$RAW/node-introspect.sample.json" \
    || die "node introspection did not say active:true: $(head -c 300 "$RAW/node-introspect.sample.json")"
  export BENCH_METHOD=POST BENCH_BODY="token=$at" BENCH_AUTH="$auth" BENCH_EXPECT=200
  export BENCH_EXPECT_MATCH='"active"%s*:%s*true' BENCH_COOKIE="" BENCH_ORIGIN=""
  log "node-oidc-provider introspection: warmup ${WARMUP}s, then ${DURATION}s"
  wrk_run "$RAW/node-introspect.warmup.txt" "$WARMUP" "$LUA/post.lua" "$base/token/introspection"
  measure "node-introspect" "$pid" "$LUA/post.lua" "$base/token/introspection"
  stop_pid "$pid"
}

# ------------------------------------------------------------------ 5. PostgreSQL
pg_check() {
  command -v psql >/dev/null || die "psql not found (PostgreSQL phases need it)"
  pg_admin -c 'SELECT 1' >/dev/null 2>"$RAW/pg-check.err" \
    || die "cannot reach PostgreSQL at $PG_USER@$PG_HOST:$PG_PORT/$PG_ADMIN_DB: $(head -c 300 "$RAW/pg-check.err")"
  port_free "$KC_PORT2" || die "port $KC_PORT2 is in use (set KC_PORT2)"
}

# cc and refresh on PostgreSQL: one node, then two nodes (same database, two
# ports, two wrk processes at once, req/s added)
phase_pg() { # ALG
  local alg=$1 dir="$OUT/pg-$1" base1="http://127.0.0.1:$KC_PORT" base2="http://127.0.0.1:$KC_PORT2"
  pg_check
  export KEYCARD_MASTER_KEY=$PG_MASTER_KEY
  local db; db="kc_bench_${RUN_TS}_$(printf '%s' "$alg" | tr 'A-Z' 'a-z')"
  rm -rf "$dir"; mkdir -p "$dir"
  pg_create "$db"
  KC_URL=$(pg_url "$db")
  local logf="$OUT/pg-$alg.node1.log" logf2="$OUT/pg-$alg.node2.log"; : > "$logf"; : > "$logf2"
  log "pg $alg: fresh database $db"
  kc_seed "$dir"
  kc_start "$alg" "$logf"; local pid1=$KC_PID
  wait_http_200 "$base1/readyz" "$pid1" 60 "$logf"
  kc_start "$alg" "$logf2" "$KC_PORT2"; local pid2=$KC_PID
  wait_http_200 "$base2/readyz" "$pid2" 60 "$logf2"
  sleep 1
  jobj node1_kib="$(rss_kib "$pid1")" node2_kib="$(rss_kib "$pid2")" > "$RAW/pg-idle-$alg.json"
  local auth; auth=$(basic_auth "$CC_ID" "$CC_SECRET")
  check_cc_token "pg-cc-$alg" "$base1" "$auth" "$alg"
  check_cc_token "pg2-cc-$alg-node2" "$base2" "$auth" "$alg"

  # one node
  kc_cc "pg-cc-$alg" "$pid1" "$base1" "$auth"
  kc_refresh "pg-refresh-$alg" "$pid1" "$base1" "$dir" "$WEB_ID"

  # two nodes
  log "pg2-cc-$alg: two nodes, two wrk (-t1 -c$(( CONNECTIONS / 2 )) each): warmup ${WARMUP}s, then ${DURATION}s"
  (
    export BENCH_BODY="grant_type=client_credentials&scope=read" BENCH_AUTH="$auth" BENCH_EXPECT=200
    export BENCH_COOKIE="" BENCH_ORIGIN="" BENCH_METHOD=POST BENCH_EXPECT_MATCH=""
    wrk_pair "$RAW/pg2-cc-$alg.warmup" "$WARMUP" "$LUA/post.lua" "$base1/token" "$base2/token"
    measure2 "pg2-cc-$alg" "$pid1" "$pid2" "$LUA/post.lua" "$base1/token" "$base2/token"
  )
  local name="pg2-refresh-$alg" b
  log "$name: obtaining 2 x $REFRESH_SEED refresh tokens (split between the nodes)"
  kc_refresh_tokens "$base1" "$WEB_ID" "$dir/$name-warmup.txt" "$name-warmup"
  kc_refresh_tokens "$base1" "$WEB_ID" "$dir/$name-run.txt" "$name-run"
  for b in warmup run; do
    awk 'NF && NR % 2 == 1' "$dir/$name-$b.txt" > "$dir/$name-$b.node1.txt"
    awk 'NF && NR % 2 == 0' "$dir/$name-$b.txt" > "$dir/$name-$b.node2.txt"
  done
  (
    unset BENCH_BODY BENCH_EXPECT BENCH_COOKIE BENCH_ORIGIN
    export BENCH_AUTH="" REFRESH_CLIENT_ID="$WEB_ID" REFRESH_SCOPE=""
    log "$name: warmup ${WARMUP}s, then ${DURATION}s"
    PAIR_IN1="$dir/$name-warmup.node1.txt" PAIR_IN2="$dir/$name-warmup.node2.txt" \
      wrk_pair "$RAW/$name.warmup" "$WARMUP" "$LUA/refresh.lua" "$base1/token" "$base2/token"
    PAIR_IN1="$dir/$name-run.node1.txt" PAIR_IN2="$dir/$name-run.node2.txt" \
      PAIR_OUT1="$dir/$name-run.node1-left.txt" PAIR_OUT2="$dir/$name-run.node2-left.txt" \
      measure2 "$name" "$pid1" "$pid2" "$LUA/refresh.lua" "$base1/token" "$base2/token"
  )
  stop_pid "$pid1"; stop_pid "$pid2"
}

# ------------------------------------------------------------------ 6. PostgreSQL at scale
# Refresh p99 on a fresh database, then again after bulk-loading
# SCALE_USERS users, SCALE_CLIENTS clients, SCALE_GRANTS grants and
# SCALE_REFRESH refresh tokens (bench/sql/bulk_load.sql, generate_series).
phase_scale() {
  local dir="$OUT/pg-scale" base="http://127.0.0.1:$KC_PORT"
  pg_check
  export KEYCARD_MASTER_KEY=$PG_MASTER_KEY
  local db="kc_bench_${RUN_TS}_scale"
  rm -rf "$dir"; mkdir -p "$dir"
  pg_create "$db"
  KC_URL=$(pg_url "$db")
  local logf="$OUT/pg-scale.log"; : > "$logf"
  log "scale: fresh database $db, keycard migrate"
  kc migrate --json > "$dir/migrate.json" 2>&1 || die "keycard --database-url $KC_URL migrate failed: $(errline "$dir/migrate.json")"
  kc_seed "$dir"
  kc_start RS256 "$logf"; local pid=$KC_PID
  wait_http_200 "$base/readyz" "$pid" 60 "$logf"
  kc_refresh "scale-refresh-empty" "$pid" "$base" "$dir" "$WEB_ID"
  stop_pid "$pid"

  log "scale: bulk load of $SCALE_USERS users, $SCALE_CLIENTS clients, $SCALE_GRANTS grants, $SCALE_REFRESH refresh tokens (slow)"
  local t0 t1
  t0=$(date +%s.%N)
  pg_db "$db" -v users="$SCALE_USERS" -v clients="$SCALE_CLIENTS" -v grants="$SCALE_GRANTS" \
    -v refresh="$SCALE_REFRESH" -f "$BENCH_DIR/sql/bulk_load.sql" > "$RAW/scale-load.txt" 2>&1 \
    || die "bulk load failed: $(tail -n 5 "$RAW/scale-load.txt")"
  t1=$(date +%s.%N)
  local counts; counts=$(pg_db "$db" -F' ' -c "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM clients), (SELECT count(*) FROM grants), (SELECT count(*) FROM refresh_tokens), pg_database_size(current_database())")
  read -r n_users n_clients n_grants n_refresh db_bytes <<< "$counts"
  jobj load_s="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')" users="$n_users" clients="$n_clients" \
    grants="$n_grants" refresh_tokens="$n_refresh" db_mib="$(( db_bytes / 1048576 ))" > "$RAW/scale-load.json"
  log "scale: bulk load took $(jget "$RAW/scale-load.json" load_s) s (incl. indexes + ANALYZE): $counts bytes"

  kc_start RS256 "$logf"; pid=$KC_PID
  wait_http_200 "$base/readyz" "$pid" 120 "$logf"
  kc_refresh "scale-refresh-full" "$pid" "$base" "$dir" "$WEB_ID"
  stop_pid "$pid"
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
if [ "$SKIP_NODE" != 1 ] && [ "$SKIP_INTROSPECT" != 1 ]; then
  run_phase node-introspect phase_node_introspect
fi
if [ "$SKIP_KEYCARD" != 1 ]; then
  run_phase keycard-build ensure_keycard
  if [ -x "$KEYCARD_BIN" ]; then
    if [ "$SKIP_SQLITE" != 1 ]; then
      for alg in $ALGS; do run_phase "keycard-$alg" phase_keycard "$alg"; done
      case " $ALGS " in
        *" $LOGIN_ALG "*) [ "$SKIP_LOGIN" = 1 ] || run_phase argon2 phase_argon2 ;;
      esac
    fi
    [ "$SKIP_VALIDATE" = 1 ] || run_phase validate phase_validate
    [ "$SKIP_DEMO_API" = 1 ] || run_phase demo-api phase_rs demo
    [ "$SKIP_INTROSPECT" = 1 ] || run_phase keycard-introspect phase_rs introspect
    if [ "$SKIP_PG" != 1 ]; then
      for alg in $ALGS; do run_phase "pg-$alg" phase_pg "$alg"; done
    fi
    [ "$SCALE" != 1 ] || run_phase pg-scale phase_scale
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

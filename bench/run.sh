#!/usr/bin/env bash
# Keycard one-command benchmark. Run from anywhere:
#
#   bash bench/run.sh
#
# Installs what the benchmark needs, each only when missing (wrk; pgbench from
# postgresql-client; nginx-light and caddy for the gateway phases, unless
# SKIP_GATEWAY=1; the node-oidc-provider peer's npm packages), then runs the
# driver, bench/bench.mjs, which measures, prints the table and writes
# bench/out/results.json. Its knobs are environment variables: see
# bench/README.md (e.g. `PHASES=cc-ES256,healthz DURATION=2 WARMUP=1`).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
APT_UPDATED=0
# apt_install COMMAND PACKAGE: installs PACKAGE when COMMAND is not on PATH.
apt_install() {
  command -v "$1" >/dev/null && return 0
  log "installing $2 (apt-get) for $1"
  if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  # A package's service must not start (nginx would take port 80): policy-rc.d
  # refuses every start while we install, if no policy is in place already.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$2" >/dev/null || {
    [ "$own_policy" = 0 ] || $SUDO rm -f "$policy"
    log "could not install $2"; return 1; }
  [ "$own_policy" = 0 ] || $SUDO rm -f "$policy"
}

command -v node >/dev/null || { log "node (>= 20) is required"; exit 1; }
for c in curl openssl; do command -v "$c" >/dev/null || { log "$c is required"; exit 1; }; done
apt_install wrk wrk
apt_install pgbench postgresql-client || log "no pgbench: the pgbench phase will abort"
if [ "${SKIP_GATEWAY:-0}" != 1 ]; then
  apt_install nginx nginx-light || log "no nginx: the nginx phases will be skipped"
  apt_install caddy caddy || log "no caddy: the Caddy phases will be skipped"
fi
if [ "${SKIP_NODE:-0}" != 1 ] && [ ! -d "$BENCH_DIR/node/node_modules/oidc-provider" ]; then
  log "npm ci in bench/node"
  (cd "$BENCH_DIR/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
exec node "$BENCH_DIR/bench.mjs" "$@"

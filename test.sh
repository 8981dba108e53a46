#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is missing, then runs the
# whole workspace's tests, and the black-box HTTP suite a second time on PostgreSQL when a
# PostgreSQL server is reachable. `.ci/run` calls exactly this.
#
#   ./test.sh              everything
#   ./test.sh -p CRATE     passes its arguments on to `cargo test` (the PostgreSQL rerun is skipped)
#
# Installing needs root or sudo (Debian/Ubuntu packages, never a downloaded browser); without
# them it says which command to run and stops.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n== %s\n' "$*" >&2; }

# Runs a command as root: directly, through sudo, or not at all (with the command to run).
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "needs root to run: $*" >&2
    return 1
  fi
}

# Installs Debian packages for the commands that are missing.
need_packages() {
  local missing=()
  while [ $# -gt 0 ]; do
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
    shift 2
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq || true
  as_root apt-get install -y -qq "${missing[@]}" >/dev/null || {
    echo "could not install ${missing[*]}: run 'apt-get install -y ${missing[*]}' and try again" >&2
    exit 1
  }
}

# A C toolchain (aws-lc, SQLite and jemalloc build from source), real Chromium and its driver
# for the browser tests, node and npm for the node-oidc-provider interop peers.
need_packages cc build-essential make build-essential \
  chromium chromium chromedriver chromium-driver \
  node nodejs npm npm

# node-oidc-provider and the other npm peers, pinned by each folder's package-lock.json.
for peers in bench/node crates/keycard-bff/tests/node; do
  if [ ! -d "$peers/node_modules/oidc-provider" ]; then
    say "npm ci in $peers (node-oidc-provider)"
    (cd "$peers" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

# PostgreSQL: started if it is installed here and stopped; used when it answers.
export KEYCARD_TEST_PG_URL="${KEYCARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -q 2>/dev/null; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start \
    >/dev/null 2>&1 || true
fi
pg=no
if command -v psql >/dev/null 2>&1 && psql "$KEYCARD_TEST_PG_URL" -qAtc 'select 1' >/dev/null 2>&1; then
  pg=yes
  # Leftovers of interrupted runs (each test makes its own schema or database).
  psql "$KEYCARD_TEST_PG_URL" -qAt -c "SELECT 'DROP SCHEMA IF EXISTS ' || nspname || ' CASCADE;' FROM pg_namespace WHERE nspname LIKE 'kc_test_%'" \
    | psql "$KEYCARD_TEST_PG_URL" -q >/dev/null 2>&1 || true
  psql "$KEYCARD_TEST_PG_URL" -qAt -c "SELECT 'DROP DATABASE IF EXISTS ' || datname || ' WITH (FORCE);' FROM pg_database WHERE datname LIKE 'kc_it_%'" \
    | psql "$KEYCARD_TEST_PG_URL" -q >/dev/null 2>&1 || true
else
  unset KEYCARD_TEST_PG_URL
  say "PostgreSQL is not reachable at postgres://postgres@127.0.0.1:5432/test:" \
    "the PostgreSQL suites are SKIPPED (set KEYCARD_TEST_PG_URL to use another server)"
fi

# A shared target directory outside the clone makes reruns fast; a cold machine still works.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/keycard-target}"

if [ $# -gt 0 ]; then
  cargo test --locked "$@"
  exit
fi

say "cargo test --workspace"
cargo test --workspace --locked

if [ "$pg" = yes ]; then
  say "the black-box HTTP suite again, on PostgreSQL"
  KEYCARD_TEST_BACKEND=postgres cargo test --locked -p keycard-server --test it
else
  say "SKIPPED: the black-box HTTP suite on PostgreSQL (no PostgreSQL reachable)"
fi
say "all tests passed"

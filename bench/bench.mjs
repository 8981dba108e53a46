#!/usr/bin/env node
// The Keycard benchmark driver (started by `bash bench/run.sh`, which installs what it needs).
//
// Runs the phases below in order, each isolated (its servers are stopped and its databases
// dropped when it ends, whether it passed or threw), then prints the table and writes
// bench/out/results.json (lib/report.mjs). Knobs are environment variables (see `config`);
// PHASES / SKIP select phases by name (comma-separated, `*` matches anything).
//
// Adding a phase: write an `async (ctx) => { ... }` (see phases/*.mjs for the shape: start
// servers with lib/keycard.mjs or lib/proc.mjs, call `measure` once per load, record baselines
// with `ctx.baseline`) and list it in `PHASES` below; a target that uses it goes in
// lib/report.mjs.
//
// Exit status: 0 measured (whatever the verdicts), 2 a phase aborted (the table still shows what
// was measured), 3 STRICT=1 and a target not PASS.
import {
  existsSync, mkdirSync, rmSync, writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanup, portFree, run } from './lib/proc.mjs';
import { CLK_TCK } from './lib/cpu.mjs';
import { report } from './lib/report.mjs';
import * as demo from './phases/demo.mjs';
import * as peer from './phases/peer.mjs';
import * as sqlite from './phases/sqlite.mjs';
import * as rs from './phases/resource.mjs';
import * as pg from './phases/postgres.mjs';
import * as gw from './phases/gateway.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);
const env = (k, d) => (process.env[k] === undefined || process.env[k] === '' ? d : process.env[k]);
const num = (k, d) => Number(env(k, d));

function config() {
  const OUT = env('OUT', path.join(BENCH_DIR, 'out'));
  const connections = num('CONNECTIONS', 32);
  return {
    BENCH_DIR, ROOT, OUT, RAW: path.join(OUT, 'raw'),
    DURATION: num('DURATION', 10), WARMUP: num('WARMUP', 2), THREADS: num('THREADS', 2), CONNECTIONS: connections,
    LOWLOAD_DURATION: num('LOWLOAD_DURATION', 5), VALIDATE_SECONDS: num('VALIDATE_SECONDS', 5),
    READY_RUNS: num('READY_RUNS', 5), REFRESH_SEED: num('REFRESH_SEED', Math.max(2 * connections, 64)),
    INTROSPECT_TOKENS: num('INTROSPECT_TOKENS', 10000),
    ALGS: env('ALGS', 'RS256 ES256').split(/\s+/).filter(Boolean),
    NODE_PORT: num('NODE_PORT', 18100), KC_PORT: num('KC_PORT', 18200), KC_PORT2: num('KC_PORT2', 18201),
    DEMO_PORT: num('DEMO_PORT', 18300), NGINX_PORT: num('NGINX_PORT', 18400), CADDY_PORT: num('CADDY_PORT', 18500),
    GATEWAY_PORT: num('GATEWAY_PORT', 18600),
    KEYCARD_BIN: env('KEYCARD_BIN', path.join(ROOT, 'target/release/keycard')), BUILD: env('BUILD', '0') === '1',
    KEYCARD_LOG: env('KEYCARD_LOG', 'warn'),
    PG_HOST: env('PG_HOST', '127.0.0.1'), PG_PORT: num('PG_PORT', 5432), PG_USER: env('PG_USER', 'postgres'),
    PG_ADMIN_DB: env('PG_ADMIN_DB', 'test'), KEEP_DB: env('KEEP_DB', '0') === '1',
    PG_MASTER_KEY: env('KEYCARD_MASTER_KEY', randomBytes(32).toString('base64url')),
    PGBENCH_CLIENTS: num('PGBENCH_CLIENTS', 16), PGBENCH_THREADS: num('PGBENCH_THREADS', 2), PGBENCH_SCALE: num('PGBENCH_SCALE', 10),
    SCALE: env('SCALE', '0') === '1',
    SCALE_USERS: num('SCALE_USERS', 1000000), SCALE_CLIENTS: num('SCALE_CLIENTS', 100000),
    SCALE_GRANTS: num('SCALE_GRANTS', 2000000), SCALE_REFRESH: num('SCALE_REFRESH', 10000000),
    // The server's argon2 pool has one worker per core (crates/keycard-server/src/password.rs).
    ARGON2_WORKERS: os.availableParallelism(),
    RUN_TS: new Date().toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15),
    STRICT: env('STRICT', '0') === '1',
  };
}

// The phases, in the order they run. Names are what PHASES / SKIP match.
function phaseList(cfg) {
  const algs = cfg.ALGS;
  const each = (prefix, fn) => algs.map((a) => [`${prefix}-${a}`, (ctx) => fn(ctx, a)]);
  return [
    ['openssl', rs.openssl],
    ...algs.flatMap((a) => [[`peer-cc-${a}`, (ctx) => peer.cc(ctx, a)], [`cc-${a}`, (ctx) => sqlite.cc(ctx, a)]]),
    ...each('refresh', sqlite.refresh),
    ['login', sqlite.login],
    ...each('ready', sqlite.ready),
    ['healthz', sqlite.healthz],
    ['validate', rs.validate],
    ['demo-api', rs.demoApi],
    ['demo-startup', demo.startup],
    ['peer-introspect', peer.introspect],
    ['introspect', rs.introspect],
    ['pgbench', pg.pgbenchBaseline],
    ...each('pg', pg.oneNode),
    ...each('pg2', pg.twoNodes),
    ...(cfg.SCALE ? [['scale', pg.scale]] : []),
    ['gw-direct', gw.direct],
    ['gw-nginx-proxy', gw.nginxProxy],
    ['gw-nginx-auth-request', gw.nginxAuthRequest],
    ['gw-caddy-proxy', gw.caddyProxy],
    ['gw-caddy-forward-auth', gw.caddyForwardAuth],
    ['gw-keycard', gw.keycardGateway],
  ];
}

// The SKIP_* knobs of the old driver, as SKIP patterns.
const SKIP_ALIASES = {
  SKIP_OPENSSL: 'openssl', SKIP_NODE: 'peer-*', SKIP_KEYCARD: 'cc-*,refresh-*,login,ready-*,healthz,validate,demo-api,introspect,pg*,scale,gw-*',
  SKIP_SQLITE: 'cc-*,refresh-*,login,ready-*,healthz', SKIP_LOGIN: 'login', SKIP_VALIDATE: 'validate',
  SKIP_DEMO_API: 'demo-api', SKIP_INTROSPECT: '*introspect', SKIP_PG: 'pg*,scale', SKIP_GATEWAY: 'gw-*',
};

function selector() {
  const toRe = (list) => list.split(',').map((s) => s.trim()).filter(Boolean)
    .map((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
  const only = toRe(env('PHASES', ''));
  const skip = toRe([env('SKIP', ''), ...Object.entries(SKIP_ALIASES).filter(([k]) => env(k, '0') === '1').map(([, v]) => v)].join(','));
  return (name) => (!only.length || only.some((r) => r.test(name))) && !skip.some((r) => r.test(name));
}

const stamp = () => new Date().toISOString().slice(11, 19);

function makeCtx(cfg) {
  const results = {
    meta: {}, baselines: {}, measurements: {}, facts: {}, phases: {}, skipped: [], problems: [],
  };
  const ctx = {
    cfg,
    results,
    log: (msg) => process.stderr.write(`[bench ${stamp()}] ${msg}\n`),
    problem: (msg) => { ctx.log(`PROBLEM: ${msg}`); results.problems.push(msg); },
    baseline: (key, value) => { results.baselines[key] = value; return value; },
    fact: (key, value) => { results.facts[key] = value; return value; },
    // A phase that cannot run here says why; it is not a failure.
    skip: (reason) => { const e = new Error(reason); e.skip = true; throw e; },
    lua: (f) => path.join(BENCH_DIR, 'lua', f),
    raw: (f) => path.join(cfg.RAW, f),
  };
  return ctx;
}

async function meta(cfg) {
  const out = async (cmd, args) => (await run(cmd, args, { timeoutMs: 10000 })).stdout.trim();
  const cpu = /Model name:\s*(.*)/.exec(await out('lscpu', []))?.[1] ?? 'unknown';
  const [load] = (await out('cat', ['/proc/loadavg'])).split(' ');
  return {
    date: new Date().toISOString(), nproc: os.availableParallelism(), cpu, kernel: os.release(),
    threads: cfg.THREADS, connections: cfg.CONNECTIONS, duration_s: cfg.DURATION, warmup_s: cfg.WARMUP,
    node: process.version, wrk: (await out('wrk', ['--version'])).split(/\s+/)[1] ?? 'n/a',
    openssl: await out('openssl', ['version']), postgres: (await out('psql', ['--version'])).split(' ').pop() || 'n/a',
    git_commit: (await out('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])) || 'none',
    keycard_bin: cfg.KEYCARD_BIN, argon2_workers: cfg.ARGON2_WORKERS, load_before: load,
    clk_tck: CLK_TCK,
  };
}

async function ensureKeycard(ctx) {
  const { cfg } = ctx;
  if (cfg.BUILD || !existsSync(cfg.KEYCARD_BIN)) {
    ctx.log('building keycard: cargo build --release -p keycard-cli (this can take minutes)');
    const r = await run('cargo', ['build', '--release', '-p', 'keycard-cli'], { cwd: ROOT, timeoutMs: 3600000 });
    if (r.code !== 0) throw new Error(`cargo build failed: ${r.stderr.slice(-500)}`);
  }
  if (!existsSync(cfg.KEYCARD_BIN)) throw new Error(`${cfg.KEYCARD_BIN} not found`);
}

async function main() {
  const cfg = config();
  const ctx = makeCtx(cfg);
  rmSync(cfg.RAW, { recursive: true, force: true });
  rmSync(path.join(cfg.OUT, 'results.json'), { force: true });
  mkdirSync(cfg.RAW, { recursive: true });
  for (const p of [cfg.NODE_PORT, cfg.KC_PORT, cfg.KC_PORT2, cfg.DEMO_PORT, cfg.NGINX_PORT, cfg.CADDY_PORT, cfg.GATEWAY_PORT]) {
    if (!(await portFree(p))) throw new Error(`port ${p} is in use (see the *_PORT knobs)`);
  }
  ctx.results.meta = await meta(cfg);
  const m = ctx.results.meta;
  ctx.log(`${m.nproc} cores, ${m.cpu}, kernel ${m.kernel}; load average ${m.load_before}; CLK_TCK ${m.clk_tck}`);
  if (Number(m.load_before) > 0.5) ctx.log(`warning: the machine is not idle (load ${m.load_before}): numbers will be low`);

  const want = selector();
  const list = phaseList(cfg).filter(([name]) => want(name));
  if (!list.length) throw new Error('PHASES / SKIP select no phase');
  if (list.some(([n]) => n !== 'openssl' && !n.startsWith('peer-'))) await ensureKeycard(ctx);
  const t0 = performance.now();
  let aborted = 0;
  for (const [name, fn] of list) {
    const p0 = performance.now();
    ctx.log(`== phase ${name}`);
    try {
      await fn(ctx);
      ctx.results.phases[name] = { status: 'ran', s: Math.round((performance.now() - p0) / 100) / 10 };
    } catch (e) {
      if (e.skip) {
        ctx.log(`phase ${name} skipped: ${e.message}`);
        ctx.results.skipped.push({ phase: name, reason: e.message });
        ctx.results.phases[name] = { status: 'skipped', reason: e.message };
      } else {
        aborted += 1;
        ctx.problem(`phase '${name}' aborted: ${e.message}`);
        ctx.results.phases[name] = { status: 'aborted', error: e.message };
      }
    } finally {
      await cleanup();
    }
  }
  ctx.log(`measurements done in ${Math.round((performance.now() - t0) / 1000)} s`);
  const { text, results, failed } = report(ctx.results, cfg);
  writeFileSync(path.join(cfg.OUT, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log(text);
  if (aborted) {
    ctx.log(`${aborted} phase(s) aborted: the run is incomplete (exit 2)`);
    return 2;
  }
  return cfg.STRICT && failed ? 3 : 0;
}

main().then((code) => process.exit(code), async (e) => {
  process.stderr.write(`[bench] FATAL: ${e.stack ?? e}\n`);
  await cleanup();
  process.exit(1);
});

// wrk, the load generator: one run (`runWrk`) and its output parsed (`parseWrk`).
//
// The lua scripts under bench/lua read their configuration from the environment, which
// `runWrk` sets per run (nothing is exported globally). Both scripts count responses with an
// unexpected status (`bench_errors`) and print exact latency percentiles from wrk's histogram
// (`bench_latency_us`), which `parseWrk` prefers over wrk's rounded text ("1.23ms").
//
// Not here: CPU and RSS around a run (lib/measure.mjs).
import { writeFileSync } from 'node:fs';
import { run } from './proc.mjs';

function toMs(s) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) return null;
  const v = Number.parseFloat(m[1]);
  return { us: v / 1000, ms: v, s: v * 1000, m: v * 60000 }[m[2]];
}

export function parseWrk(text) {
  const r = {
    rps: null, requests: null, duration_s: null, non_2xx_3xx: 0,
    socket_errors: { connect: 0, read: 0, write: 0, timeout: 0 },
    latency_us: {}, bench_ok: null, bench_errors: null, bench_error_statuses: '',
  };
  let m;
  if ((m = /Requests\/sec:\s+([\d.]+)/.exec(text))) r.rps = Number.parseFloat(m[1]);
  if ((m = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(text))) {
    r.requests = Number.parseInt(m[1], 10);
    r.duration_s = toMs(`${m[2]}${m[3]}`) / 1000;
  }
  if ((m = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text))) r.non_2xx_3xx = Number.parseInt(m[1], 10);
  if ((m = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text))) {
    r.socket_errors = { connect: +m[1], read: +m[2], write: +m[3], timeout: +m[4] };
  }
  for (const p of ['50', '90', '99']) {
    if ((m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(text))) r.latency_us[`p${p}`] = toMs(m[1]) * 1000;
  }
  if ((m = /bench_ok:\s+(\d+)/.exec(text))) r.bench_ok = +m[1];
  if ((m = /bench_errors:\s+(\d+)/.exec(text))) r.bench_errors = +m[1];
  if ((m = /bench_error_statuses:[ \t]*(\S*)/.exec(text))) r.bench_error_statuses = m[1];
  if ((m = /bench_queue_empty:\s+(\d+)/.exec(text))) r.bench_queue_empty = +m[1];
  if ((m = /bench_live_tokens:\s+(\d+)/.exec(text))) r.bench_live_tokens = +m[1];
  if ((m = /bench_latency_us: p50=(\d+) p90=(\d+) p99=(\d+)/.exec(text))) {
    r.latency_us = { p50: +m[1], p90: +m[2], p99: +m[3] };
  }
  const se = r.socket_errors;
  // Errors: responses with an unexpected status (the lua script's count, else wrk's non-2xx/3xx
  // count) plus socket errors other than the reads wrk cuts when the run ends.
  r.errors = (r.bench_errors ?? r.non_2xx_3xx) + se.connect + se.write + se.timeout;
  return r;
}

// Two or more simultaneous runs (one per node) as one: requests added, latency the worst.
export function sumWrk(runs) {
  const worst = (k) => Math.max(...runs.map((x) => x.latency_us[k] ?? Number.NaN));
  const sum = (k) => runs.reduce((a, x) => a + (x[k] ?? 0), 0);
  return {
    rps: sum('rps'),
    requests: sum('requests'),
    duration_s: Math.max(...runs.map((x) => x.duration_s ?? 0)),
    errors: sum('errors'),
    bench_error_statuses: runs.map((x) => x.bench_error_statuses).filter(Boolean).join(','),
    latency_us: { p50: worst('p50'), p90: worst('p90'), p99: worst('p99') },
    parts: runs,
  };
}

// One wrk run; `out` is where its raw output goes. Throws when wrk itself fails.
export async function runWrk({
  url, script, env = {}, seconds, threads, connections, latency = false, out,
}) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', script];
  if (latency) args.push('--latency');
  args.push(url);
  const r = await run('wrk', args, { env: { BENCH_THREADS: String(threads), ...env }, timeoutMs: (seconds + 30) * 1000 });
  writeFileSync(out, `${r.stdout}\n--- stderr\n${r.stderr}`);
  if (r.code !== 0) throw new Error(`wrk failed (exit ${r.code}, ${out}): ${r.stderr.slice(0, 400)}`);
  return parseWrk(r.stdout);
}

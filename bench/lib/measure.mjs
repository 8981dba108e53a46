// One measured load: a warmup, then the measured wrk run(s) with the CPU of every watched server
// process read right before and right after (lib/cpu.mjs) and its RSS sampled during the run.
//
// `measure(ctx, name, spec)` records under results.measurements[name]:
//   req/s, requests, errors (bad responses + socket errors), latency p50/p90/p99 (µs);
//   per watched process: CPU seconds, cores used, requests per CPU-second, CPU µs per request,
//   the same three for user-space CPU alone (utime), peak RSS; the combined figure of all watched processes when there are several; wrk's own
//   CPU and the machine's busy time over the same window.
// A measurement with any error is listed under Problems and fails every target that uses it.
//
// spec: { label, procs: [{ role, pid, load } | { role, postgres: true }], loads: [{ url, script, env,
//   warmupEnv, runEnv }], threads, connections, seconds, warmup, note }. Several loads run at
// once (one wrk each, e.g. one per node) and are added up. A process with `load: i` serves only
// the i-th load (one node of several): its per-request figures divide by that load's requests,
// not the total, while the `all servers` line divides the sum by the total.
import path from 'node:path';
import { runWrk, sumWrk } from './wrk.mjs';
import { cpuSnapshot, cpuDelta, startRssSampler } from './cpu.mjs';

function runLoads(ctx, name, spec, stage, seconds) {
  return Promise.all(spec.loads.map((l, i) => runWrk({
    url: l.url,
    script: l.script ?? ctx.lua('post.lua'),
    env: { ...l.env, ...(stage === 'warmup' ? l.warmupEnv : l.runEnv) },
    seconds,
    threads: l.threads ?? spec.threads ?? ctx.cfg.THREADS,
    connections: l.connections ?? spec.connections ?? ctx.cfg.CONNECTIONS,
    latency: stage === 'run',
    out: path.join(ctx.cfg.RAW, `${name}.${stage}${spec.loads.length > 1 ? `.${i + 1}` : ''}.txt`),
  })));
}

const round = (v, d = 1) => (v == null || !Number.isFinite(v) ? null : Math.round(v * 10 ** d) / 10 ** d);

export async function measure(ctx, name, spec) {
  const seconds = spec.seconds ?? ctx.cfg.DURATION;
  const warmup = spec.warmup ?? ctx.cfg.WARMUP;
  const shape = `${spec.loads.length > 1 ? `${spec.loads.length} × ` : ''}wrk -t${spec.loads[0].threads ?? spec.threads ?? ctx.cfg.THREADS} -c${spec.loads[0].connections ?? spec.connections ?? ctx.cfg.CONNECTIONS}`;
  ctx.log(`${name}: ${shape}, warmup ${warmup}s, then ${seconds}s`);
  if (warmup > 0) await runLoads(ctx, name, spec, 'warmup', warmup);

  const watched = spec.procs.filter((p) => p.postgres || p.pid);
  const rss = watched.map((p) => (p.pid ? startRssSampler([p.pid]) : null));
  const before = cpuSnapshot(watched);
  const runs = await runLoads(ctx, name, spec, 'run', seconds);
  const after = cpuSnapshot(watched);
  const mem = rss.map((r) => r?.stop() ?? null);
  const cpu = cpuDelta(before, after);
  const w = runs.length === 1 ? runs[0] : sumWrk(runs);

  const per = (cpuS, userS, requests = w.requests) => ({
    cpu_s: round(cpuS, 2),
    cores: round(cpuS / w.duration_s, 2),
    requests,
    req_per_cpu_s: cpuS > 0 ? round(requests / cpuS, 0) : null,
    cpu_us_per_req: requests > 0 ? round((cpuS * 1e6) / requests, 1) : null,
    user_cpu_s: round(userS, 2),
    req_per_user_cpu_s: userS > 0 ? round(requests / userS, 0) : null,
    user_us_per_req: requests > 0 ? round((userS * 1e6) / requests, 1) : null,
  });
  const served = (p) => (p.load != null && runs[p.load] ? runs[p.load].requests : w.requests);
  const sum = (m) => watched.reduce((a, p) => a + m[p.role], 0);
  const procs = watched.map((p, i) => ({ role: p.role, ...per(cpu.procs[p.role], cpu.user[p.role], served(p)), rss_peak_kib: mem[i]?.max_kib ?? null }));
  if (procs.length > 1) procs.push({ role: 'all servers', ...per(sum(cpu.procs), sum(cpu.user)), rss_peak_kib: null });
  const m = {
    label: spec.label ?? name,
    rps: round(w.rps, 1),
    requests: w.requests,
    duration_s: w.duration_s,
    errors: w.errors,
    error_statuses: w.bench_error_statuses,
    latency_us: w.latency_us,
    procs,
    wrk_cpu_s: round(cpu.wrk_s, 2),
    machine_busy_s: round(cpu.machine_busy_s, 2),
    note: spec.note,
    ...(runs.length > 1 ? { parts: runs.map((r) => ({ rps: r.rps, errors: r.errors, latency_us: r.latency_us })) } : {}),
  };
  if (w.bench_queue_empty) m.refresh_queue_empty = w.bench_queue_empty;
  ctx.results.measurements[name] = m;

  const lat = (k) => (m.latency_us[k] != null ? (m.latency_us[k] / 1000).toFixed(2) : 'n/a');
  ctx.log(`${name}: ${m.rps} req/s, errors ${m.errors}${m.error_statuses ? ` (${m.error_statuses})` : ''}, p50/p90/p99 ${lat('p50')}/${lat('p90')}/${lat('p99')} ms; ${
    procs.map((p) => `${p.role} ${p.cpu_us_per_req} µs CPU/req (${p.req_per_cpu_s} req/CPU-s, ${p.cores} cores)`).join('; ')}; wrk ${m.wrk_cpu_s} CPU-s`);
  if (cpu.missing.length) ctx.problem(`${name}: process(es) ${cpu.missing.join(', ')} not found at the start or end of the run: CPU figures are wrong`);
  if (m.errors) ctx.problem(`${name}: ${m.errors} bad responses (${m.error_statuses || 'socket errors'}); see ${ctx.cfg.RAW}/${name}.run*.txt`);
  return m;
}

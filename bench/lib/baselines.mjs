// Baselines: what the machine does without Keycard, measured in the same run as the phase that
// is compared with it.
//
// `opensslSpeed` (one core's sign and verify rates), `argon2Raw` (`keycard bench argon2`: the
// raw argon2id hash rate with the server's parameters), `pgbench` (`pgbench -N`, simple-update:
// one read, two writes and a commit per transaction) and `around`, which measures a baseline
// right before and right after its subject and averages the two: on this shared VM a baseline
// taken minutes earlier saw different neighbours (0.72× and 0.98× for the same binary).
import { run, runOk } from './proc.mjs';
import { jsonIn } from './keycard.mjs';

// `openssl speed -seconds N rsa2048 | ecdsap256` -> { sign, verify } per second, one core. The
// last table line is "rsa 2048 bits 0.000837s 0.000019s 1195.0 51512.7" (sign/s, verify/s last).
export async function opensslSpeed(kind, seconds) {
  const r = await runOk('openssl', ['speed', '-seconds', String(seconds), kind]);
  const re = kind === 'rsa2048' ? /^rsa 2048 bits.*/gm : /^.*ecdsa \(nistp256\).*/gm;
  const last = [...r.stdout.matchAll(re)].pop();
  if (!last) throw new Error(`cannot parse openssl speed ${kind}: ${r.stdout.slice(-300)}`);
  const f = last[0].trim().split(/\s+/);
  return { sign: Number(f[f.length - 2]), verify: Number(f[f.length - 1]) };
}

export async function argon2Raw(cfg, threads, seconds = 3) {
  const r = await runOk(cfg.KEYCARD_BIN, ['bench', 'argon2', '--seconds', String(seconds), '--threads', String(threads), '--json']);
  const j = jsonIn(r.stdout);
  if (!(j?.hashes_per_sec > 0)) throw new Error(`keycard bench argon2: no hashes_per_sec in ${r.stdout.slice(0, 300)}`);
  return j.hashes_per_sec;
}

// pgbench -i (scale) into `db`, then `pgbench -N` for `seconds`: { tps, transactions, failed,
// latency_ms }. Failed transactions count as errors of the baseline phase.
export async function pgbench(cfg, db, { clients, threads, scale, seconds, out }) {
  const conn = ['-h', cfg.PG_HOST, '-p', String(cfg.PG_PORT), '-U', cfg.PG_USER];
  await runOk('pgbench', [...conn, '-i', '-q', '-s', String(scale), db], { timeoutMs: 600000 });
  const r = await run('pgbench', [...conn, '-N', '-n', '-c', String(clients), '-j', String(threads), '-T', String(seconds), db],
    { timeoutMs: (seconds + 120) * 1000 });
  out?.(r.stdout + r.stderr);
  if (r.code !== 0) throw new Error(`pgbench -N exited ${r.code}: ${r.stderr.slice(0, 400)}`);
  const num = (re) => { const m = re.exec(r.stdout); return m ? Number(m[1]) : null; };
  return {
    tps: num(/tps = ([\d.]+) \(without initial connection time\)/) ?? num(/tps = ([\d.]+)/),
    transactions: num(/number of transactions actually processed: (\d+)/),
    failed: num(/number of failed transactions: (\d+)/) ?? 0,
    latency_ms: num(/latency average = ([\d.]+) ms/),
  };
}

// Runs `measureBaseline` before and after `body`; returns { mean, before, after, result } where
// `result` is what `body` returned. With `skip`, only `body` runs (mean null).
export async function around(measureBaseline, body, { skip = false } = {}) {
  if (skip) return { mean: null, before: null, after: null, result: await body() };
  const before = await measureBaseline();
  const result = await body();
  const after = await measureBaseline();
  return {
    mean: (before + after) / 2, before, after, result,
  };
}

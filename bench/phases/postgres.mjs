// Keycard on PostgreSQL (127.0.0.1:5432 by default) and its baseline, `pgbench -N`.
//
// `pgbenchBaseline(ctx)`: `pgbench -i -s PGBENCH_SCALE` in its own database, then `pgbench -N`
// (simple-update: one read, two writes, a commit per transaction) with -c PGBENCH_CLIENTS
// (16: Keycard's PostgreSQL pool size) -j PGBENCH_THREADS for WARMUP + DURATION seconds; the
// tps of the measured run is the PostgreSQL refresh target's baseline.
// `oneNode(ctx, alg)`: cc and refresh on one Keycard node. `twoNodes(ctx, alg)`: two nodes on
// one database (KC_PORT, KC_PORT2, same issuer and master key), two wrk at once (-t1, half the
// connections each), req/s added, latency the worse node; the refresh tokens are split.
// `scale(ctx)` (SCALE=1): refresh on a nearly empty database, then after sql/bulk_load.sql.
//
// CPU: every measurement here watches the Keycard node(s) and the PostgreSQL server: all
// `postgres` processes of the machine with the CPU their postmaster reaped from exited backends
// (lib/cpu.mjs). Each phase uses a fresh database `kc_bench_<run>_<tag>` (dropped at the end
// unless KEEP_DB=1) and one KEYCARD_MASTER_KEY for all nodes.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stop } from '../lib/proc.mjs';
import { rssKib, cpuSnapshot, cpuDelta } from '../lib/cpu.mjs';
import { measure } from '../lib/measure.mjs';
import { pgbench } from '../lib/baselines.mjs';
import { seedBench, startKeycard } from '../lib/keycard.mjs';
import {
  psql, pgUrl, pgCheck, pgFresh,
} from '../lib/pg.mjs';
import { basicAuth } from '../lib/oauth.mjs';
import {
  checkCc, ccLoad, refreshBatches, refreshLoad,
} from './sqlite.mjs';

const PG = { role: 'postgres', postgres: true };

export async function pgbenchBaseline(ctx) {
  const { cfg } = ctx;
  await pgCheck(cfg);
  const db = await pgFresh(cfg, ctx.log, 'pgbench');
  const opts = { clients: cfg.PGBENCH_CLIENTS, threads: cfg.PGBENCH_THREADS, scale: cfg.PGBENCH_SCALE };
  ctx.log(`pgbench -N -c ${opts.clients} -j ${opts.threads} (scale ${opts.scale}): warmup ${cfg.WARMUP}s, then ${cfg.DURATION}s`);
  if (cfg.WARMUP > 0) await pgbench(cfg, db, { ...opts, seconds: cfg.WARMUP, out: (t) => writeFileSync(ctx.raw('pgbench.warmup.txt'), t) });
  const before = cpuSnapshot([PG]);
  const r = await pgbench(cfg, db, { ...opts, seconds: cfg.DURATION, out: (t) => writeFileSync(ctx.raw('pgbench.run.txt'), t) });
  const cpu = cpuDelta(before, cpuSnapshot([PG]));
  if (!(r.tps > 0)) throw new Error(`pgbench: no tps (see ${ctx.raw('pgbench.run.txt')})`);
  // The PostgreSQL server's CPU per transaction, to set beside its CPU per refresh rotation (the
  // window also holds pgbench's connection set-up; pgbench's own CPU is what the driver reaped).
  const us = r.transactions ? (cpu.procs.postgres * 1e6) / r.transactions : null;
  ctx.baseline('pgbench', {
    ...opts, ...r, postgres_cpu_s: cpu.procs.postgres, postgres_cpu_us_per_txn: us && Math.round(us * 10) / 10, pgbench_cpu_s: cpu.wrk_s,
  });
  ctx.log(`pgbench -N: ${r.tps} tps, ${r.failed} failed, latency ${r.latency_ms} ms; postgres ${us?.toFixed(1)} µs CPU per transaction`);
  if (r.failed) ctx.problem(`pgbench: ${r.failed} failed transactions`);
}

async function pgKeycard(ctx, tag) {
  const { cfg } = ctx;
  await pgCheck(cfg);
  const db = await pgFresh(cfg, ctx.log, tag);
  const dbUrl = pgUrl(cfg, db);
  const env = { KEYCARD_MASTER_KEY: cfg.PG_MASTER_KEY };
  const seed = await seedBench(cfg, dbUrl, env);
  ctx.log(`${tag}: fresh database ${db}`);
  return {
    db, dbUrl, env, seed, auth: basicAuth(seed.cc.id, seed.cc.secret),
  };
}

export async function oneNode(ctx, alg) {
  const k = await pgKeycard(ctx, `pg_${alg}`);
  const s = await startKeycard(ctx.cfg, {
    dbUrl: k.dbUrl, alg, env: k.env, name: `pg-${alg}`,
  });
  ctx.fact(`pg-idle-rss-kib-${alg}`, rssKib(s.pid));
  await checkCc(s.base, k.auth, alg);
  const procs = [{ role: 'keycard', pid: s.pid }, PG];
  await measure(ctx, `pg-cc-${alg}`, { label: `PG cc ${alg}, 1 node`, procs, loads: [ccLoad(s.base, k.auth)] });
  ctx.log(`pg-refresh-${alg}: obtaining 2 × ${ctx.cfg.REFRESH_SEED} refresh tokens`);
  const files = await refreshBatches(ctx, s.base, k.seed.web, `pg-refresh-${alg}`);
  await measure(ctx, `pg-refresh-${alg}`, {
    label: `PG refresh ${alg}, 1 node`, procs, loads: [refreshLoad(ctx, s.base, k.seed.web, files)],
  });
  await stop(s);
}

export async function twoNodes(ctx, alg) {
  const { cfg } = ctx;
  const k = await pgKeycard(ctx, `pg2_${alg}`);
  const s1 = await startKeycard(cfg, {
    dbUrl: k.dbUrl, alg, env: k.env, name: `pg2-${alg}-node1`,
  });
  const s2 = await startKeycard(cfg, {
    dbUrl: k.dbUrl, alg, env: k.env, name: `pg2-${alg}-node2`, port: cfg.KC_PORT2,
  });
  await checkCc(s1.base, k.auth, alg);
  await checkCc(s2.base, k.auth, alg);
  const half = Math.max(1, cfg.CONNECTIONS >> 1);
  // Each node's figures count the requests of its own wrk (load 0 or 1).
  const procs = [{ role: 'keycard node 1', pid: s1.pid, load: 0 }, { role: 'keycard node 2', pid: s2.pid, load: 1 }, PG];
  await measure(ctx, `pg2-cc-${alg}`, {
    label: `PG cc ${alg}, 2 nodes`, procs, threads: 1, connections: half, loads: [ccLoad(s1.base, k.auth), ccLoad(s2.base, k.auth)],
  });
  const files = await refreshBatches(ctx, s1.base, k.seed.web, `pg2-refresh-${alg}`, 2);
  await measure(ctx, `pg2-refresh-${alg}`, {
    label: `PG refresh ${alg}, 2 nodes`,
    procs,
    threads: 1,
    connections: half,
    loads: [refreshLoad(ctx, s1.base, k.seed.web, files, 0), refreshLoad(ctx, s2.base, k.seed.web, files, 1)],
  });
  await stop(s1);
  await stop(s2);
}

export async function scale(ctx) {
  const { cfg } = ctx;
  const k = await pgKeycard(ctx, 'scale');
  const refreshOnce = async (name) => {
    const s = await startKeycard(cfg, {
      dbUrl: k.dbUrl, alg: 'RS256', env: k.env, name: 'pg-scale',
    });
    const files = await refreshBatches(ctx, s.base, k.seed.web, name);
    await measure(ctx, name, {
      label: `PG refresh RS256, ${name.endsWith('full') ? 'full' : 'empty'} database`,
      procs: [{ role: 'keycard', pid: s.pid }, PG],
      loads: [refreshLoad(ctx, s.base, k.seed.web, files)],
    });
    await stop(s);
  };
  await refreshOnce('scale-refresh-empty');
  ctx.log(`scale: bulk load of ${cfg.SCALE_USERS} users, ${cfg.SCALE_CLIENTS} clients, ${cfg.SCALE_GRANTS} grants, ${cfg.SCALE_REFRESH} refresh tokens (slow)`);
  const t0 = performance.now();
  await psql(cfg, k.db, ['-v', `users=${cfg.SCALE_USERS}`, '-v', `clients=${cfg.SCALE_CLIENTS}`, '-v', `grants=${cfg.SCALE_GRANTS}`,
    '-v', `refresh=${cfg.SCALE_REFRESH}`, '-f', path.join(cfg.BENCH_DIR, 'sql/bulk_load.sql')], { timeoutMs: 7200000 });
  const loadS = (performance.now() - t0) / 1000;
  const counts = (await psql(cfg, k.db, ['-F', ' ', '-c', 'SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM clients), '
    + '(SELECT count(*) FROM grants), (SELECT count(*) FROM refresh_tokens), pg_database_size(current_database())'])).stdout.trim().split(' ').map(Number);
  ctx.fact('scale-load', {
    load_s: Math.round(loadS * 10) / 10, users: counts[0], clients: counts[1], grants: counts[2], refresh_tokens: counts[3], db_mib: Math.round(counts[4] / 1048576),
  });
  ctx.log(`scale: bulk load took ${loadS.toFixed(1)} s: ${counts.join(' ')}`);
  await refreshOnce('scale-refresh-full');
}

// PostgreSQL access for the PostgreSQL phases: psql as the admin user, and fresh databases that
// the phase's cleanup drops (KEEP_DB=1 keeps them).
import { runOk, onCleanup } from './proc.mjs';

export function psql(cfg, db, sqlArgs, opts) {
  return runOk('psql', ['-h', cfg.PG_HOST, '-p', String(cfg.PG_PORT), '-U', cfg.PG_USER, '-d', db,
    '-v', 'ON_ERROR_STOP=1', '-qAtX', ...sqlArgs], opts);
}

export const pgUrl = (cfg, db) => `postgres://${cfg.PG_USER}@${cfg.PG_HOST}:${cfg.PG_PORT}/${db}`;

export async function pgCheck(cfg) {
  await psql(cfg, cfg.PG_ADMIN_DB, ['-c', 'SELECT 1']).catch((e) => {
    throw new Error(`cannot reach PostgreSQL at ${cfg.PG_USER}@${cfg.PG_HOST}:${cfg.PG_PORT}/${cfg.PG_ADMIN_DB}: ${e.message}`);
  });
}

// A new database `kc_bench_<run>_<tag>`, dropped when the phase ends.
export async function pgFresh(cfg, log, tag) {
  const db = `kc_bench_${cfg.RUN_TS}_${tag}`.toLowerCase();
  await psql(cfg, cfg.PG_ADMIN_DB, ['-c', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
  await psql(cfg, cfg.PG_ADMIN_DB, ['-c', `CREATE DATABASE ${db}`]);
  onCleanup(async () => {
    if (cfg.KEEP_DB) { log(`KEEP_DB=1: keeping PostgreSQL database ${db}`); return; }
    await psql(cfg, cfg.PG_ADMIN_DB, ['-c', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
  });
  return db;
}

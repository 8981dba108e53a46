// Keycard under test: its CLI for seeding a database, and its server.
//
// Entry points: `kc` (one CLI command, JSON answer parsed), `seedBench` (the API, clients and
// user of the cc / refresh / login phases), `seedPhotos` (the photos API and the photos-api
// resource-server client of the demo API, introspection and gateway phases), `freshSqlite`,
// `startKeycard`, `hasGateway`.
//
// Invariant: the issuer is always KC_PORT's URL, so a second node on another port serves the
// same issuer, as behind a load balancer.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runOk, run, spawnServer, waitHttp, waitPortFree } from './proc.mjs';
import { AUDIENCE, REDIRECT, USER, PASSWORD } from './oauth.mjs';

// The first JSON object in a command's output (tolerates log lines around it), or null.
export function jsonIn(text) {
  try { return JSON.parse(text); } catch { /* log lines around it */ }
  try { return JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)); } catch { return null; }
}

// A field anywhere in a JSON value (the CLI nests some answers).
export function field(o, k) {
  if (o == null || typeof o !== 'object') return undefined;
  if (k in o) return o[k];
  for (const v of Object.values(o)) {
    const r = field(v, k);
    if (r !== undefined) return r;
  }
  return undefined;
}

export async function kc(cfg, dbUrl, args, opts = {}) {
  const r = await runOk(cfg.KEYCARD_BIN, ['--database-url', dbUrl, ...args], opts);
  return jsonIn(r.stdout);
}

async function addClient(cfg, dbUrl, name, flags, env) {
  const j = await kc(cfg, dbUrl, ['client', 'add', name, ...flags, '--json'], { env });
  const id = field(j, 'client_id');
  if (!id) throw new Error(`client add ${name} printed no client_id: ${JSON.stringify(j)}`);
  return { id, secret: field(j, 'client_secret') };
}

// `env` is for the CLI (a PostgreSQL database needs KEYCARD_MASTER_KEY: the CLI creates the
// encrypted signing keys).
export async function seedBench(cfg, dbUrl, env = {}) {
  await kc(cfg, dbUrl, ['api', 'add', AUDIENCE, '--scope', 'read', '--json'], { env });
  const cc = await addClient(cfg, dbUrl, 'bench-cc', ['--confidential', '--grant', 'client_credentials', '--audience', AUDIENCE, '--scope', 'read'], env);
  // A first-party client is confidential (OAuth 2.1 §7.3.1: a public client's identity is not
  // proven, so it cannot skip consent); it authenticates with HTTP Basic at /token.
  const web = await addClient(cfg, dbUrl, 'bench-web', ['--confidential', '--first-party', '--grant', 'authorization_code', '--grant', 'refresh_token',
    '--redirect-uri', REDIRECT, '--scope', 'openid offline_access read', '--audience', AUDIENCE], env);
  const consent = await addClient(cfg, dbUrl, 'bench-consent', ['--public', '--grant', 'authorization_code', '--redirect-uri', REDIRECT, '--scope', 'openid'], env);
  await kc(cfg, dbUrl, ['user', 'add', USER, '--password-stdin', '--json'], { input: `${PASSWORD}\n`, env });
  if (!cc.secret) throw new Error('client add bench-cc printed no client_secret');
  if (!web.secret) throw new Error('client add bench-web printed no client_secret');
  return { cc, web, consent: consent.id };
}

export const PHOTOS_SCOPES = 'photos:read orders:write';

export async function seedPhotos(cfg, dbUrl) {
  await kc(cfg, dbUrl, ['api', 'add', AUDIENCE, '--scope', PHOTOS_SCOPES, '--json']);
  const c = await addClient(cfg, dbUrl, 'photos-api', ['--confidential', '--grant', 'client_credentials', '--audience', AUDIENCE, '--resource-server', AUDIENCE, '--scope', PHOTOS_SCOPES]);
  if (!c.secret) throw new Error('client add photos-api printed no client_secret');
  return c;
}

// A new, empty SQLite database under bench/out/<name>/.
export function freshSqlite(cfg, name) {
  const dir = path.join(cfg.OUT, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return { dir, dbUrl: `sqlite://${dir}/keycard.db` };
}

// `keycard serve` on `port` (default KC_PORT), ready (first 200 on /readyz) when it returns.
export async function startKeycard(cfg, {
  dbUrl, alg, port = cfg.KC_PORT, name = 'keycard', env = {}, wait = true,
}) {
  await waitPortFree(port);
  const s = spawnServer(name, cfg.KEYCARD_BIN, ['--database-url', dbUrl, 'serve', '--addr', `127.0.0.1:${port}`,
    '--issuer', `http://127.0.0.1:${cfg.KC_PORT}`, '--signing-alg', alg], {
    env: { RUST_LOG: cfg.KEYCARD_LOG, ...env }, log: path.join(cfg.OUT, `${name}.log`),
  });
  s.base = `http://127.0.0.1:${port}`;
  if (wait) s.ready_ms = await waitHttp(`${s.base}/readyz`, s, 60000);
  return s;
}

// Whether this binary has `keycard gateway` (the gateway phases are skipped without it).
export async function hasGateway(cfg) {
  return (await run(cfg.KEYCARD_BIN, ['gateway', '--help'], { timeoutMs: 10000 })).code === 0;
}

// Keycard on SQLite: the authorization server's hot paths, each phase on a fresh database.
//
// `cc(ctx, alg)`: POST /token client_credentials (client_secret_basic, JWT access token), plus
// the idle RSS 1 s after start; for RS256, one core's openssl RSA-2048 sign rate right before
// and right after (the cc RS256 target's baseline).
// `refresh(ctx, alg)`: refresh_token rotation. Tokens come from one password login + N SSO
// authorize + code exchanges; lua/refresh.lua keeps a per-thread queue and pushes each rotated
// token back, so no token is ever replayed.
// `login(ctx)`: POST /login repeated on one open login transaction of a client that needs
// consent (303 -> /consent): one argon2id verify + one session write per request; the raw
// argon2 rate with one thread per argon2 worker is measured right before and after.
// `ready(ctx, alg)`: spawn -> first 200 on /readyz on READY_RUNS restarts of an initialised
// database; idle RSS after the first restart.
// `healthz(ctx)`: GET /healthz, the per-request floor of the HTTP stack, and right before it
// the same load on `keycard bench hello` (a bare axum hello-world in the same binary and
// runtime): the floor's baseline.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  stop, sleep, spawnServer, waitHttp,
} from '../lib/proc.mjs';
import { rssKib } from '../lib/cpu.mjs';
import { measure } from '../lib/measure.mjs';
import { around, argon2Raw, opensslSpeed } from '../lib/baselines.mjs';
import {
  freshSqlite, kc, seedBench, startKeycard,
} from '../lib/keycard.mjs';
import {
  basicAuth, ccToken, tokenCheck, ssoRefreshTokens, loginSetup, PASSWORD,
} from '../lib/oauth.mjs';

// The login phase's users and connections. The throttle counts every attempt in flight:
// one account from one address may have four (a fifth would lock it, as parallel guesses
// do), one address nineteen over all accounts. An attempt cut off when the warm-up's wrk
// exits never reaches its success and stays counted as a failure, so the measured run starts
// with the warm-up's connections already counted: eight connections over eight users keep
// both argon2 workers busy and stay within both bounds (8 + 8 < 20; 1 + 1 < 5 per account).
const LOGIN_USERS = 8;
const LOGIN_CONNECTIONS = 8;

// A fresh SQLite Keycard with the bench clients, serving with `alg`.
export async function benchKeycard(ctx, name, alg) {
  const { dir, dbUrl } = freshSqlite(ctx.cfg, name);
  const seed = await seedBench(ctx.cfg, dbUrl);
  const server = await startKeycard(ctx.cfg, { dbUrl, alg, name });
  return {
    dir, dbUrl, seed, server, auth: basicAuth(seed.cc.id, seed.cc.secret),
  };
}

// Checks that the server issues a JWT access token signed with `alg`.
export async function checkCc(base, auth, alg) {
  const t = tokenCheck(await ccToken(`${base}/token`, auth, 'read'));
  if (t.alg !== alg) throw new Error(`${base}: access token alg is ${t.alg}, expected ${alg}`);
}

export const ccLoad = (base, auth) => ({ url: `${base}/token`, env: { BENCH_BODY: 'grant_type=client_credentials&scope=read', BENCH_AUTH: auth } });

export async function cc(ctx, alg) {
  const k = await benchKeycard(ctx, `keycard-cc-${alg}`, alg);
  await sleep(1000);
  ctx.fact(`idle-rss-kib-cc-${alg}`, rssKib(k.server.pid));
  await checkCc(k.server.base, k.auth, alg);
  const rsaSign = async () => (await opensslSpeed('rsa2048', 2)).sign;
  const b = await around(rsaSign, () => measure(ctx, `cc-${alg}`, {
    label: `Keycard cc ${alg}`,
    procs: [{ role: 'keycard', pid: k.server.pid }],
    loads: [ccLoad(k.server.base, k.auth)],
  }), { skip: alg !== 'RS256' });
  if (alg === 'RS256') ctx.baseline('openssl-rsa2048-sign-next-to-cc', { mean: b.mean, before: b.before, after: b.after });
  await stop(k.server);
}

// Two batches of refresh tokens (warmup, measured run) written to files for lua/refresh.lua.
export async function refreshBatches(ctx, base, web, name, split = 1) {
  const files = { warmup: [], run: [] };
  for (const batch of ['warmup', 'run']) {
    const tokens = await ssoRefreshTokens(base, web, ctx.cfg.REFRESH_SEED * split);
    for (let i = 0; i < split; i += 1) {
      const f = ctx.raw(`${name}-tokens-${batch}${split > 1 ? `-${i + 1}` : ''}.txt`);
      writeFileSync(f, `${tokens.filter((_, j) => j % split === i).join('\n')}\n`);
      files[batch].push(f);
    }
  }
  return files;
}

export function refreshLoad(ctx, base, web, files, i = 0) {
  return {
    url: `${base}/token`,
    script: ctx.lua('refresh.lua'),
    env: { BENCH_AUTH: basicAuth(web.id, web.secret) },
    warmupEnv: { REFRESH_TOKENS_IN: files.warmup[i] },
    runEnv: { REFRESH_TOKENS_IN: files.run[i] },
  };
}

export async function refresh(ctx, alg) {
  const k = await benchKeycard(ctx, `keycard-refresh-${alg}`, alg);
  ctx.log(`refresh-${alg}: obtaining 2 × ${ctx.cfg.REFRESH_SEED} refresh tokens (SSO authorize + code exchange)`);
  const files = await refreshBatches(ctx, k.server.base, k.seed.web, `refresh-${alg}`);
  await measure(ctx, `refresh-${alg}`, {
    label: `Keycard refresh ${alg} (rotation, durable)`,
    procs: [{ role: 'keycard', pid: k.server.pid }],
    loads: [refreshLoad(ctx, k.server.base, k.seed.web, files)],
  });
  await stop(k.server);
}

export async function login(ctx) {
  const workers = ctx.cfg.ARGON2_WORKERS;
  const k = await benchKeycard(ctx, 'keycard-login', 'RS256');
  const l = await loginSetup(k.server.base, k.seed.consent);
  // The same open transaction signs in each user in turn (it stays open: the client needs
  // consent); each line of the body file names the next one.
  const bodies = [];
  for (let i = 0; i < LOGIN_USERS; i += 1) {
    const form = new URLSearchParams(l.body);
    if (i > 0) {
      const name = `bench-user-${i}`;
      await kc(ctx.cfg, k.dbUrl, ['user', 'add', name, '--password-stdin', '--json'], { input: `${PASSWORD}\n` });
      form.set('username', name);
    }
    bodies.push(form.toString());
  }
  const file = ctx.raw('login-bodies.txt');
  writeFileSync(file, `${bodies.join('\n')}\n`);
  ctx.log(`login: POST /login answers 303 -> ${l.location}; ${workers} argon2 workers; ${LOGIN_USERS} users over ${LOGIN_CONNECTIONS} connections`);
  const b = await around(() => argon2Raw(ctx.cfg, workers), () => measure(ctx, 'login', {
    label: 'Keycard password login (argon2id 19 MiB, t=2)',
    procs: [{ role: 'keycard', pid: k.server.pid }],
    loads: [{
      connections: LOGIN_CONNECTIONS,
      url: `${k.server.base}/login`,
      env: {
        BENCH_BODY_FILE: file, BENCH_COOKIE: l.cookie, BENCH_ORIGIN: k.server.base, BENCH_EXPECT: '303', BENCH_ACCEPT: 'text/html,application/xhtml+xml',
      },
    }],
  }));
  ctx.baseline('argon2', {
    hashes_per_sec: b.mean, before: b.before, after: b.after, threads: workers,
  });
  await stop(k.server);
}

export async function ready(ctx, alg) {
  const k = await benchKeycard(ctx, `keycard-ready-${alg}`, alg);
  await stop(k.server);
  const runs = [];
  for (let i = 0; i < ctx.cfg.READY_RUNS; i += 1) {
    const s = await startKeycard(ctx.cfg, { dbUrl: k.dbUrl, alg, name: `keycard-ready-${alg}` });
    runs.push(Math.round(s.ready_ms * 10) / 10);
    if (i === 0) {
      await sleep(1000);
      ctx.fact(`idle-rss-kib-restart-${alg}`, rssKib(s.pid));
    }
    await stop(s);
  }
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  ctx.fact(`ready-${alg}`, { median_ms: median, runs_ms: runs });
  ctx.log(`ready-${alg}: median ${median} ms (${runs.join(', ')})`);
}

export async function healthz(ctx) {
  const { cfg } = ctx;
  const get = { BENCH_METHOD: 'GET', BENCH_ACCEPT: '*/*' };
  const hello = spawnServer('bench-hello', cfg.KEYCARD_BIN, ['bench', 'hello', '--listen', `127.0.0.1:${cfg.DEMO_PORT}`], {
    log: path.join(cfg.OUT, 'bench-hello.log'),
  });
  const helloUrl = `http://127.0.0.1:${cfg.DEMO_PORT}/healthz`;
  await waitHttp(helloUrl, hello, 30000);
  await measure(ctx, 'hello', {
    label: 'bare axum hello-world GET /healthz',
    procs: [{ role: 'axum hello', pid: hello.pid }],
    loads: [{ url: helloUrl, env: get }],
  });
  await stop(hello);
  const k = await benchKeycard(ctx, 'keycard-healthz', 'ES256');
  await measure(ctx, 'healthz', {
    label: 'Keycard GET /healthz',
    procs: [{ role: 'keycard', pid: k.server.pid }],
    loads: [{ url: `${k.server.base}/healthz`, env: get }],
  });
  await stop(k.server);
}

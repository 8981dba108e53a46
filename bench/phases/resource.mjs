// Resource servers and the machine's crypto baselines.
//
// `openssl(ctx)`: one core's RSA-2048 and P-256 sign / verify rates (3 s each) at the start.
// `validate(ctx)`: `keycard bench validate` (full validate() of a signed access token, one core)
// for RS256 and ES256, each next to openssl's verify rate for the same key (before and after).
// `demoApi(ctx)`: `keycard demo-api` in front of a Keycard with the photos API: the low-load
// (-t1 -c1) p50 of /photos (local JWT validation) minus /public/photos (none), then both at the
// normal load.
// `introspect(ctx)`: POST /introspect as the photos-api resource server, each answer 200 and
// `"active":true`; one token repeated, then INTROSPECT_TOKENS distinct tokens cycled through.
// A cache that holds more than INTROSPECT_TOKENS tokens turns the distinct figure into a cached
// one: raise the knob above the cache's capacity.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  spawnServer, waitHttp, stop, waitPortFree, runOk,
} from '../lib/proc.mjs';
import { measure } from '../lib/measure.mjs';
import { around, opensslSpeed } from '../lib/baselines.mjs';
import {
  freshSqlite, seedPhotos, startKeycard, jsonIn, PHOTOS_SCOPES,
} from '../lib/keycard.mjs';
import {
  AUDIENCE, basicAuth, ccToken, issueTokens, tokenCheck,
} from '../lib/oauth.mjs';

export async function openssl(ctx) {
  const rsa = await opensslSpeed('rsa2048', 3);
  const ec = await opensslSpeed('ecdsap256', 3);
  ctx.baseline('openssl', {
    rsa2048_sign_per_s: rsa.sign, rsa2048_verify_per_s: rsa.verify, ecdsap256_sign_per_s: ec.sign, ecdsap256_verify_per_s: ec.verify,
  });
  ctx.log(`openssl: rsa2048 sign/s ${rsa.sign} verify/s ${rsa.verify}, ecdsap256 sign/s ${ec.sign} verify/s ${ec.verify}`);
}

export async function validate(ctx) {
  for (const alg of ['RS256', 'ES256']) {
    const kind = alg === 'RS256' ? 'rsa2048' : 'ecdsap256';
    const b = await around(async () => (await opensslSpeed(kind, 2)).verify, async () => {
      const r = await runOk(ctx.cfg.KEYCARD_BIN, ['bench', 'validate', '--seconds', String(ctx.cfg.VALIDATE_SECONDS), '--alg', alg, '--json']);
      const j = jsonIn(r.stdout);
      if (!(j?.verifications_per_sec > 0)) throw new Error(`keycard bench validate: no verifications_per_sec in ${r.stdout.slice(0, 300)}`);
      return j.verifications_per_sec;
    });
    ctx.baseline(`validate-${alg}`, {
      verifications_per_sec: b.result, openssl_verify_per_s: b.mean, openssl_verify_before: b.before, openssl_verify_after: b.after,
    });
    ctx.log(`validate ${alg}: ${Math.round(b.result)} validations/s (openssl verify next to it: ${Math.round(b.mean)}/s)`);
  }
}

// A fresh SQLite Keycard (RS256 unless told) with the photos API, the photos-api client and one
// access token for it.
export async function photosKeycard(ctx, name, alg = 'RS256') {
  const { dbUrl } = freshSqlite(ctx.cfg, name);
  const client = await seedPhotos(ctx.cfg, dbUrl);
  const server = await startKeycard(ctx.cfg, { dbUrl, alg, name });
  const auth = basicAuth(client.id, client.secret);
  const body = await ccToken(`${server.base}/token`, auth, PHOTOS_SCOPES);
  const t = tokenCheck(body);
  ctx.log(`${name}: photos-api token scope '${t.scope}', aud ${t.aud}`);
  return {
    server, client, auth, token: body.access_token, dbUrl,
  };
}

// `keycard demo-api` on DEMO_PORT, introspecting at `kcBase` as `client`.
export async function startDemoApi(ctx, kcBase, client) {
  const { cfg } = ctx;
  await waitPortFree(cfg.DEMO_PORT);
  const s = spawnServer('demo-api', cfg.KEYCARD_BIN, ['demo-api', '--addr', `127.0.0.1:${cfg.DEMO_PORT}`, '--issuer', kcBase, '--audience', AUDIENCE], {
    env: { KEYCARD_DEMO_API_CLIENT_ID: client.id, KEYCARD_DEMO_API_CLIENT_SECRET: client.secret, RUST_LOG: cfg.KEYCARD_LOG },
    log: path.join(cfg.OUT, 'demo-api.log'),
  });
  s.base = `http://127.0.0.1:${cfg.DEMO_PORT}`;
  await waitHttp(`${s.base}/healthz`, s, 30000);
  return s;
}

// Status of one request; `expect` turns a different answer into an exception.
export async function expectStatus(url, expect, { method = 'GET', headers = {}, body } = {}) {
  const r = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(10000) });
  const text = await r.text();
  if (expect != null && r.status !== expect) throw new Error(`${method} ${url} answered ${r.status}, expected ${expect}: ${text.slice(0, 300)}`);
  return r.status;
}

export async function demoApi(ctx) {
  const k = await photosKeycard(ctx, 'keycard-demo');
  const d = await startDemoApi(ctx, k.server.base, k.client);
  const bearer = `Bearer ${k.token}`;
  await expectStatus(`${d.base}/public/photos`, 200);
  await expectStatus(`${d.base}/photos`, 401);
  await expectStatus(`${d.base}/photos`, 200, { headers: { authorization: bearer } });
  const orders = await expectStatus(`${d.base}/orders`, null, { method: 'POST', headers: { authorization: bearer } });
  if (orders !== 200) ctx.problem(`demo-api POST /orders (introspection) answered ${orders}`);
  ctx.log(`demo-api: /public/photos 200, /photos 401 without a token and 200 with, /orders ${orders}`);
  const routes = { public: [`${d.base}/public/photos`, ''], photos: [`${d.base}/photos`, bearer] };
  const procs = [{ role: 'demo-api', pid: d.pid }];
  for (const [r, [url, auth]] of Object.entries(routes)) {
    await measure(ctx, `demo-low-${r}`, {
      label: `demo API ${r === 'public' ? '/public/photos' : '/photos'} at -t1 -c1`,
      procs, threads: 1, connections: 1, warmup: 1, seconds: ctx.cfg.LOWLOAD_DURATION,
      loads: [{ url, env: { BENCH_METHOD: 'GET', BENCH_AUTH: auth } }],
    });
  }
  for (const [r, [url, auth]] of Object.entries(routes)) {
    await measure(ctx, `demo-${r}`, {
      label: `demo API ${r === 'public' ? '/public/photos (no validation)' : '/photos (local validation, RS256)'}`,
      procs, loads: [{ url, env: { BENCH_METHOD: 'GET', BENCH_AUTH: auth } }],
    });
  }
  await stop(d);
  await stop(k.server);
}

export async function introspect(ctx) {
  const k = await photosKeycard(ctx, 'keycard-introspect');
  const url = `${k.server.base}/introspect`;
  const sample = await fetch(url, {
    method: 'POST', headers: { authorization: k.auth, 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${k.token}`,
  }).then((r) => r.text());
  if (!/"active"\s*:\s*true/.test(sample)) throw new Error(`POST /introspect did not say active:true: ${sample.slice(0, 300)}`);
  const env = { BENCH_AUTH: k.auth, BENCH_EXPECT_MATCH: '"active"%s*:%s*true' };
  const procs = [{ role: 'keycard', pid: k.server.pid }];
  await measure(ctx, 'introspect', {
    label: 'Keycard /introspect, one token (JWT)', procs, loads: [{ url, env: { ...env, BENCH_BODY: `token=${k.token}` } }],
  });
  const n = ctx.cfg.INTROSPECT_TOKENS;
  ctx.log(`introspect: issuing ${n} tokens for the distinct-token run`);
  const tokens = await issueTokens(`${k.server.base}/token`, k.auth, PHOTOS_SCOPES, n);
  const file = ctx.raw('introspect-bodies.txt');
  writeFileSync(file, `${tokens.map((t) => `token=${t}`).join('\n')}\n`);
  await measure(ctx, 'introspect-distinct', {
    label: `Keycard /introspect, ${n} distinct tokens`, procs, loads: [{ url, env: { ...env, BENCH_BODY_FILE: file } }],
  });
  await stop(k.server);
}

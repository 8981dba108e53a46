// The peer: node-oidc-provider v9 (bench/node/server.mjs), one node process, in-memory adapter.
//
// `cc(ctx, alg)`: client_credentials with JWT access tokens (resource indicator).
// `introspect(ctx)`: RFC 7662 introspection at /token/introspection, repeated-token and
// distinct-token. node-oidc-provider refuses to introspect JWT access tokens ("Structured JWT
// Tokens cannot be introspected"), so this phase runs it with opaque access tokens
// (TOKEN_FORMAT=opaque, kept in its in-memory adapter). That adapter is an LRU of 1,000
// entries, so its distinct-token set is at most 400 tokens (each token is one entry, plus the
// client's own).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnServer, waitHttp, stop, waitPortFree } from '../lib/proc.mjs';
import { rssKib } from '../lib/cpu.mjs';
import { measure } from '../lib/measure.mjs';
import {
  basicAuth, ccToken, issueTokens, tokenCheck,
} from '../lib/oauth.mjs';

const CLIENT_ID = 'bench-cc';
const CLIENT_SECRET = 'bench-cc-secret-0123456789abcdef0123456789abcdef';
export const PEER_DISTINCT_MAX = 400;

async function startPeer(ctx, { alg, format, name }) {
  const { cfg } = ctx;
  await waitPortFree(cfg.NODE_PORT);
  const s = spawnServer(name, 'node', ['server.mjs'], {
    cwd: path.join(cfg.BENCH_DIR, 'node'),
    env: {
      PORT: String(cfg.NODE_PORT), ALG: alg, TOKEN_FORMAT: format, CLIENT_ID, CLIENT_SECRET,
    },
    log: path.join(cfg.OUT, `${name}.log`),
  });
  s.base = `http://127.0.0.1:${cfg.NODE_PORT}`;
  await waitHttp(`${s.base}/.well-known/openid-configuration`, s, 30000);
  return s;
}

export async function cc(ctx, alg) {
  const s = await startPeer(ctx, { alg, format: 'jwt', name: `peer-${alg}` });
  const auth = basicAuth(CLIENT_ID, CLIENT_SECRET);
  const t = tokenCheck(await ccToken(`${s.base}/token`, auth, 'read'));
  if (t.alg !== alg) throw new Error(`peer: access token alg ${t.alg}, expected ${alg}`);
  ctx.fact(`peer-idle-rss-kib-${alg}`, rssKib(s.pid));
  await measure(ctx, `peer-cc-${alg}`, {
    label: `node-oidc-provider cc ${alg}`,
    procs: [{ role: 'node-oidc-provider', pid: s.pid }],
    loads: [{ url: `${s.base}/token`, env: { BENCH_BODY: 'grant_type=client_credentials&scope=read', BENCH_AUTH: auth } }],
  });
  await stop(s);
}

export async function introspect(ctx) {
  const s = await startPeer(ctx, { alg: 'RS256', format: 'opaque', name: 'peer-introspect' });
  const auth = basicAuth(CLIENT_ID, CLIENT_SECRET);
  const url = `${s.base}/token/introspection`;
  const n = Math.min(ctx.cfg.INTROSPECT_TOKENS, PEER_DISTINCT_MAX);
  const tokens = await issueTokens(`${s.base}/token`, auth, 'read', n);
  const sample = await fetch(url, {
    method: 'POST', headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${tokens[0]}`,
  }).then((r) => r.text());
  if (!/"active"\s*:\s*true/.test(sample)) throw new Error(`peer introspection did not say active:true: ${sample.slice(0, 300)}`);
  const env = { BENCH_AUTH: auth, BENCH_EXPECT_MATCH: '"active"%s*:%s*true' };
  await measure(ctx, 'peer-introspect', {
    label: 'node-oidc-provider introspection, one token (opaque)',
    procs: [{ role: 'node-oidc-provider', pid: s.pid }],
    loads: [{ url, env: { ...env, BENCH_BODY: `token=${tokens[0]}` } }],
  });
  const file = ctx.raw('peer-introspect-bodies.txt');
  writeFileSync(file, `${tokens.map((t) => `token=${t}`).join('\n')}\n`);
  await measure(ctx, 'peer-introspect-distinct', {
    label: `node-oidc-provider introspection, ${n} distinct tokens`,
    procs: [{ role: 'node-oidc-provider', pid: s.pid }],
    loads: [{ url, env: { ...env, BENCH_BODY_FILE: file } }],
  });
  await stop(s);
}

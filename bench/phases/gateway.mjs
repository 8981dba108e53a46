// Gateway phases: what it costs to put a proxy, with or without a token check, in front of an API.
// The upstream is always `keycard demo-api`'s GET /public/photos (no validation of its own),
// behind a SQLite Keycard (RS256) with the photos API; every process involved is watched.
//
// `direct`: wrk -> demo-api. `nginxProxy`: wrk -> nginx (nginx-light, upstream keep-alive on)
// -> demo-api, the floor for proxying. `nginxAuthRequest`: the same plus `auth_request` to
// Keycard's POST /introspect (the bearer token moved into the form body with `proxy_set_body`),
// the classic way to put a token check in front of an API. Stock nginx only looks at the
// subrequest's status and /introspect answers 200 with `"active":false` for a bad token, so this
// measures the cost of the round trip, not a correct denial (that needs njs or an endpoint that
// answers 401). `caddyProxy`: Caddy's reverse_proxy, its floor. `caddyForwardAuth`: Caddy's
// `forward_auth` sends a GET with the client's headers and no body, which RFC 7662's POST cannot
// take, so it runs only when FORWARD_AUTH_URL names an endpoint that answers 2xx / 401 on the
// bearer header (the gateway's). `keycardGateway`: `keycard gateway` with routes `none`,
// `local` (RS256, ES256) and `introspect` (uncached, cached); skipped when the binary has no
// `gateway` command. Its configuration uses the keys of crates/keycard-gateway/gateway.example.toml
// (the introspection cache is the top-level `introspection_cache_ttl_secs`).
//
// Each phase also runs at -t1 -c1 (LOWLOAD_DURATION) for the added p50 latency over direct.
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import {
  spawnServer, waitHttp, stop, waitPortFree, run,
} from '../lib/proc.mjs';
import { measure } from '../lib/measure.mjs';
import { hasGateway } from '../lib/keycard.mjs';
import { photosKeycard, startDemoApi, expectStatus } from './resource.mjs';

async function fixture(ctx, name, alg = 'RS256') {
  const k = await photosKeycard(ctx, `keycard-${name}`, alg);
  const d = await startDemoApi(ctx, k.server.base, k.client);
  await expectStatus(`${d.base}/public/photos`, 200);
  return { k, d, bearer: `Bearer ${k.token}` };
}

// The normal-load run and the low-load (-t1 -c1) run of one front.
async function measureFront(ctx, name, label, { url, procs, auth = '' }) {
  const loads = [{ url, env: { BENCH_METHOD: 'GET', BENCH_AUTH: auth } }];
  await measure(ctx, name, { label, procs, loads });
  await measure(ctx, `${name}-low`, {
    label: `${label} at -t1 -c1`, procs, loads, threads: 1, connections: 1, warmup: 1, seconds: ctx.cfg.LOWLOAD_DURATION,
  });
}

export async function direct(ctx) {
  const f = await fixture(ctx, 'gw-direct');
  await measureFront(ctx, 'gw-direct', 'upstream direct (demo-api /public/photos)', {
    url: `${f.d.base}/public/photos`, procs: [{ role: 'demo-api', pid: f.d.pid }],
  });
}

function nginxConf(ctx, dir, { authRequest, kcPort, basic }) {
  const { cfg } = ctx;
  const auth = authRequest ? `
    location = /_introspect {
      internal;
      proxy_pass http://keycard/introspect;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_method POST;
      proxy_pass_request_body off;
      proxy_set_header Authorization "${basic}";
      proxy_set_header Content-Type application/x-www-form-urlencoded;
      proxy_set_body "token=$bearer_token";
    }` : '';
  return `# Written by bench/phases/gateway.mjs.
daemon off;
master_process on;
worker_processes ${process.env.NGINX_WORKERS || 'auto'};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  upstream api { server 127.0.0.1:${cfg.DEMO_PORT}; keepalive 64; }
  upstream keycard { server 127.0.0.1:${kcPort}; keepalive 64; }
  map $http_authorization $bearer_token { default ""; "~^Bearer\\s+(?<tok>\\S+)$" $tok; }
  server {
    listen 127.0.0.1:${cfg.NGINX_PORT};
    location / {
      ${authRequest ? 'auth_request /_introspect;' : ''}
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }${auth}
  }
}
`;
}

async function startNginx(ctx, name, opts) {
  const dir = path.join(ctx.cfg.OUT, name);
  mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  // Workers run as an unprivileged user when the driver is root; they may need the temp dirs.
  chmodSync(path.join(dir, 'tmp'), 0o777);
  writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(ctx, dir, opts));
  const t = await run('nginx', ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')]);
  if (t.code !== 0) throw new Error(`nginx -t: ${t.stderr.slice(0, 400)}`);
  await waitPortFree(ctx.cfg.NGINX_PORT);
  const s = spawnServer(name, 'nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { log: path.join(ctx.cfg.OUT, `${name}.log`) });
  s.base = `http://127.0.0.1:${ctx.cfg.NGINX_PORT}`;
  return s;
}

async function needCommand(ctx, cmd, pkg) {
  if ((await run('sh', ['-c', `command -v ${cmd}`])).code !== 0) ctx.skip(`${cmd} not found (bench/run.sh installs ${pkg})`);
}

export async function nginxProxy(ctx) {
  await needCommand(ctx, 'nginx', 'nginx-light');
  const f = await fixture(ctx, 'gw-nginx-proxy');
  const n = await startNginx(ctx, 'nginx-proxy', { authRequest: false, kcPort: ctx.cfg.KC_PORT });
  await waitHttp(`${n.base}/public/photos`, n, 10000);
  await measureFront(ctx, 'gw-nginx-proxy', 'nginx proxy -> demo-api', {
    url: `${n.base}/public/photos`, procs: [{ role: 'nginx', pid: n.pid }, { role: 'demo-api', pid: f.d.pid }],
  });
  await stop(n);
}

export async function nginxAuthRequest(ctx) {
  await needCommand(ctx, 'nginx', 'nginx-light');
  const f = await fixture(ctx, 'gw-nginx-auth');
  const n = await startNginx(ctx, 'nginx-auth', { authRequest: true, kcPort: ctx.cfg.KC_PORT, basic: f.k.auth });
  const url = `${n.base}/public/photos`;
  const t0 = performance.now();
  while ((await expectStatus(url, null, { headers: { authorization: f.bearer } }).catch(() => 0)) !== 200) {
    if (n.exit || performance.now() - t0 > 10000) throw new Error(`nginx auth_request: ${url} not 200 with a valid token (see ${n.log})`);
    await new Promise((r) => { setTimeout(r, 20); });
  }
  // Without a token the subrequest sends `token=` and /introspect refuses it: proof that the
  // check reaches Keycard.
  const noToken = await expectStatus(url, null);
  if (noToken === 200) throw new Error('nginx auth_request: a request without a token was let through: the subrequest does not reach /introspect');
  ctx.log(`nginx auth_request: 200 with a token, ${noToken} without`);
  await measureFront(ctx, 'gw-nginx-auth-request', 'nginx auth_request -> Keycard /introspect, -> demo-api', {
    url, auth: f.bearer, procs: [{ role: 'nginx', pid: n.pid }, { role: 'keycard', pid: f.k.server.pid }, { role: 'demo-api', pid: f.d.pid }],
  });
  await stop(n);
}

async function startCaddy(ctx, name, site) {
  const dir = path.join(ctx.cfg.OUT, name);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'Caddyfile');
  writeFileSync(file, `# Written by bench/phases/gateway.mjs.
{
  admin off
  auto_https off
}
http://127.0.0.1:${ctx.cfg.CADDY_PORT} {
${site}
}
`);
  await waitPortFree(ctx.cfg.CADDY_PORT);
  const s = spawnServer(name, 'caddy', ['run', '--config', file, '--adapter', 'caddyfile'], {
    env: { XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir, HOME: dir }, log: path.join(ctx.cfg.OUT, `${name}.log`),
  });
  s.base = `http://127.0.0.1:${ctx.cfg.CADDY_PORT}`;
  return s;
}

export async function caddyProxy(ctx) {
  await needCommand(ctx, 'caddy', 'caddy');
  const f = await fixture(ctx, 'gw-caddy-proxy');
  const c = await startCaddy(ctx, 'caddy-proxy', `  reverse_proxy 127.0.0.1:${ctx.cfg.DEMO_PORT}`);
  await waitHttp(`${c.base}/public/photos`, c, 10000);
  await measureFront(ctx, 'gw-caddy-proxy', 'Caddy reverse_proxy -> demo-api', {
    url: `${c.base}/public/photos`, procs: [{ role: 'caddy', pid: c.pid }, { role: 'demo-api', pid: f.d.pid }],
  });
  await stop(c);
}

export async function caddyForwardAuth(ctx) {
  const target = process.env.FORWARD_AUTH_URL;
  if (!target) {
    ctx.skip('Caddy forward_auth sends a GET with the bearer header and no body; Keycard\'s /introspect (RFC 7662) wants a POST form. '
      + 'Set FORWARD_AUTH_URL to an endpoint that answers 2xx / 401 on the bearer header (the gateway\'s) to run it');
  }
  await needCommand(ctx, 'caddy', 'caddy');
  const f = await fixture(ctx, 'gw-caddy-forward-auth');
  const u = new URL(target);
  const c = await startCaddy(ctx, 'caddy-forward-auth', `  forward_auth ${u.host} {
    uri ${u.pathname}${u.search}
  }
  reverse_proxy 127.0.0.1:${ctx.cfg.DEMO_PORT}`);
  await waitHttp(`${c.base}/healthz`, c, 10000).catch(() => {});
  await expectStatus(`${c.base}/public/photos`, 200, { headers: { authorization: f.bearer } });
  await measureFront(ctx, 'gw-caddy-forward-auth', `Caddy forward_auth (${target}) -> demo-api`, {
    url: `${c.base}/public/photos`, auth: f.bearer, procs: [{ role: 'caddy', pid: c.pid }, { role: 'keycard', pid: f.k.server.pid }, { role: 'demo-api', pid: f.d.pid }],
  });
  await stop(c);
}

// The gateway modes measured: [name, route auth, Keycard signing alg, cache].
export const GATEWAY_MODES = [
  ['none', 'none', 'RS256', false],
  ['local-RS256', 'local', 'RS256', false],
  ['local-ES256', 'local', 'ES256', false],
  ['introspect', 'introspect', 'RS256', false],
  ['introspect-cached', 'introspect', 'RS256', true],
];

function gatewayToml(ctx, f, auth, cache) {
  return `# Written by bench/phases/gateway.mjs.
listen = "127.0.0.1:${ctx.cfg.GATEWAY_PORT}"
issuer = "${f.k.server.base}"
audience = "https://api.example.com"
client_id = "${f.k.client.id}"
client_secret_env = "KEYCARD_GATEWAY_CLIENT_SECRET"
${cache ? 'introspection_cache_ttl_secs = 60\n' : ''}
[[route]]
path = "/public/photos"
methods = ["GET"]
upstream = "http://127.0.0.1:${ctx.cfg.DEMO_PORT}"
auth = "${auth}"
${auth === 'none' ? '' : 'scopes = ["photos:read"]\n'}`;
}

export async function keycardGateway(ctx) {
  if (!(await hasGateway(ctx.cfg))) {
    ctx.skip(`'${ctx.cfg.KEYCARD_BIN} gateway --help' failed: this binary has no gateway yet; `
      + `the gateway phases (${GATEWAY_MODES.map((m) => m[0]).join(', ')}) are skipped`);
  }
  for (const [mode, auth, alg, cache] of GATEWAY_MODES) {
    const f = await fixture(ctx, `gw-keycard-${mode}`, alg);
    const dir = path.join(ctx.cfg.OUT, `gateway-${mode}`);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'gateway.toml');
    writeFileSync(file, gatewayToml(ctx, f, auth, cache));
    await waitPortFree(ctx.cfg.GATEWAY_PORT);
    const g = spawnServer(`gateway-${mode}`, ctx.cfg.KEYCARD_BIN, ['gateway', '--config', file], {
      env: { KEYCARD_GATEWAY_CLIENT_SECRET: f.k.client.secret, RUST_LOG: ctx.cfg.KEYCARD_LOG }, log: path.join(ctx.cfg.OUT, `gateway-${mode}.log`),
    });
    const base = `http://127.0.0.1:${ctx.cfg.GATEWAY_PORT}`;
    await waitHttp(`${base}/healthz`, g, 30000);
    await expectStatus(`${base}/public/photos`, 200, { headers: { authorization: f.bearer } });
    if (auth !== 'none') await expectStatus(`${base}/public/photos`, 401);
    await measureFront(ctx, `gw-keycard-${mode}`, `keycard gateway (${mode}) -> demo-api`, {
      url: `${base}/public/photos`,
      auth: f.bearer,
      procs: [{ role: 'gateway', pid: g.pid }, { role: 'keycard', pid: f.k.server.pid }, { role: 'demo-api', pid: f.d.pid }],
    });
    await stop(g);
    await stop(f.d);
    await stop(f.k.server);
  }
}

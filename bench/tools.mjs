#!/usr/bin/env node
// Helpers for bench/run.sh. Node >= 20, built-in modules only (no npm install
// needed). Subcommands:
//
//   parse-wrk FILE                      wrk --latency output -> JSON
//   rss-stats FILE                      file of `ps -o rss=` samples (KiB) -> JSON
//   token-check FILE                    token response JSON: access_token is a JWT? -> JSON
//   sso-tokens  BASE CLIENT REDIRECT SCOPE USER PASS COUNT OUTFILE
//                                       log in once through /authorize + /login, then
//                                       run COUNT authorize(SSO)+code-exchange rounds and
//                                       write one refresh_token per line to OUTFILE
//   login-setup BASE CLIENT REDIRECT SCOPE USER PASS
//                                       open a login transaction for a consent-requiring
//                                       client, POST the login once, print JSON
//                                       {txn, csrf, cookie, status, location}
//   ready URL TIMEOUT_MS LOGFILE -- CMD ARGS...
//                                       spawn CMD, poll URL every ~2 ms until 200, print
//                                       {"ready_ms": N, "pid": P}; leaves the child running
//   sum-wrk A.json B.json               two parse-wrk results of simultaneous runs (two
//                                       nodes) -> one JSON: req/s and counts added,
//                                       latency percentiles = the worse of the two
//   report OUTDIR                       assemble OUTDIR/raw/*.json -> OUTDIR/results.json
//                                       and print the summary table
import { readFileSync, writeFileSync, readdirSync, existsSync, openSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

const die = (msg) => {
  process.stderr.write(`tools.mjs: ${msg}\n`);
  process.exit(1);
};

// ---------------------------------------------------------------- wrk output
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
    latency_ms: {}, bench_ok: null, bench_errors: null, bench_error_statuses: '',
  };
  let m;
  if ((m = /Requests\/sec:\s+([\d.]+)/.exec(text))) r.rps = Number.parseFloat(m[1]);
  if ((m = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(text))) {
    r.requests = Number.parseInt(m[1], 10);
    r.duration_s = toMs(`${m[2]}${m[3]}`) / 1000;
  }
  if ((m = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text))) r.non_2xx_3xx = Number.parseInt(m[1], 10);
  if ((m = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text))) {
    r.socket_errors = {
      connect: +m[1], read: +m[2], write: +m[3], timeout: +m[4],
    };
  }
  if ((m = /^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(text))) {
    r.latency_ms.avg = toMs(m[1]);
    r.latency_ms.stdev = toMs(m[2]);
    r.latency_ms.max = toMs(m[3]);
  }
  for (const p of ['50', '75', '90', '99']) {
    const re = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm');
    if ((m = re.exec(text))) r.latency_ms[`p${p}`] = toMs(m[1]);
  }
  if ((m = /bench_ok:\s+(\d+)/.exec(text))) r.bench_ok = +m[1];
  if ((m = /bench_errors:\s+(\d+)/.exec(text))) r.bench_errors = +m[1];
  if ((m = /bench_error_statuses:[ \t]*(\S*)/.exec(text))) r.bench_error_statuses = m[1];
  if ((m = /bench_queue_empty:\s+(\d+)/.exec(text))) r.bench_queue_empty = +m[1];
  if ((m = /bench_live_tokens:\s+(\d+)/.exec(text))) r.bench_live_tokens = +m[1];
  // exact percentiles (microseconds) printed by the lua scripts' done(): wrk's
  // own text rounds to 2 digits in a unit (e.g. 1.23ms), too coarse for the
  // demo API's overhead
  if ((m = /bench_latency_us: p50=(\d+) p90=(\d+) p99=(\d+)/.exec(text))) {
    r.latency_ms_wrk_text = { ...r.latency_ms };
    r.latency_ms.p50 = +m[1] / 1000;
    r.latency_ms.p90 = +m[2] / 1000;
    r.latency_ms.p99 = +m[3] / 1000;
    r.latency_us = { p50: +m[1], p90: +m[2], p99: +m[3] };
  }
  const se = r.socket_errors;
  // errors = responses with an unexpected status (counted by the lua script,
  // or wrk's own non-2xx/3xx count when the script has no counter) + socket
  // errors other than the connections wrk cuts at the end of the run.
  r.errors = (r.bench_errors ?? r.non_2xx_3xx) + se.connect + se.write + se.timeout;
  r.ok_rps = (r.bench_ok != null && r.duration_s) ? r.bench_ok / r.duration_s : r.rps;
  return r;
}

function sumWrk(a, b) {
  const add = (x, y) => (x == null || y == null ? null : x + y);
  const worse = (k) => {
    const x = a.latency_ms?.[k]; const y = b.latency_ms?.[k];
    return x == null || y == null ? null : Math.max(x, y);
  };
  return {
    rps: add(a.rps, b.rps),
    ok_rps: add(a.ok_rps, b.ok_rps),
    requests: add(a.requests, b.requests),
    duration_s: Math.max(a.duration_s ?? 0, b.duration_s ?? 0),
    errors: add(a.errors, b.errors),
    bench_ok: add(a.bench_ok, b.bench_ok),
    bench_errors: add(a.bench_errors, b.bench_errors),
    bench_error_statuses: [a.bench_error_statuses, b.bench_error_statuses].filter(Boolean).join(','),
    latency_ms: {
      p50: worse('p50'), p90: worse('p90'), p99: worse('p99'), max: worse('max'),
    },
    note: 'two wrk processes at once, one per node; req/s added, latency = worse of the two',
    nodes: [a, b],
  };
}

// ---------------------------------------------------------------- RSS samples
export function rssStats(text) {
  const v = text.split(/\s+/).map((x) => Number.parseInt(x, 10)).filter((x) => Number.isFinite(x) && x > 0);
  if (!v.length) return { samples: 0, max_kib: null, avg_kib: null };
  return {
    samples: v.length,
    max_kib: Math.max(...v),
    avg_kib: Math.round(v.reduce((a, b) => a + b, 0) / v.length),
    last_kib: v[v.length - 1],
  };
}

// ---------------------------------------------------------------- JWT check
function b64urlJson(s) {
  return JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
}

function tokenCheck(text) {
  let body;
  try { body = JSON.parse(text); } catch { return { ok: false, reason: `not JSON: ${text.slice(0, 200)}` }; }
  const at = body.access_token;
  if (typeof at !== 'string') return { ok: false, reason: `no access_token: ${text.slice(0, 200)}` };
  const parts = at.split('.');
  if (parts.length !== 3) return { ok: false, reason: `access_token is not a JWS (${parts.length} parts)` };
  try {
    const header = b64urlJson(parts[0]);
    const claims = b64urlJson(parts[1]);
    return {
      ok: true, alg: header.alg, typ: header.typ, aud: claims.aud, scope: claims.scope,
      token_type: body.token_type, length: at.length,
    };
  } catch (e) {
    return { ok: false, reason: `cannot decode JWT: ${e.message}` };
  }
}

// ---------------------------------------------------------------- HTTP client bits
class Jar {
  constructor() { this.c = new Map(); }

  take(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(';');
      const i = pair.indexOf('=');
      if (i > 0) {
        const name = pair.slice(0, i).trim();
        const value = pair.slice(i + 1).trim();
        if (/max-age=0\b/i.test(sc) || value === '') this.c.delete(name); else this.c.set(name, value);
      }
    }
  }

  header() { return [...this.c].map(([k, v]) => `${k}=${v}`).join('; '); }
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

function htmlDecode(s) {
  return s.replace(/&quot;/g, '"').replace(/&#39;|&#x27;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&#x2F;|&#47;/g, '/').replace(/&amp;/g, '&');
}

function hiddenInput(html, name) {
  const re = new RegExp(`<input\\b[^>]*\\bname=["']${name}["'][^>]*>`, 'i');
  const tag = re.exec(html);
  if (!tag) return null;
  const v = /\bvalue=["']([^"']*)["']/i.exec(tag[0]);
  return v ? htmlDecode(v[1]) : null;
}

async function req(jar, method, url, { form, origin } = {}) {
  const headers = { accept: 'text/html,application/json' };
  const ck = jar.header();
  if (ck) headers.cookie = ck;
  if (origin) headers.origin = origin;
  let body;
  if (form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  }
  const res = await fetch(url, {
    method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(15000),
  });
  jar.take(res);
  const text = await res.text();
  return { status: res.status, location: res.headers.get('location'), text };
}

function authorizeUrl(base, clientId, redirectUri, scope, state, challenge) {
  const u = new URL('/authorize', base);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  // API scopes (anything but the OpenID Connect ones) need the API named as the audience.
  const oidc = new Set(['openid', 'profile', 'email', 'offline_access']);
  if (scope.split(' ').some((s) => s && !oidc.has(s))) {
    u.searchParams.set('audience', process.env.BENCH_AUDIENCE || 'https://api.example.com');
  }
  return u.toString();
}

// GET /authorize (no session) -> 303 /login?txn=; GET /login -> form fields.
async function openLogin(jar, base, clientId, redirectUri, scope) {
  const p = pkce();
  const state = randomBytes(8).toString('hex');
  const a = await req(jar, 'GET', authorizeUrl(base, clientId, redirectUri, scope, state, p.challenge));
  if (a.status !== 303 && a.status !== 302) {
    die(`GET /authorize for ${clientId}: expected 303 to /login, got ${a.status}: ${a.text.slice(0, 300)}`);
  }
  const loginUrl = new URL(a.location, base);
  if (!loginUrl.pathname.endsWith('/login')) die(`GET /authorize redirected to ${a.location}, expected /login?txn=...`);
  const l = await req(jar, 'GET', loginUrl.toString());
  if (l.status !== 200) die(`GET ${loginUrl}: status ${l.status}: ${l.text.slice(0, 300)}`);
  const txn = hiddenInput(l.text, 'txn') ?? loginUrl.searchParams.get('txn');
  const csrf = hiddenInput(l.text, 'csrf');
  if (!txn) die('login page: no hidden input "txn"');
  if (!csrf) die('login page: no hidden input "csrf"');
  return { pkce: p, state, txn, csrf };
}

function codeFrom(location, redirectUri, state) {
  if (!location) return { error: 'no Location header' };
  const u = new URL(location, redirectUri);
  const want = new URL(redirectUri);
  if (u.origin !== want.origin || u.pathname !== want.pathname) {
    return { error: `redirected to ${location}, not to redirect_uri` };
  }
  if (u.searchParams.get('error')) return { error: `authorization error: ${location}` };
  if (state && u.searchParams.get('state') !== state) return { error: `state mismatch in ${location}` };
  const code = u.searchParams.get('code');
  return code ? { code } : { error: `no code in ${location}` };
}

async function exchange(base, clientId, redirectUri, code, verifier) {
  const res = await fetch(new URL('/token', base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: clientId, code_verifier: verifier,
    }).toString(),
    signal: AbortSignal.timeout(15000),
  });
  const text = await res.text();
  if (res.status !== 200) die(`POST /token (authorization_code): ${res.status}: ${text.slice(0, 300)}`);
  const j = JSON.parse(text);
  if (!j.refresh_token) die(`POST /token (authorization_code): no refresh_token in ${text.slice(0, 300)}`);
  return j;
}

async function ssoTokens([base, clientId, redirectUri, scope, user, pass, countS, outFile]) {
  if (!outFile) die('usage: sso-tokens BASE CLIENT REDIRECT SCOPE USER PASS COUNT OUTFILE');
  const count = Number.parseInt(countS, 10);
  const jar = new Jar();
  const t0 = performance.now();
  const { pkce: p, state, txn, csrf } = await openLogin(jar, base, clientId, redirectUri, scope);
  const lr = await req(jar, 'POST', new URL('/login', base).toString(), {
    form: {
      txn, csrf, username: user, password: pass,
    },
    origin: base,
  });
  if (lr.status !== 303 && lr.status !== 302) die(`POST /login: expected 303, got ${lr.status}: ${lr.text.slice(0, 300)}`);
  if (!jar.c.has('keycard_session')) process.stderr.write('sso-tokens: warning: POST /login set no keycard_session cookie\n');
  const first = codeFrom(lr.location, redirectUri, state);
  if (first.error) die(`POST /login (first-party client): ${first.error}`);
  const tokens = [(await exchange(base, clientId, redirectUri, first.code, p.verifier)).refresh_token];
  let sample;
  while (tokens.length < count) {
    const q = pkce();
    const st = randomBytes(8).toString('hex');
    const a = await req(jar, 'GET', authorizeUrl(base, clientId, redirectUri, scope, st, q.challenge));
    const c = codeFrom(a.location, redirectUri, st);
    if (a.status !== 303 && a.status !== 302) die(`GET /authorize with SSO session: ${a.status}: ${a.text.slice(0, 300)}`);
    if (c.error) die(`GET /authorize with SSO session: ${c.error}`);
    const t = await exchange(base, clientId, redirectUri, c.code, q.verifier);
    sample = t;
    tokens.push(t.refresh_token);
  }
  if (new Set(tokens).size !== tokens.length) die('sso-tokens: duplicate refresh tokens issued');
  writeFileSync(outFile, `${tokens.join('\n')}\n`);
  const ms = performance.now() - t0;
  console.log(JSON.stringify({
    count: tokens.length,
    ms: Math.round(ms),
    sample_keys: Object.keys(sample ?? {}),
    sample_access_token: sample ? tokenCheck(JSON.stringify(sample)) : null,
  }));
}

async function loginSetup([base, clientId, redirectUri, scope, user, pass]) {
  if (!pass) die('usage: login-setup BASE CLIENT REDIRECT SCOPE USER PASS');
  const jar = new Jar();
  const { txn, csrf } = await openLogin(jar, base, clientId, redirectUri, scope);
  const cookie = jar.header();
  // one real login to check the POST is answered 303 -> /consent and can be
  // repeated: send it twice.
  const results = [];
  for (let i = 0; i < 2; i += 1) {
    const j = new Jar();
    for (const [k, v] of jar.c) j.c.set(k, v);
    const r = await req(j, 'POST', new URL('/login', base).toString(), {
      form: {
        txn, csrf, username: user, password: pass,
      },
      origin: base,
    });
    results.push({ status: r.status, location: r.location, body: r.status >= 400 ? r.text.slice(0, 300) : undefined });
  }
  const bad = results.find((r) => r.status !== 303);
  if (bad) die(`POST /login (repeatable, consent client): expected 303 twice, got ${JSON.stringify(results)}`);
  if (!results.every((r) => r.location && new URL(r.location, base).pathname.endsWith('/consent'))) {
    process.stderr.write(`login-setup: warning: login redirected to ${results.map((r) => r.location).join(', ')}, expected /consent?txn=...\n`);
  }
  const body = new URLSearchParams({
    txn, csrf, username: user, password: pass,
  }).toString();
  console.log(JSON.stringify({
    txn, csrf, cookie, body, status: results[0].status, location: results[0].location,
  }));
}

// ---------------------------------------------------------------- readiness timer
function probe(url) {
  return new Promise((resolve) => {
    const r = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    r.on('error', () => resolve(0));
    r.on('timeout', () => { r.destroy(); resolve(0); });
  });
}

async function ready(args) {
  const sep = args.indexOf('--');
  if (sep < 3) die('usage: ready URL TIMEOUT_MS LOGFILE -- CMD ARGS...');
  const [url, timeoutS, logFile] = args;
  const [cmd, ...cargs] = args.slice(sep + 1);
  const timeout = Number.parseInt(timeoutS, 10);
  const fd = openSync(logFile, 'a');
  const t0 = performance.now();
  const child = spawn(cmd, cargs, { stdio: ['ignore', fd, fd], detached: false });
  let exited = null;
  child.on('exit', (code, sig) => { exited = { code, sig }; });
  let status = 0;
  for (;;) {
    status = await probe(url);
    if (status === 200) break;
    if (exited) die(`server exited before ready (code ${exited.code}, signal ${exited.sig}); see ${logFile}`);
    if (performance.now() - t0 > timeout) {
      child.kill('SIGKILL');
      die(`server not ready after ${timeout} ms (last status ${status}); see ${logFile}`);
    }
    await new Promise((r) => { setTimeout(r, 2); });
  }
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ ready_ms: Math.round(ms * 10) / 10, pid: child.pid }));
  child.unref();
  process.exit(0);
}

// ---------------------------------------------------------------- report
const MIB = 1024;

function loadRaw(outDir) {
  const raw = {};
  const dir = path.join(outDir, 'raw');
  if (!existsSync(dir)) return raw;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    try {
      raw[f.slice(0, -5)] = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
    } catch (e) {
      raw[f.slice(0, -5)] = { parse_error: e.message };
    }
  }
  return raw;
}

const fmt = (v, d = 0) => (v == null || Number.isNaN(v) ? 'n/a' : Number(v).toFixed(d));

function report([outDir]) {
  const raw = loadRaw(outDir);
  const g = (k) => raw[k] ?? null;
  const meta = g('meta') ?? {};
  const ossl = g('openssl') ?? {};
  const argon = g('argon2') ?? {};

  const phase = (name) => {
    const w = g(`wrk-${name}`);
    if (!w) return null;
    return { ...w, rss: g(`rss-${name}`) };
  };
  const phases = {};
  for (const n of ['node-cc-RS256', 'node-cc-ES256', 'keycard-cc-RS256', 'keycard-cc-ES256',
    'keycard-refresh-RS256', 'keycard-refresh-ES256', 'keycard-login',
    'node-introspect', 'keycard-introspect',
    'demo-low-public', 'demo-low-photos', 'demo-public', 'demo-photos',
    'pg-cc-RS256', 'pg-refresh-RS256', 'pg2-cc-RS256', 'pg2-refresh-RS256',
    'pg-cc-ES256', 'pg-refresh-ES256', 'pg2-cc-ES256', 'pg2-refresh-ES256',
    'scale-refresh-empty', 'scale-refresh-full']) {
    phases[n] = phase(n);
  }
  const scaleOn = String(meta.scale) === '1' || phases['scale-refresh-empty'] || phases['scale-refresh-full'];
  if (!scaleOn) {
    delete phases['scale-refresh-empty'];
    delete phases['scale-refresh-full'];
  }

  const rps = (n) => phases[n]?.rps ?? null;
  const errs = (n) => phases[n]?.errors ?? null;
  const targets = [];
  // absolute: the target is `value <= factor unit` whatever the baseline
  // (baseline only shown); lowerIsBetter with a baseline: value <= factor x baseline
  const add = (name, value, baseline, factor, unit, {
    lowerIsBetter = false, errorPhase = null, note = '', absolute = false,
  } = {}) => {
    const errorPhases = [errorPhase].flat().filter(Boolean);
    let threshold = null;
    if (absolute || (baseline == null && factor != null && lowerIsBetter)) threshold = factor;
    else if (baseline != null && factor != null) threshold = baseline * factor;
    let status = 'n/a';
    let ratio = null;
    if (value != null && threshold != null) {
      if (lowerIsBetter) {
        ratio = (baseline != null && !absolute) ? value / baseline : value / threshold;
        status = value <= threshold ? 'PASS' : 'FAIL';
      } else {
        ratio = baseline ? value / baseline : null;
        status = value >= threshold ? 'PASS' : 'FAIL';
      }
      if (errorPhases.some((p) => (errs(p) ?? 0) > 0)) status = `${status === 'PASS' ? 'FAIL' : status} (errors)`;
    }
    let need = lowerIsBetter ? `<=${factor} ${unit}` : `>=${Number(factor).toFixed(2)}x`;
    if (lowerIsBetter && baseline != null && !absolute) need = `<=${Number(factor).toFixed(2)}x`;
    targets.push({
      name, value, unit, baseline, factor, threshold, ratio, status, need, note,
    });
  };

  // The sign rate openssl gave right before and after the cc RS256 phase (run.sh), else the
  // run's first openssl measurement.
  const ccRsa = g('cc-RS256-openssl');
  const rsaSign = ccRsa?.rsa2048_sign_per_s ?? ossl.rsa2048_sign_per_s ?? null;
  const rsa2 = rsaSign != null ? 2 * rsaSign : null;
  add('cc RS256 rps vs 2 x openssl rsa2048 sign/s', rps('keycard-cc-RS256'), rsa2, 0.75, 'req/s', { errorPhase: 'keycard-cc-RS256' });
  add('cc RS256 rps vs node-oidc-provider RS256', rps('keycard-cc-RS256'), rps('node-cc-RS256'), 2, 'req/s', { errorPhase: 'keycard-cc-RS256' });
  add('cc ES256 rps vs node-oidc-provider ES256', rps('keycard-cc-ES256'), rps('node-cc-ES256'), 10, 'req/s', { errorPhase: 'keycard-cc-ES256' });
  add('refresh RS256 rps vs cc RS256 rps', rps('keycard-refresh-RS256'), rps('keycard-cc-RS256'), 0.7, 'req/s', { errorPhase: 'keycard-refresh-RS256' });
  add('refresh ES256 rps vs cc ES256 rps', rps('keycard-refresh-ES256'), rps('keycard-cc-ES256'), 0.7, 'req/s', { errorPhase: 'keycard-refresh-ES256' });
  add('login rps vs argon2id raw hashes/s (2 thr)', rps('keycard-login'), argon.hashes_per_sec ?? null, 0.9, 'req/s', { errorPhase: 'keycard-login' });

  const idle = [g('keycard-idle-RS256')?.rss_kib, g('keycard-idle-ES256')?.rss_kib].filter((x) => x != null);
  const loadPeaks = ['keycard-cc-RS256', 'keycard-cc-ES256', 'keycard-refresh-RS256', 'keycard-refresh-ES256', 'keycard-login']
    .map((n) => phases[n]?.rss?.max_kib).filter((x) => x != null);
  const readyMs = [g('keycard-ready-RS256')?.median_ms, g('keycard-ready-ES256')?.median_ms].filter((x) => x != null);
  add('RSS idle (MiB, worst of runs)', idle.length ? Math.max(...idle) / MIB : null, null, 20, 'MiB', { lowerIsBetter: true });
  add('RSS peak under load (MiB, all phases)', loadPeaks.length ? Math.max(...loadPeaks) / MIB : null, null, 60, 'MiB', { lowerIsBetter: true });
  add('ready time (ms, median of restarts)', readyMs.length ? Math.max(...readyMs) : null, null, 100, 'ms', { lowerIsBetter: true });

  // ---- issue 4: resource servers
  const val = { RS256: g('validate-RS256'), ES256: g('validate-ES256') };
  // The verify rate openssl gave right before and after the validation run (run.sh), else the
  // run's first openssl measurement.
  const verifyRsa = val.RS256?.openssl_verify_per_s ?? ossl.rsa2048_verify_per_s ?? null;
  const verifyEc = val.ES256?.openssl_verify_per_s ?? ossl.ecdsap256_verify_per_s ?? null;
  add('validate RS256 /s vs openssl rsa2048 verify/s', val.RS256?.verifications_per_sec ?? null,
    verifyRsa, 0.8, '/s');
  const p50us = (n) => (phases[n]?.latency_ms?.p50 != null ? phases[n].latency_ms.p50 * 1000 : null);
  const lowPub = p50us('demo-low-public');
  const lowPh = p50us('demo-low-photos');
  const overhead = lowPub != null && lowPh != null ? lowPh - lowPub : null;
  add('demo API p50 overhead /photos - /public (us)', overhead, lowPub, 50, 'us',
    { lowerIsBetter: true, absolute: true, errorPhase: ['demo-low-public', 'demo-low-photos'] });
  add('introspect rps vs node-oidc-provider introspect', rps('keycard-introspect'), rps('node-introspect'), 10, 'req/s',
    { errorPhase: ['keycard-introspect', 'node-introspect'] });
  // ---- issue 3: PostgreSQL at scale (only when SCALE=1)
  const p99 = (n) => phases[n]?.latency_ms?.p99 ?? null;
  const scaleLoad = g('scale-load');
  if (scaleOn) {
    add('scale: refresh p99 full DB vs empty DB (ms)', p99('scale-refresh-full'), p99('scale-refresh-empty'), 2, 'ms',
      { lowerIsBetter: true, errorPhase: ['scale-refresh-empty', 'scale-refresh-full'] });
  }
  // ---- informational ratios (no target)
  const info = [];
  const ratio = (name, a, b, note = '') => info.push({
    name, value: a, baseline: b, ratio: a != null && b ? a / b : null, note,
  });
  ratio('validate ES256 /s vs openssl ecdsap256 verify/s', val.ES256?.verifications_per_sec ?? null, verifyEc);
  ratio('demo /photos rps vs /public/photos rps (-c32)', rps('demo-photos'), rps('demo-public'));
  for (const a of ['RS256', 'ES256']) {
    ratio(`SQLite refresh/cc ${a}`, rps(`keycard-refresh-${a}`), rps(`keycard-cc-${a}`));
    ratio(`PG refresh/cc ${a}`, rps(`pg-refresh-${a}`), rps(`pg-cc-${a}`));
    ratio(`PG 2 nodes refresh/cc ${a}`, rps(`pg2-refresh-${a}`), rps(`pg2-cc-${a}`));
    ratio(`PG/SQLite cc ${a}`, rps(`pg-cc-${a}`), rps(`keycard-cc-${a}`));
    ratio(`PG/SQLite refresh ${a}`, rps(`pg-refresh-${a}`), rps(`keycard-refresh-${a}`));
    ratio(`PG 2 nodes/1 node cc ${a}`, rps(`pg2-cc-${a}`), rps(`pg-cc-${a}`), 'one 2-core machine: both nodes, PostgreSQL and wrk share it');
    ratio(`PG 2 nodes/1 node refresh ${a}`, rps(`pg2-refresh-${a}`), rps(`pg-refresh-${a}`), 'one 2-core machine');
  }
  if (scaleOn) {
    ratio('scale: refresh rps full DB vs empty DB', rps('scale-refresh-full'), rps('scale-refresh-empty'));
    ratio('scale: refresh p50 full DB vs empty DB', phases['scale-refresh-full']?.latency_ms?.p50 ?? null,
      phases['scale-refresh-empty']?.latency_ms?.p50 ?? null);
  }

  const results = {
    generated_at: new Date().toISOString(),
    meta,
    baselines: {
      openssl: ossl,
      argon2: argon,
      node_oidc_provider: {
        RS256: phases['node-cc-RS256'],
        ES256: phases['node-cc-ES256'],
        idle_rss: { RS256: g('node-idle-RS256'), ES256: g('node-idle-ES256') },
        note: 'single node process, in-memory adapter; jose signs via WebCrypto on the libuv threadpool, so signing uses all cores',
      },
    },
    keycard: {
      phases: Object.fromEntries(Object.entries(phases).filter(([k]) => k.startsWith('keycard-'))),
      idle_rss: { RS256: g('keycard-idle-RS256'), ES256: g('keycard-idle-ES256') },
      ready: { RS256: g('keycard-ready-RS256'), ES256: g('keycard-ready-ES256') },
    },
    resource_servers: {
      validate: val,
      demo_api: {
        low_load: { public: phases['demo-low-public'], photos: phases['demo-low-photos'] },
        p50_us: { public: lowPub, photos: lowPh, overhead },
        normal_load: { public: phases['demo-public'], photos: phases['demo-photos'] },
      },
      introspection: {
        keycard: phases['keycard-introspect'],
        node_oidc_provider: phases['node-introspect'],
        note: 'node-oidc-provider cannot introspect JWT access tokens; its introspection phase uses opaque access tokens (in-memory adapter)',
      },
    },
    postgres: {
      phases: Object.fromEntries(Object.entries(phases).filter(([k]) => /^(pg|pg2|scale)-/.test(k))),
      idle_rss: { RS256: g('pg-idle-RS256'), ES256: g('pg-idle-ES256') },
      bulk_load: scaleLoad,
    },
    ratios: info,
    targets,
    errors: g('errors'),
  };
  writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);

  // ---- print
  const L = [];
  const line = (s = '') => L.push(s);
  line('');
  line('================================================================================');
  line(` Keycard benchmark   ${meta.date ?? ''}`);
  line(` ${meta.cpu ?? '?'} | nproc ${meta.nproc ?? '?'} | kernel ${meta.kernel ?? '?'}`);
  line(` load average before the run: ${meta.load_before ?? '?'}`);
  line(` wrk -t${meta.threads ?? '?'} -c${meta.connections ?? '?'}, ${meta.warmup_s ?? '?'} s warmup + ${meta.duration_s ?? '?'} s per phase; wrk shares the ${meta.nproc ?? '?'} cores with the server`);
  line('================================================================================');
  line('Baselines');
  line(`  openssl rsa2048 sign/s (1 core)     ${fmt(rsaSign, 1).padStart(10)}` +
    (ccRsa ? ` (mean of ${fmt(ccRsa.before, 1)} before and ${fmt(ccRsa.after, 1)} after the cc RS256 phase; ${fmt(ossl.rsa2048_sign_per_s, 1)} at the start)` : ''));
  line(`  openssl ecdsap256 sign/s (1 core)   ${fmt(ossl.ecdsap256_sign_per_s, 1).padStart(10)}`);
  line(`  argon2id 19MiB t=2 p=1, 2 threads   ${fmt(argon.hashes_per_sec, 1).padStart(10)} hashes/s` +
    (argon.before != null ? ` (mean of ${fmt(argon.before, 1)} before and ${fmt(argon.after, 1)} after the login phase)` : ''));
  line(`  openssl rsa2048 verify/s (1 core)   ${fmt(ossl.rsa2048_verify_per_s, 1).padStart(10)}`);
  line(`  openssl ecdsap256 verify/s (1 core) ${fmt(ossl.ecdsap256_verify_per_s, 1).padStart(10)}`);
  for (const a of ['RS256', 'ES256']) {
    const v = val[a];
    line(`  keycard bench validate ${a}        ${fmt(v?.verifications_per_sec, 1).padStart(10)} /s (1 core)` +
      (v?.openssl_verify_per_s != null ? `; openssl verify next to it ${fmt(v.openssl_verify_before, 1)} before, ${fmt(v.openssl_verify_after, 1)} after` : ''));
  }
  line('');
  line('Load phases                       req/s   ok req/s  errors  p50 ms  p99 ms  peak RSS MiB');
  for (const [n, p] of Object.entries(phases)) {
    if (!p) { line(`  ${n.padEnd(28)}  (not run)`); continue; }
    line(`  ${n.padEnd(28)} ${fmt(p.rps, 1).padStart(8)} ${fmt(p.ok_rps, 1).padStart(9)} ${fmt(p.errors).padStart(7)} ${fmt(p.latency_ms?.p50, 2).padStart(7)} ${fmt(p.latency_ms?.p99, 2).padStart(7)} ${fmt(p.rss?.max_kib != null ? p.rss.max_kib / MIB : null, 1).padStart(13)}`);
  }
  line('  (node-oidc-provider: ONE node process, in-memory adapter, as usually deployed per instance; its JWT');
  line('   signing goes through WebCrypto, which runs on libuv\'s threadpool, so it still uses every core)');
  const ni = ['RS256', 'ES256'].map((a) => g(`node-idle-${a}`)?.rss_kib).filter((x) => x != null);
  if (ni.length) line(`  node-oidc-provider idle RSS ${ni.map((x) => fmt(x / MIB, 1)).join(' / ')} MiB (RS256 / ES256)`);
  for (const a of ['RS256', 'ES256']) {
    const i = g(`keycard-idle-${a}`);
    const r = g(`keycard-ready-${a}`);
    if (i || r) {
      line(`  keycard ${a}: idle RSS ${fmt(i?.rss_kib != null ? i.rss_kib / MIB : null, 1)} MiB; ready after spawn: median ${fmt(r?.median_ms, 1)} ms (runs: ${(r?.runs_ms ?? []).join(', ')})`);
    }
  }
  line(`  demo API at -t1 -c1: p50 /public/photos ${fmt(lowPub, 0)} us, /photos ${fmt(lowPh, 0)} us, overhead ${fmt(overhead, 0)} us`);
  line('  (introspection: node-oidc-provider with OPAQUE access tokens, it refuses to introspect its JWTs;');
  line('   pg2-*: two keycard nodes on one database, two wrk -t1 at once, req/s added, latency = worse node)');
  if (scaleLoad) {
    line(`  scale bulk load: ${fmt(scaleLoad.load_s, 1)} s for ${scaleLoad.users} users, ${scaleLoad.clients} clients, ${scaleLoad.grants} grants, ${scaleLoad.refresh_tokens} refresh tokens (db ${scaleLoad.db_mib} MiB)`);
  }
  line('');
  line('Ratios (informational, no target)                      value      baseline   ratio');
  for (const r of info) {
    line(`  ${r.name.padEnd(50)} ${fmt(r.value, 1).padStart(9)} ${fmt(r.baseline, 1).padStart(10)} ${(r.ratio != null ? `${fmt(r.ratio, 2)}x` : 'n/a').padStart(7)}`);
  }
  line('');
  line('Targets                                                value      baseline   ratio   need      result');
  for (const t of targets) {
    line(`  ${t.name.padEnd(50)} ${fmt(t.value, 1).padStart(9)} ${fmt(t.baseline, 1).padStart(10)} ${(t.ratio != null ? `${fmt(t.ratio, 2)}x` : 'n/a').padStart(7)}   ${t.need.padEnd(9)} ${t.status}`);
  }
  const errors = g('errors');
  if (errors && errors.length) {
    line('');
    line('Problems:');
    for (const e of errors) line(`  - ${e}`);
  }
  line('');
  line(`results: ${path.join(outDir, 'results.json')}`);
  console.log(L.join('\n'));
  const failed = targets.filter((t) => t.status !== 'PASS').length;
  return failed;
}

// ---------------------------------------------------------------- main
const [cmd, ...args] = process.argv.slice(2);
switch (cmd) {
  case 'parse-wrk':
    console.log(JSON.stringify(parseWrk(readFileSync(args[0], 'utf8'))));
    break;
  case 'sum-wrk':
    console.log(JSON.stringify(sumWrk(JSON.parse(readFileSync(args[0], 'utf8')), JSON.parse(readFileSync(args[1], 'utf8')))));
    break;
  case 'rss-stats':
    console.log(JSON.stringify(rssStats(existsSync(args[0]) ? readFileSync(args[0], 'utf8') : '')));
    break;
  case 'token-check': {
    const r = tokenCheck(readFileSync(args[0], 'utf8'));
    console.log(JSON.stringify(r));
    process.exit(r.ok ? 0 : 1);
    break;
  }
  case 'sso-tokens':
    await ssoTokens(args);
    break;
  case 'login-setup':
    await loginSetup(args);
    break;
  case 'ready':
    await ready(args);
    break;
  case 'report': {
    const failed = report(args);
    process.exit(process.env.STRICT === '1' && failed ? 3 : 0);
    break;
  }
  default:
    die(`unknown subcommand ${cmd ?? ''}`);
}

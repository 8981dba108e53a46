// The HTTP conversations the benchmark has with an authorization server before a load run:
// tokens to load with (client_credentials, SSO authorization codes for refresh tokens) and a
// login transaction to replay.
//
// Entry points: `basicAuth` (RFC 6749 §2.3.1), `ccToken`, `issueTokens` (many at once),
// `tokenCheck` (is the access token a JWT, and with which alg), `ssoRefreshTokens` (one password
// login, then authorization code + PKCE rounds on the SSO session, RFC 6749 §4.1, RFC 7636),
// `loginSetup` (an open login transaction whose POST /login can be repeated).
//
// Every function throws on an answer it did not expect, with the start of the body.
import { createHash, randomBytes } from 'node:crypto';

export const AUDIENCE = 'https://api.example.com';
export const REDIRECT = 'http://127.0.0.1:9/cb';
export const USER = 'alice';
// Long enough for any sane password policy.
export const PASSWORD = 'bench-Password-correct-horse-42';

export function basicAuth(id, secret) {
  const e = encodeURIComponent;
  return `Basic ${Buffer.from(`${e(id)}:${e(secret)}`).toString('base64')}`;
}

async function postForm(url, form, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(form).toString(),
    signal: AbortSignal.timeout(15000),
  });
  return { status: res.status, text: await res.text() };
}

// POST /token client_credentials; returns the parsed token response.
export async function ccToken(tokenUrl, auth, scope) {
  const r = await postForm(tokenUrl, { grant_type: 'client_credentials', scope }, { authorization: auth });
  if (r.status !== 200) throw new Error(`POST ${tokenUrl} client_credentials: ${r.status}: ${r.text.slice(0, 300)}`);
  return JSON.parse(r.text);
}

// `count` access tokens, `concurrency` requests in flight.
export async function issueTokens(tokenUrl, auth, scope, count, concurrency = 16) {
  const out = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      out.push((await ccToken(tokenUrl, auth, scope)).access_token);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (new Set(out).size !== out.length) throw new Error('issueTokens: the server issued the same token twice');
  return out;
}

const b64urlJson = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

// Decodes (without verifying) the access token of a token response.
export function tokenCheck(body) {
  const at = body.access_token;
  if (typeof at !== 'string') throw new Error(`no access_token in ${JSON.stringify(body).slice(0, 200)}`);
  const parts = at.split('.');
  if (parts.length !== 3) throw new Error(`access_token is not a JWS (${parts.length} parts)`);
  const header = b64urlJson(parts[0]);
  const claims = b64urlJson(parts[1]);
  return { alg: header.alg, typ: header.typ, aud: claims.aud, scope: claims.scope, length: at.length };
}

class Jar {
  constructor(from) { this.c = new Map(from?.c ?? []); }

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
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function htmlDecode(s) {
  return s.replace(/&quot;/g, '"').replace(/&#39;|&#x27;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&#x2F;|&#47;/g, '/').replace(/&amp;/g, '&');
}

function hiddenInput(html, name) {
  const tag = new RegExp(`<input\\b[^>]*\\bname=["']${name}["'][^>]*>`, 'i').exec(html);
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
  const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(15000) });
  jar.take(res);
  return { status: res.status, location: res.headers.get('location'), text: await res.text() };
}

function authorizeUrl(base, clientId, scope, state, challenge) {
  const u = new URL('/authorize', base);
  u.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope, state,
    code_challenge: challenge, code_challenge_method: 'S256',
  }).toString();
  // API scopes (anything but the OpenID Connect ones) need the API named as the audience.
  const oidc = new Set(['openid', 'profile', 'email', 'offline_access']);
  if (scope.split(' ').some((s) => s && !oidc.has(s))) u.searchParams.set('audience', AUDIENCE);
  return u.toString();
}

// GET /authorize without a session -> 303 /login?txn=; GET /login -> the form's hidden fields.
async function openLogin(jar, base, clientId, scope) {
  const p = pkce();
  const state = randomBytes(8).toString('hex');
  const a = await req(jar, 'GET', authorizeUrl(base, clientId, scope, state, p.challenge));
  if (a.status !== 303 && a.status !== 302) {
    throw new Error(`GET /authorize for ${clientId}: expected 303 to /login, got ${a.status}: ${a.text.slice(0, 300)}`);
  }
  const loginUrl = new URL(a.location, base);
  if (!loginUrl.pathname.endsWith('/login')) throw new Error(`GET /authorize redirected to ${a.location}, expected /login?txn=...`);
  const l = await req(jar, 'GET', loginUrl.toString());
  if (l.status !== 200) throw new Error(`GET ${loginUrl}: status ${l.status}: ${l.text.slice(0, 300)}`);
  const txn = hiddenInput(l.text, 'txn') ?? loginUrl.searchParams.get('txn');
  const csrf = hiddenInput(l.text, 'csrf');
  if (!txn || !csrf) throw new Error('login page: no hidden input "txn" or "csrf"');
  return { pkce: p, state, txn, csrf };
}

function codeFrom(location, state) {
  if (!location) throw new Error('no Location header');
  const u = new URL(location, REDIRECT);
  const want = new URL(REDIRECT);
  if (u.origin !== want.origin || u.pathname !== want.pathname) throw new Error(`redirected to ${location}, not to redirect_uri`);
  if (u.searchParams.get('error')) throw new Error(`authorization error: ${location}`);
  if (state && u.searchParams.get('state') !== state) throw new Error(`state mismatch in ${location}`);
  const code = u.searchParams.get('code');
  if (!code) throw new Error(`no code in ${location}`);
  return code;
}

async function exchange(base, client, code, verifier) {
  const r = await postForm(new URL('/token', base), {
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier,
  }, { authorization: basicAuth(client.id, client.secret) });
  if (r.status !== 200) throw new Error(`POST /token (authorization_code): ${r.status}: ${r.text.slice(0, 300)}`);
  const j = JSON.parse(r.text);
  if (!j.refresh_token) throw new Error(`POST /token (authorization_code): no refresh_token in ${r.text.slice(0, 300)}`);
  return j.refresh_token;
}

// One password login through /authorize + /login (a first-party client: no consent), then
// authorize + code exchange rounds on that SSO session until `count` refresh tokens exist.
// `client` is { id, secret } (a confidential first-party client).
export async function ssoRefreshTokens(base, client, count, scope = 'openid offline_access read') {
  const clientId = client.id;
  const jar = new Jar();
  const { pkce: p, state, txn, csrf } = await openLogin(jar, base, clientId, scope);
  const lr = await req(jar, 'POST', new URL('/login', base).toString(), {
    form: { txn, csrf, username: USER, password: PASSWORD }, origin: base,
  });
  if (lr.status !== 303 && lr.status !== 302) throw new Error(`POST /login: expected 303, got ${lr.status}: ${lr.text.slice(0, 300)}`);
  const tokens = [await exchange(base, client, codeFrom(lr.location, state), p.verifier)];
  while (tokens.length < count) {
    const q = pkce();
    const st = randomBytes(8).toString('hex');
    const a = await req(jar, 'GET', authorizeUrl(base, clientId, scope, st, q.challenge));
    if (a.status !== 303 && a.status !== 302) throw new Error(`GET /authorize with an SSO session: ${a.status}: ${a.text.slice(0, 300)}`);
    tokens.push(await exchange(base, client, codeFrom(a.location, st), q.verifier));
  }
  if (new Set(tokens).size !== tokens.length) throw new Error('ssoRefreshTokens: duplicate refresh tokens issued');
  return tokens;
}

// An open login transaction for a client that needs consent: POST /login answers 303 ->
// /consent and leaves the transaction open, so the same POST can be repeated by wrk. Sends it
// twice to prove that; returns { body, cookie, location }.
export async function loginSetup(base, clientId) {
  const jar = new Jar();
  const { txn, csrf } = await openLogin(jar, base, clientId, 'openid');
  const form = { txn, csrf, username: USER, password: PASSWORD };
  let location;
  for (let i = 0; i < 2; i += 1) {
    const r = await req(new Jar(jar), 'POST', new URL('/login', base).toString(), { form, origin: base });
    if (r.status !== 303) throw new Error(`POST /login (repeatable, consent client): expected 303, got ${r.status}: ${r.text.slice(0, 300)}`);
    location = r.location;
  }
  return { body: new URLSearchParams(form).toString(), cookie: jar.header(), location };
}

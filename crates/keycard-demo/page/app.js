// The demo page's behaviour: plain JavaScript, no build step. Every call carries the BFF's
// CSRF header; the session cookie is HttpOnly, so nothing here ever sees a token.
'use strict';

const CSRF = { 'X-CSRF': '1' };
const $ = (id) => document.getElementById(id);
let signedIn = false;

function status(text) {
  $('status').textContent = text;
}

function cell(row, text, tag) {
  const c = document.createElement(tag || 'td');
  c.textContent = text;
  row.appendChild(c);
  return c;
}

function show(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function fillPairs(table, obj) {
  const body = table.querySelector('tbody');
  body.replaceChildren();
  if (!obj) {
    cell(body.insertRow(), '(none)');
    return;
  }
  for (const [k, v] of Object.entries(obj)) {
    const row = body.insertRow();
    cell(row, k, 'th').scope = 'row';
    cell(row, show(v));
  }
}

function log(text, kind) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  if (kind) li.className = kind;
  $('log').prepend(li);
  return li;
}

async function getJson(url, options) {
  const r = await fetch(url, { credentials: 'same-origin', ...options, headers: { ...CSRF, ...(options && options.headers) } });
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  return { status: r.status, body, challenge: r.headers.get('www-authenticate') };
}

async function render() {
  const s = await getJson('/bff/session');
  signedIn = !!(s.body && s.body.authenticated);
  $('signed-out').hidden = signedIn;
  $('signed-in').hidden = !signedIn;
  if (!signedIn) {
    status('You are signed out.');
    return;
  }
  const me = await getJson('/api/me');
  if (me.status !== 200) {
    status(`Could not read the profile (HTTP ${me.status}). Sign in again.`);
    return;
  }
  const p = me.body;
  $('who').textContent = p.name || p.sub;
  fillPairs($('id-claims'), p.id_token);
  fillPairs($('userinfo'), p.userinfo);
  const body = $('token-claims').querySelector('tbody');
  body.replaceChildren();
  for (const c of p.access_token.claims) {
    const row = body.insertRow();
    cell(row, c.name, 'th').scope = 'row';
    cell(row, show(c.value));
    cell(row, c.meaning);
  }
  status(`Signed in. The access token expires at ${new Date(tokenExp(p) * 1000).toLocaleTimeString()}.`);
}

function tokenExp(p) {
  const exp = p.access_token.claims.find((c) => c.name === 'exp');
  return exp ? exp.value : 0;
}

// One API call through the BFF's proxy and the gateway: status, latency, which check ran.
async function call(which) {
  const route = which === 'photos'
    ? { url: '/api/photos', method: 'GET', check: 'local check at the gateway (signature, claims, revocation feed)' }
    : { url: '/api/orders', method: 'POST', check: 'introspection at Keycard (RFC 7662)' };
  const t0 = performance.now();
  const r = await getJson(route.url, { method: route.method });
  const ms = (performance.now() - t0).toFixed(1);
  const ok = r.status >= 200 && r.status < 300;
  const reasons = [r.challenge, r.body && r.body.error, r.body && r.body.error_description];
  const why = ok ? '' : ` ${reasons.filter(Boolean).join('; ')}`;
  const li = log(`${route.method} ${route.url} → ${r.status} in ${ms} ms, ${route.check}.${why}`, ok ? 'ok' : 'refused');
  li.dataset.api = which;
  li.dataset.status = String(r.status);
  return r.status;
}

async function refreshNow() {
  const r = await getJson('/api/demo/refresh', { method: 'POST' });
  log(r.status === 200 ? 'Tokens refreshed: a new access token and a new refresh token.' : `Refresh refused (HTTP ${r.status}).`, r.status === 200 ? 'ok' : 'refused');
  await render();
}

// Revokes the refresh token (at Keycard: the whole grant), then shows both APIs refusing: the
// introspected one at once, the locally checked one once the revocation feed reaches the
// gateway.
async function revoke() {
  const r = await getJson('/api/demo/revoke', { method: 'POST' });
  if (r.status !== 200 || !r.body.revoked) {
    log(`Revocation failed (HTTP ${r.status}).`, 'refused');
    return;
  }
  const t0 = performance.now();
  log('Tokens revoked at Keycard. Watching both APIs…');
  const orders = await call('orders');
  log(`High-risk API refused after ${(performance.now() - t0).toFixed(0)} ms.`, orders === 401 ? 'refused' : 'ok');
  for (let i = 0; i < 50; i++) {
    if (await call('photos') === 401) {
      const li = log(`Low-risk API refused after ${(performance.now() - t0).toFixed(0)} ms (the revocation feed reached the gateway).`, 'refused');
      li.id = 'photos-refused';
      return;
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  log('The low-risk API still accepts the token after 5 s: the feed did not reach the gateway.', 'refused');
}

async function signOut() {
  const r = await getJson('/bff/logout', { method: 'POST' });
  if (r.body && r.body.redirect_to) {
    window.location.assign(r.body.redirect_to);
  } else {
    await render();
  }
}

// Another tab, or Keycard's own sign-out page, may end the session: notice it.
async function watchSession() {
  if (!signedIn) return;
  const s = await getJson('/bff/session');
  if (!(s.body && s.body.authenticated)) {
    await render();
    status('You were signed out (Keycard told this app by back-channel logout).');
    $('status').dataset.ended = 'backchannel';
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('call-photos').addEventListener('click', () => call('photos'));
  $('call-orders').addEventListener('click', () => call('orders'));
  $('refresh').addEventListener('click', refreshNow);
  $('revoke').addEventListener('click', revoke);
  $('sign-out').addEventListener('click', signOut);
  render();
  setInterval(watchSession, 2000);
});

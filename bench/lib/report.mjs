// The results: targets (each a ratio to its baseline from the same run), informational ratios,
// the printed table and the object written to bench/out/results.json.
//
// `report(results, cfg)` -> { text, results, failed }. `failed` counts targets that are not PASS,
// leaving out those whose phases were skipped here (the gateway's, before it exists).
//
// A target that uses a measurement with any bad response is `FAIL (errors)` whatever its value.
// Adding a target: one `target(...)` line below, with the measurement names it depends on.

const MIB = 1024;
const fmt = (v, d = 0) => (v == null || Number.isNaN(v) ? 'n/a' : Number(v).toFixed(d));

export function report(results, cfg) {
  const M = results.measurements;
  const B = results.baselines;
  const F = results.facts;
  const proc = (name, role) => M[name]?.procs.find((p) => p.role === role) ?? null;
  const perCpu = (name, role) => proc(name, role)?.req_per_cpu_s ?? null;
  const usPerReq = (name, role) => proc(name, role)?.cpu_us_per_req ?? null;
  const perUserCpu = (name, role) => proc(name, role)?.req_per_user_cpu_s ?? null;
  const rps = (name) => M[name]?.rps ?? null;
  const p50 = (name) => M[name]?.latency_us?.p50 ?? null;
  const skippedPhase = (re) => results.skipped.some((s) => re.test(s.phase));

  const targets = [];
  // need: { min: factor } (value >= factor × baseline) or { max: limit } (value <= limit, an
  // absolute limit; `baseline` is then only shown) or { maxRatio: factor }.
  const target = (name, value, baseline, need, uses, { unit = '', note = '', skippedIf = null } = {}) => {
    let threshold = null;
    if (need.min != null && baseline != null) threshold = need.min * baseline;
    if (need.maxRatio != null && baseline != null) threshold = need.maxRatio * baseline;
    if (need.max != null) threshold = need.max;
    let status = 'n/a';
    const ratio = value != null && baseline ? value / baseline : null;
    if (value != null && threshold != null) {
      status = (need.min != null ? value >= threshold : value <= threshold) ? 'PASS' : 'FAIL';
      if (uses.some((u) => (M[u]?.errors ?? 0) > 0)) status = 'FAIL (errors)';
    } else if (skippedIf && skippedPhase(skippedIf)) {
      status = 'skipped';
    }
    const needS = need.min != null ? `>= ${need.min}x` : need.maxRatio != null ? `<= ${need.maxRatio}x` : `<= ${need.max} ${unit}`;
    targets.push({
      name, value, baseline, ratio, threshold, need: needS, unit, status, uses, note,
    });
  };

  const openssl = B.openssl ?? {};
  const rsaSign = B['openssl-rsa2048-sign-next-to-cc']?.mean ?? openssl.rsa2048_sign_per_s ?? null;
  target('cc ES256 req/CPU-s vs node-oidc-provider ES256', perCpu('cc-ES256', 'keycard'), perCpu('peer-cc-ES256', 'node-oidc-provider'),
    { min: 10 }, ['cc-ES256', 'peer-cc-ES256']);
  target('cc RS256 req/CPU-s vs openssl RSA-2048 sign/s (1 core)', perCpu('cc-RS256', 'keycard'), rsaSign,
    { min: 0.85 }, ['cc-RS256'], { note: 'openssl right before and after the phase, averaged' });
  target('introspect req/CPU-s vs node-oidc-provider, one token', perCpu('introspect', 'keycard'), perCpu('peer-introspect', 'node-oidc-provider'),
    { min: 10 }, ['introspect', 'peer-introspect']);
  // The issue set ≤ 10 µs on a machine where a bare axum hello-world cost 8.0–8.5 µs. Measured
  // against that hello-world in the same run (`keycard bench hello`), the same target is
  // ≤ 1.2×, which means the same on a slower or a faster machine; the row's value and baseline
  // are the two servers' microseconds per request.
  target('/healthz CPU per request vs bare axum hello-world', usPerReq('healthz', 'keycard'), usPerReq('hello', 'axum hello'),
    { maxRatio: 1.2 }, ['healthz', 'hello'], { unit: 'µs', note: 'the issue: <= 10 µs where bare axum cost 8.0-8.5 µs' });
  target('SQLite refresh ES256 req/CPU-s vs cc ES256', perCpu('refresh-ES256', 'keycard'), perCpu('cc-ES256', 'keycard'),
    { min: 0.6 }, ['refresh-ES256', 'cc-ES256']);
  target('PG refresh ES256 rotations/s vs pgbench -N tps', rps('pg-refresh-ES256'), B.pgbench?.tps ?? null,
    { min: 0.7 }, ['pg-refresh-ES256'], { note: `pgbench -c ${B.pgbench?.clients ?? '?'} -j ${B.pgbench?.threads ?? '?'}, scale ${B.pgbench?.scale ?? '?'}` });

  const idle = Object.entries(F).filter(([k]) => k.startsWith('idle-rss-kib-')).map(([, v]) => v).filter((v) => v != null);
  const asPhases = Object.keys(M).filter((n) => /^(cc|refresh)-|^login$|^healthz$|^introspect/.test(n));
  const peaks = asPhases.map((n) => proc(n, 'keycard')?.rss_peak_kib).filter((v) => v != null);
  const workers = cfg.ARGON2_WORKERS;
  const readies = Object.entries(F).filter(([k]) => k.startsWith('ready-')).map(([, v]) => v.median_ms);
  target('RSS idle (MiB, worst start)', idle.length ? Math.max(...idle) / MIB : null, null, { max: 20 }, [], { unit: 'MiB' });
  target(`RSS peak under load (MiB; 30 + 19 × ${workers} argon2 workers)`, peaks.length ? Math.max(...peaks) / MIB : null, null,
    { max: 30 + 19 * workers }, asPhases, { unit: 'MiB', note: `${workers} argon2 workers (one per core)` });
  target('ready after spawn (ms, median of restarts)', readies.length ? Math.max(...readies) : null, null, { max: 100 }, [], { unit: 'ms' });
  const demoStart = F['demo-startup'];
  target('keycard demo: spawn to ready, whole system (ms, worst start)', demoStart ? Math.max(demoStart.first_ms, ...demoStart.restarts_ms) : null, null,
    { max: 1000 }, [], { unit: 'ms', note: demoStart ? `first start ${demoStart.first_ms} ms (keys generated), restarts ${demoStart.restarts_ms.join(', ')} ms` : '' });
  target(`login req/s vs raw argon2id hashes/s (${workers} threads)`, rps('login'), B.argon2?.hashes_per_sec ?? null, { min: 0.9 }, ['login'],
    { note: 'argon2 right before and after the phase, averaged' });

  // The gateway's targets (issue 11), measured once `keycard gateway` exists.
  const gwSkip = /^gw-keycard$/;
  const verifyUs = (k) => (openssl[k] ? 1e6 / openssl[k] : null);
  for (const [alg, k] of [['RS256', 'rsa2048_verify_per_s'], ['ES256', 'ecdsap256_verify_per_s']]) {
    const floor = usPerReq('gw-nginx-proxy', 'nginx');
    target(`gateway local ${alg}: CPU µs/req vs nginx proxy + 1 verify`, usPerReq(`gw-keycard-local-${alg}`, 'gateway'),
      floor != null && verifyUs(k) != null ? floor + verifyUs(k) : null, { maxRatio: 1 }, [`gw-keycard-local-${alg}`, 'gw-nginx-proxy'], { skippedIf: gwSkip });
  }
  const sumUs = (n, roles) => (roles.every((r) => usPerReq(n, r) != null) ? roles.reduce((a, r) => a + usPerReq(n, r), 0) : null);
  target('gateway introspect uncached: gw+AS CPU/req vs nginx auth_request+AS', sumUs('gw-keycard-introspect', ['gateway', 'keycard']),
    sumUs('gw-nginx-auth-request', ['nginx', 'keycard']), { maxRatio: 0.5 }, ['gw-keycard-introspect', 'gw-nginx-auth-request'], { skippedIf: gwSkip });
  const gwModes = Object.keys(M).filter((n) => /^gw-keycard-.*-low$/.test(n));
  const added = gwModes.map((n) => p50(n) - p50('gw-direct-low')).filter((v) => Number.isFinite(v));
  target('gateway p50 added over direct at -c1 (µs, worst mode)', added.length ? Math.max(...added) : null, null, { max: 100 }, [...gwModes, 'gw-direct-low'],
    { unit: 'µs', skippedIf: gwSkip });
  const gwRss = Object.keys(M).filter((n) => /^gw-keycard-/.test(n)).map((n) => proc(n, 'gateway')?.rss_peak_kib).filter((v) => v != null);
  target('gateway RSS under load (MiB)', gwRss.length ? Math.max(...gwRss) / MIB : null, null, { max: 30 }, [], { unit: 'MiB', skippedIf: gwSkip });

  // ---- informational (no target)
  const info = [];
  const ratio = (name, a, b, note = '') => info.push({
    name, value: a, baseline: b, ratio: a != null && b ? a / b : null, note,
  });
  ratio('cc RS256 req/CPU-s vs node-oidc-provider RS256', perCpu('cc-RS256', 'keycard'), perCpu('peer-cc-RS256', 'node-oidc-provider'));
  for (const a of ['RS256', 'ES256']) ratio(`cc ${a} req/s vs node-oidc-provider (throughput)`, rps(`cc-${a}`), rps(`peer-cc-${a}`));
  ratio('SQLite refresh RS256 req/CPU-s vs cc RS256', perCpu('refresh-RS256', 'keycard'), perCpu('cc-RS256', 'keycard'));
  // Issue 15 asks for the repeated-token figure as the target and the distinct one reported: a
  // token seen for the first time costs its ES256 verification (~50 µs here) and a store read,
  // which no cache can skip.
  ratio('introspect req/CPU-s vs node-oidc-provider, distinct tokens', perCpu('introspect-distinct', 'keycard'), perCpu('peer-introspect-distinct', 'node-oidc-provider'),
    'each token once per cycle of INTROSPECT_TOKENS: verified and read from the store');
  ratio('introspect distinct vs one token (req/CPU-s)', perCpu('introspect-distinct', 'keycard'), perCpu('introspect', 'keycard'));
  // The same two targets counted in user-space CPU alone: on one machine with wrk, most of a
  // small request's system time is the loopback delivery to wrk's socket inside our writev.
  ratio('cc ES256 req/user-CPU-s vs node-oidc-provider ES256 (user time)', perUserCpu('cc-ES256', 'keycard'), perUserCpu('peer-cc-ES256', 'node-oidc-provider'),
    'the 10x target counted in user time');
  ratio('introspect req/user-CPU-s vs node-oidc-provider, one token (user time)', perUserCpu('introspect', 'keycard'), perUserCpu('peer-introspect', 'node-oidc-provider'),
    'the 10x target counted in user time');
  for (const a of ['RS256', 'ES256']) {
    const v = B[`validate-${a}`];
    ratio(`validate ${a} /s vs openssl verify/s (1 core, adjacent)`, v?.verifications_per_sec ?? null, v?.openssl_verify_per_s ?? null);
  }
  const overhead = p50('demo-low-photos') != null && p50('demo-low-public') != null ? p50('demo-low-photos') - p50('demo-low-public') : null;
  info.push({
    name: 'demo API p50 /photos - /public/photos at -c1 (µs)', value: overhead, baseline: p50('demo-low-public'), ratio: null, note: 'was a target: <= 50 µs',
  });
  ratio('demo /photos vs /public/photos req/s', rps('demo-photos'), rps('demo-public'));
  ratio('PG refresh RS256 rotations/s vs pgbench -N tps', rps('pg-refresh-RS256'), B.pgbench?.tps ?? null, 'RSA signing bounds it');
  for (const a of ['RS256', 'ES256']) {
    ratio(`PG refresh/cc ${a} req/s`, rps(`pg-refresh-${a}`), rps(`pg-cc-${a}`));
    ratio(`PG/SQLite cc ${a} req/s`, rps(`pg-cc-${a}`), rps(`cc-${a}`));
    ratio(`PG/SQLite refresh ${a} req/s`, rps(`pg-refresh-${a}`), rps(`refresh-${a}`));
    ratio(`PG 2 nodes/1 node cc ${a} req/s`, rps(`pg2-cc-${a}`), rps(`pg-cc-${a}`), 'one 2-core machine runs both nodes, PostgreSQL and wrk');
    ratio(`PG 2 nodes/1 node refresh ${a} req/s`, rps(`pg2-refresh-${a}`), rps(`pg-refresh-${a}`), 'one 2-core machine');
    ratio(`PG refresh ${a}: postgres CPU µs/rotation vs per pgbench txn`, usPerReq(`pg-refresh-${a}`, 'postgres'), B.pgbench?.postgres_cpu_us_per_txn ?? null);
  }
  if (M['scale-refresh-full']) {
    ratio('scale: refresh p99 full DB vs empty DB', M['scale-refresh-full'].latency_us.p99, M['scale-refresh-empty']?.latency_us.p99 ?? null, 'was a target: <= 2x');
    ratio('scale: refresh req/s full DB vs empty DB', rps('scale-refresh-full'), rps('scale-refresh-empty'));
  }
  for (const n of ['gw-nginx-proxy', 'gw-nginx-auth-request', 'gw-caddy-proxy', 'gw-caddy-forward-auth', ...Object.keys(M).filter((x) => /^gw-keycard-/.test(x) && !x.endsWith('-low'))]) {
    if (!M[n]) continue;
    ratio(`${n}: all servers CPU µs/req vs direct`, usPerReq(n, 'all servers'), usPerReq('gw-direct', 'demo-api'));
    ratio(`${n}: p50 at -c1 vs direct (µs)`, p50(`${n}-low`), p50('gw-direct-low'));
  }

  const failed = targets.filter((t) => t.status !== 'PASS' && t.status !== 'skipped').length;
  const out = {
    generated_at: new Date().toISOString(), ...results, targets, ratios: info,
  };
  return { text: table(out), results: out, failed };
}

function table(r) {
  const m = r.meta;
  const L = [];
  const line = (s = '') => L.push(s);
  const B = r.baselines;
  line('');
  line('='.repeat(100));
  line(` Keycard benchmark   ${m.date}   commit ${m.git_commit}`);
  line(` ${m.cpu} | nproc ${m.nproc} | kernel ${m.kernel} | load average before the run ${m.load_before}`);
  line(` wrk -t${m.threads} -c${m.connections}, ${m.warmup_s} s warmup + ${m.duration_s} s measured; wrk shares the ${m.nproc} cores with the servers.`);
  line(` CPU = utime + stime over the measured run from /proc (CLK_TCK ${m.clk_tck}); postgres = every postgres process plus the`);
  line(' backends its postmaster reaped. req/CPU-s = requests / that process\'s CPU seconds.');
  line('='.repeat(100));
  line('Baselines');
  const o = B.openssl ?? {};
  const adj = (x) => (x?.before != null ? ` (mean of ${fmt(x.before, 1)} before and ${fmt(x.after, 1)} after)` : '');
  if (B.openssl) {
    line(`  openssl rsa2048 sign/s (1 core)      ${fmt(o.rsa2048_sign_per_s, 1).padStart(10)}   verify/s ${fmt(o.rsa2048_verify_per_s, 1)}`);
    line(`  openssl ecdsap256 sign/s (1 core)    ${fmt(o.ecdsap256_sign_per_s, 1).padStart(10)}   verify/s ${fmt(o.ecdsap256_verify_per_s, 1)}`);
  }
  const rc = B['openssl-rsa2048-sign-next-to-cc'];
  if (rc) line(`  openssl rsa2048 sign/s next to cc    ${fmt(rc.mean, 1).padStart(10)}${adj(rc)}`);
  if (B.argon2) line(`  argon2id 19MiB t=2 p=1, ${B.argon2.threads} threads   ${fmt(B.argon2.hashes_per_sec, 1).padStart(10)} hashes/s${adj(B.argon2)}`);
  for (const a of ['RS256', 'ES256']) {
    const v = B[`validate-${a}`];
    if (v) line(`  keycard bench validate ${a}         ${fmt(v.verifications_per_sec, 1).padStart(10)} /s; openssl verify next to it ${fmt(v.openssl_verify_per_s, 1)}${adj({ before: v.openssl_verify_before, after: v.openssl_verify_after })}`);
  }
  if (B.pgbench) {
    const p = B.pgbench;
    line(`  pgbench -N -c ${p.clients} -j ${p.threads} (scale ${p.scale})    ${fmt(p.tps, 1).padStart(10)} tps, ${p.failed} failed, latency ${fmt(p.latency_ms, 2)} ms; postgres ${fmt(p.postgres_cpu_us_per_txn, 1)} µs CPU/txn`);
  }
  line('');
  line(`${'Load phases'.padEnd(34)} ${'req/s'.padStart(9)} ${'errors'.padStart(7)} ${'p50 ms'.padStart(8)} ${'p90 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'wrk cores'.padStart(11)} ${'machine cores'.padStart(14)}`);
  line(`${'    process'.padEnd(32)} ${'cores'.padStart(7)} ${'req/CPU-s'.padStart(10)} ${'CPU µs/req'.padStart(11)} ${'peak RSS MiB'.padStart(13)} ${'user µs/req'.padStart(12)}`);
  for (const [n, x] of Object.entries(r.measurements)) {
    const lat = (k) => fmt(x.latency_us?.[k] != null ? x.latency_us[k] / 1000 : null, 2).padStart(8);
    line(`  ${n.padEnd(32)} ${fmt(x.rps, 1).padStart(9)} ${fmt(x.errors).padStart(7)} ${lat('p50')} ${lat('p90')} ${lat('p99')} ${fmt(x.wrk_cpu_s / x.duration_s, 2).padStart(11)} ${fmt(x.machine_busy_s / x.duration_s, 2).padStart(14)}`);
    for (const p of x.procs) {
      line(`    ${p.role.padEnd(28)} ${fmt(p.cores, 2).padStart(7)} ${fmt(p.req_per_cpu_s).padStart(10)} ${fmt(p.cpu_us_per_req, 1).padStart(11)} ${(p.rss_peak_kib != null ? fmt(p.rss_peak_kib / MIB, 1) : '').padStart(13)} ${fmt(p.user_us_per_req, 1).padStart(12)}`);
    }
  }
  const F = r.facts;
  const idle = Object.entries(F).filter(([k]) => /idle-rss-kib/.test(k)).map(([k, v]) => `${k.replace('idle-rss-kib-', '')} ${fmt(v / MIB, 1)}`);
  if (idle.length) line(`  idle RSS MiB: ${idle.join(', ')}`);
  for (const [k, v] of Object.entries(F).filter(([x]) => x.startsWith('ready-'))) line(`  ${k}: median ${fmt(v.median_ms, 1)} ms (runs ${v.runs_ms.join(', ')})`);
  if (F['scale-load']) {
    const s = F['scale-load'];
    line(`  scale bulk load: ${fmt(s.load_s, 1)} s for ${s.users} users, ${s.clients} clients, ${s.grants} grants, ${s.refresh_tokens} refresh tokens (${s.db_mib} MiB)`);
  }
  line('  (node-oidc-provider: one node process, in-memory adapter; its introspection uses opaque tokens, it refuses');
  line('   to introspect its JWTs. pg2-*: two Keycard nodes on one database, two wrk at once, latency = worse node.)');
  line('');
  const head = (t, extra = '') => line(`${t.padEnd(68)} ${'value'.padStart(9)} ${'baseline'.padStart(11)} ${'ratio'.padStart(8)}${extra}`);
  head('Ratios (informational, no target)');
  for (const x of r.ratios) {
    if (x.value == null || x.baseline == null) continue;
    line(`  ${x.name.padEnd(66)} ${fmt(x.value, 1).padStart(9)} ${fmt(x.baseline, 1).padStart(11)} ${(x.ratio != null ? `${fmt(x.ratio, 2)}x` : '').padStart(8)}`);
  }
  line('');
  head('Targets', `   ${'need'.padEnd(13)} result`);
  for (const t of r.targets) {
    line(`  ${t.name.padEnd(66)} ${fmt(t.value, 1).padStart(9)} ${fmt(t.baseline, 1).padStart(11)} ${(t.ratio != null ? `${fmt(t.ratio, 2)}x` : '').padStart(8)}   ${t.need.padEnd(13)} ${t.status}`);
  }
  if (r.skipped.length) {
    line('');
    line('Skipped:');
    for (const s of r.skipped) line(`  - ${s.phase}: ${s.reason}`);
  }
  if (r.problems.length) {
    line('');
    line('Problems:');
    for (const e of r.problems) line(`  - ${e}`);
  }
  line('');
  line(`results: ${r.meta.results_path ?? 'bench/out/results.json'}`);
  return L.join('\n');
}

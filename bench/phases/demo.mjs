// The demo's start-up (issue 13: the whole demo ready in at most 1 s): `keycard demo --json`
// from spawn to its JSON line, which it prints only once every part (authorization server,
// demo API, gateway, web app) is listening and the web app has read Keycard's discovery
// document. The first start is in a fresh data folder (signing keys are generated); the
// restarts reuse it, as a second `cargo run --release -- demo` does.
//
// Entry point: `startup(ctx)`. Records the fact `demo-startup` {first_ms, restarts_ms,
// reported_ms}; the report's target line reads it.
import path from 'node:path';
import { readFileSync, rmSync } from 'node:fs';

import { spawnServer, sleep, waitPortFree } from '../lib/proc.mjs';

async function once(ctx, dir, i) {
  const cfg = ctx.cfg;
  const ports = [cfg.DEMO_PORT, cfg.DEMO_PORT + 1, cfg.DEMO_PORT + 2, cfg.DEMO_PORT + 3];
  for (const p of ports) await waitPortFree(p);
  const log = path.join(cfg.OUT, `demo-${i}.log`);
  rmSync(log, { force: true });
  const s = spawnServer(`demo-${i}`, cfg.KEYCARD_BIN, ['demo', '--json', '--dir', dir,
    '--addr', `127.0.0.1:${ports[0]}`, '--gateway-addr', `127.0.0.1:${ports[1]}`,
    '--api-addr', `127.0.0.1:${ports[2]}`, '--app-addr', `127.0.0.1:${ports[3]}`], {
    env: { RUST_LOG: cfg.KEYCARD_LOG }, log,
  });
  for (;;) {
    let line = null;
    try {
      line = readFileSync(log, 'utf8').split('\n').find((l) => l.startsWith('{"'));
    } catch { /* not written yet */ }
    if (line) {
      const wall = performance.now() - s.t0;
      const info = JSON.parse(line);
      s.child.kill('SIGINT');
      await s.exited;
      if (s.exit.code !== 0) throw new Error(`keycard demo did not exit cleanly on SIGINT: ${JSON.stringify(s.exit)}`);
      return { wall_ms: Math.round(wall), reported_ms: info.startup_ms };
    }
    if (s.exit) throw new Error(`keycard demo exited before its JSON line; log ${log}`);
    if (performance.now() - s.t0 > 30000) throw new Error(`no JSON line from keycard demo in 30 s; log ${log}`);
    await sleep(2);
  }
}

export async function startup(ctx) {
  const dir = path.join(ctx.cfg.OUT, 'demo-data');
  rmSync(dir, { recursive: true, force: true });
  const first = await once(ctx, dir, 0);
  const restarts = [];
  for (let i = 1; i <= 3; i += 1) restarts.push(await once(ctx, dir, i));
  ctx.fact('demo-startup', {
    first_ms: first.wall_ms,
    restarts_ms: restarts.map((r) => r.wall_ms),
    reported_ms: [first, ...restarts].map((r) => r.reported_ms),
  });
  ctx.log(`demo-startup: first ${first.wall_ms} ms, restarts ${restarts.map((r) => r.wall_ms).join(', ')} ms (spawn to the JSON line)`);
}

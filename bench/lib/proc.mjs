// Process management for the benchmark: every server the driver starts goes through `spawnServer`,
// is waited for with `waitHttp` and stopped by `stop` or, at the end of each phase, `stopAll`.
//
// Entry points: `spawnServer`, `waitHttp`, `stop`, `stopAll`, `run` (a short command, output
// captured), `portFree`, `sleep`.
//
// Invariant: a server started here is stopped by the driver whatever happens to the phase (an
// exception, Ctrl-C): the phase runner calls `stopAll` in a `finally`, and the exit handlers
// kill what is left. Servers log to their own file under bench/out, never to the driver's output.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';

const live = new Set();

export const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

// The last lines of a log file, for an error message that explains why a server died.
export function logTail(file, lines = 15) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

// Starts a long-running server with its output appended to `log`; returns a handle whose `pid` is
// the server's own process (no shell in between, so its /proc entry is the server's).
export function spawnServer(name, cmd, args, { env = {}, cwd, log }) {
  const fd = openSync(log, 'a');
  const child = spawn(cmd, args, {
    cwd, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const s = {
    name, cmd, args, log, child, pid: child.pid, exit: null, t0: performance.now(),
  };
  s.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => { s.exit = { code, signal }; live.delete(s); resolve(s.exit); });
    child.on('error', (e) => { s.exit = { code: -1, signal: null, error: e.message }; live.delete(s); resolve(s.exit); });
  });
  live.add(s);
  return s;
}

// One GET; resolves to the status code, or 0 when the connection failed.
export function probe(url, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const r = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    r.on('error', () => resolve(0));
    r.on('timeout', () => { r.destroy(); resolve(0); });
  });
}

// Polls `url` every ~2 ms until it answers 200; returns the milliseconds since the server was
// spawned. Throws (with the end of the server's log) when the server exits first or on timeout.
export async function waitHttp(url, server, timeoutMs = 60000) {
  for (;;) {
    if ((await probe(url)) === 200) return performance.now() - server.t0;
    if (server.exit) {
      throw new Error(`${server.name} (pid ${server.pid}) exited (${JSON.stringify(server.exit)}) before ${url} answered 200; log ${server.log}:\n${logTail(server.log)}`);
    }
    if (performance.now() - server.t0 > timeoutMs) {
      throw new Error(`${url} not 200 after ${timeoutMs} ms; log ${server.log}:\n${logTail(server.log)}`);
    }
    await sleep(2);
  }
}

// SIGTERM, then SIGKILL after 5 s.
export async function stop(server) {
  if (!server || server.exit) return;
  try { process.kill(server.pid, 'SIGTERM'); } catch { /* already gone */ }
  const t = setTimeout(() => { try { process.kill(server.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
  await server.exited;
  clearTimeout(t);
}

export async function stopAll() {
  await Promise.all([...live].map(stop));
}

// Resources a phase created that outlive its servers (a PostgreSQL database): `onCleanup`
// registers an async undo, `cleanup` (run after every phase and on Ctrl-C) stops the servers and
// runs the undos, newest first.
const undos = [];
export function onCleanup(fn) { undos.push(fn); }
export async function cleanup() {
  await stopAll();
  while (undos.length) {
    try { await undos.pop()(); } catch (e) { process.stderr.write(`[bench] cleanup: ${e.message}\n`); }
  }
}

// Short commands still running (a wrk when Ctrl-C comes).
const running = new Set();

// On any exit of the driver, no server or command is left behind; Ctrl-C also runs the undos.
process.on('exit', () => {
  for (const s of live) { try { process.kill(s.pid, 'SIGKILL'); } catch { /* gone */ } }
  for (const c of running) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { cleanup().finally(() => process.exit(130)); });
}

// Runs a short command to completion: { code, stdout, stderr }. `input` is written to its stdin.
export function run(cmd, args, { env = {}, cwd, input, timeoutMs = 600000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { child.kill('SIGKILL'); stderr += `\n(killed after ${timeoutMs} ms)`; }, timeoutMs);
    child.on('error', (e) => { clearTimeout(t); running.delete(child); resolve({ code: -1, stdout, stderr: `${stderr}${e.message}`, pid: child.pid }); });
    child.on('close', (code) => { clearTimeout(t); running.delete(child); resolve({ code, stdout, stderr, pid: child.pid }); });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

// Like `run`, but throws with the command's stderr when it exits non-zero.
export async function runOk(cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const firstErr = (r.stderr || r.stdout).split('\n').find((l) => /error|fatal|panic|unsupported|unrecognized/i.test(l))
      ?? (r.stderr || r.stdout).split('\n')[0];
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${firstErr.slice(0, 400)}`);
  }
  return r;
}

export function portFree(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', () => resolve(true));
  });
}

// Waits until `port` is free (a stopped server's socket may linger for a moment).
export async function waitPortFree(port, timeoutMs = 5000) {
  const t0 = performance.now();
  while (!(await portFree(port))) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`port ${port} is in use`);
    await sleep(50);
  }
}

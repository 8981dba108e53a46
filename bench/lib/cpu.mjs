// CPU and memory accounting: what each server process spent over a measured window.
//
// `cpuSnapshot(watch)` reads /proc right before a measured run and `cpuDelta(before, after)` right
// after it (never around the warmup). A watched process is counted with its whole process tree:
// utime + stime of every live process in the tree (a process's /proc/PID/stat already sums all
// its threads) plus cutime + cstime (the CPU of children the tree has already reaped, e.g. an
// nginx worker that was replaced). `{ postgres: true }` watches every PostgreSQL cluster on the
// machine: the trees of all `postgres` processes whose parent is not `postgres` (the
// postmasters). Backends that start and end inside the window are therefore counted too: the
// postmaster reaps them, so their CPU lands in its cutime/cstime.
//
// The same snapshots also record the load generator's CPU (the driver's own reaped children:
// only wrk exits inside a window) and the machine's busy time from /proc/stat, for context.
// `startRssSampler` samples VmRSS every 200 ms.
//
// Not here: what a request is (lib/measure.mjs divides by wrk's request count).
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

// /proc/PID/stat: the command name is in parentheses and may hold spaces, so split after the last
// ')'. Field n of proc(5) is f[n - 3] below.
function parseStat(text) {
  const r = text.lastIndexOf(')');
  const f = text.slice(r + 2).split(' ');
  return {
    comm: text.slice(text.indexOf('(') + 1, r),
    ppid: Number(f[1]),
    utime: Number(f[11]),
    stime: Number(f[12]),
    cutime: Number(f[13]),
    cstime: Number(f[14]),
  };
}

export function procStat(pid) {
  try { return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return null; }
}

export function procTable() {
  const m = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = procStat(d);
    if (s) m.set(Number(d), s);
  }
  return m;
}

export function processTree(table, root) {
  const kids = new Map();
  for (const [pid, s] of table) {
    if (!kids.has(s.ppid)) kids.set(s.ppid, []);
    kids.get(s.ppid).push(pid);
  }
  const out = [];
  const stack = table.has(root) ? [root] : [];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    stack.push(...(kids.get(p) ?? []));
  }
  return out;
}

// { all, user }: utime + stime (and the reaped children's) of the tree, and the user part alone.
function treeTicks(table, root) {
  const t = { all: 0, user: 0 };
  for (const p of processTree(table, root)) {
    const s = table.get(p);
    t.all += s.utime + s.stime + s.cutime + s.cstime;
    t.user += s.utime + s.cutime;
  }
  return t;
}

export function postgresRoots(table) {
  return [...table].filter(([, s]) => s.comm === 'postgres' && table.get(s.ppid)?.comm !== 'postgres').map(([p]) => p);
}

// Busy ticks of the whole machine: everything but idle, iowait and steal.
function machineBusyTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq] = f;
  return user + nice + system + irq + softirq;
}

function reapedChildrenTicks() {
  const s = procStat('self');
  return s.cutime + s.cstime;
}

// watch: [{ role, pid } | { role, postgres: true }]
export function cpuSnapshot(watch) {
  const table = procTable();
  const procs = {};
  for (const w of watch) {
    const roots = w.postgres ? postgresRoots(table) : [w.pid];
    const alive = roots.filter((p) => table.has(p));
    const ticks = alive.map((p) => treeTicks(table, p));
    procs[w.role] = {
      ticks: ticks.reduce((a, t) => a + t.all, 0), user: ticks.reduce((a, t) => a + t.user, 0), roots: alive.length,
    };
  }
  return {
    t: performance.now(), procs, wrk: reapedChildrenTicks(), machine: machineBusyTicks(),
  };
}

// Seconds of CPU per watched role between two snapshots (`procs`: user + system; `user`: the
// user-space part alone); `missing` lists roles whose process was gone at either end (their
// figure would be meaningless).
export function cpuDelta(a, b) {
  const procs = {};
  const user = {};
  const missing = [];
  for (const [role, x] of Object.entries(b.procs)) {
    const y = a.procs[role];
    if (!y || !x.roots || !y.roots) missing.push(role);
    procs[role] = (x.ticks - (y?.ticks ?? 0)) / CLK_TCK;
    user[role] = (x.user - (y?.user ?? 0)) / CLK_TCK;
  }
  return {
    wall_s: (b.t - a.t) / 1000,
    procs,
    user,
    missing,
    wrk_s: (b.wrk - a.wrk) / CLK_TCK,
    machine_busy_s: (b.machine - a.machine) / CLK_TCK,
  };
}

export function rssKib(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// Samples the summed RSS of `pids` (the process trees are taken once, at the start) every 200 ms
// until `stop()`, which returns { samples, max_kib, avg_kib }.
export function startRssSampler(pids) {
  const table = procTable();
  const all = pids.flatMap((p) => processTree(table, p));
  const v = [];
  const sample = () => {
    const r = all.map(rssKib).filter((x) => x != null);
    if (r.length) v.push(r.reduce((a, b) => a + b, 0));
  };
  sample();
  const timer = setInterval(sample, 200);
  return {
    stop() {
      clearInterval(timer);
      if (!v.length) return { samples: 0, max_kib: null, avg_kib: null };
      return { samples: v.length, max_kib: Math.max(...v), avg_kib: Math.round(v.reduce((a, b) => a + b, 0) / v.length) };
    },
  };
}

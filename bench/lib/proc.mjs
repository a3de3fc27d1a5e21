// What the benchmarks read about their processes from /proc (CPU ticks, RSS, fds, children), and
// the small process helpers both run.mjs scripts use. Linux only, like the benchmarks.

import { execFileSync } from "node:child_process";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";

let ticks; // CLK_TCK, read once

/** The pids whose parent is `ppid` (e.g. nginx's workers). */
export function childPids(ppid) {
  const pids = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === ppid) pids.push(Number(d));
    } catch {}
  }
  return pids;
}

/** A numeric field of /proc/PID/status (VmRSS, VmHWM, Threads: kB or a count); 0 when gone. */
export function procStatus(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export function sumStatus(pids, field) {
  return pids.reduce((a, pid) => a + procStatus(pid, field), 0);
}

/** Open fds of one process or several. */
export function fdCount(pids) {
  let n = 0;
  for (const pid of [pids].flat()) {
    try {
      n += readdirSync(`/proc/${pid}/fd`).length;
    } catch {}
  }
  return n;
}

/** utime + stime of every process (and its threads), in clock ticks. */
export function cpuTicks(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += Number(fields[11]) + Number(fields[12]);
    } catch {}
  }
  return total;
}

export function clockTicks() {
  ticks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  return ticks;
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function kill(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {}
}

/** An executable on PATH (or in the sbin directories Debian keeps daemons in). */
export function which(name) {
  for (const dir of (process.env.PATH ?? "")
    .split(delimiter)
    .concat(["/usr/bin", "/usr/sbin", "/bin", "/sbin"])) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** A TCP port free on 127.0.0.1 right now (e.g. a control plane's xDS port). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.once("error", reject);
  });
}

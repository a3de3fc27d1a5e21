#!/usr/bin/env node
// Waypoint benchmark: one HTTP/1.1 workload (keep-alive GETs, 1 KiB answers; half carry
// `end-user: jason` → v2, the rest split 90/10 v1/v2) against the same two servers over six paths:
//   direct   client → reviews-v1, no routing: the limit
//   core     client → the waypoint's routing core in one Node process, no HBONE (core-proxy.mjs)
//   nginx    client → nginx: map $http_end_user + split_clients 90/10, upstream keepalive
//   haproxy  client → haproxy: use_backend on req.hdr(end-user) + rand(100), http-reuse always
//   full     client → SOCKS5 on its pod's ztunnel → HBONE → waypoint → HBONE → ztunnel → v1/v2,
//            control plane, both ztunnels and the waypoint in one Node process (LocalMesh)
//   split    the same hops, each proxy its own process from its bin script, as in a cluster
// It prints req/s, p50/p99 latency and ratios to direct, the proxies' CPU per 1,000 requests and RSS
// under load, and what it saw go wrong. Each path's proxies run only for that path's load (full and
// split use the same addresses); every process it starts is stopped after its path, at the end, on
// failure and on Ctrl-C. Figures only: nothing here fails on a number.
// Usage: node bench/waypoint/run.mjs [--seconds 10] [--warmup 2] [--connections 16]
//        [--paths direct,core,nginx,haproxy,full,split] [--keep] [--json FILE] [--log-level error]
// Needs a build (`npx -y pnpm@10 run build`), nginx and haproxy (`apt-get install -y nginx haproxy`).

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { cpus, loadavg } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import {
  alive,
  childPids,
  clockTicks,
  cpuTicks,
  fdCount,
  freePort,
  kill,
  sleep,
  sumStatus,
  which,
} from "../lib/proc.mjs";
import * as C from "./config.mjs";
import { haproxyConfig, nginxConfig } from "./peers.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith("--")) continue;
  const next = process.argv[i + 1];
  args[a.slice(2)] = next === undefined || next.startsWith("--") ? "true" : process.argv[++i];
}
const SECONDS = Number(args.seconds ?? 10);
const WARMUP = Number(args.warmup ?? 2);
const CONNECTIONS = Number(args.connections ?? 16);
const ALL_PATHS = ["direct", "core", "nginx", "haproxy", "full", "split"];
/** The paths through the mesh: SOCKS5 in, the waypoint's and the ztunnels' checks after the load. */
const MESH_PATHS = new Set(["full", "split"]);
const PATHS = (args.paths ?? ALL_PATHS.join(",")).split(",");
const KEEP = args.keep === "true";
const MESH_LOG_LEVEL = args["log-level"] ?? "error";
/** The waypoint's keep-alive connections after a run: one per concurrent request, per app pod (v1, v2). */
const POOLED = 2 * CONNECTIONS;
/** A request with no answer by then is counted as a timeout (a stall) and its connection replaced. */
const REQUEST_TIMEOUT_MS = 10_000;
/** half jason (all v2) + half × 10% = 55% of answers from v2 on every routed path. */
const EXPECTED_V2_SHARE = 0.55;

const LABELS = {
  direct: "direct",
  core: "waypoint routing core (no HBONE)",
  nginx: "nginx",
  haproxy: "haproxy",
  full: "full path (SOCKS5 → ztunnel → waypoint → ztunnel)",
  split: "split: the full path, one process per proxy",
};
/** The split path's processes, by role, as its report names them (ZTUNNEL_A is the client's). */
const ZTUNNEL_A = `ztunnel ${C.NODE_A.name}`;
const ZTUNNEL_B = `ztunnel ${C.NODE_B.name}`;
const CONTROL_PLANE = "control plane";

const out = join(here, "out");
const children = new Map(); // pid → { name, child }
const stopRequested = new WeakSet(); // children stopped on purpose: their exit is no problem
const names = new WeakMap(); // child → its name (its log file's), after it has exited too
const extraPids = new Set(); // nginx workers: ours, but children of its master
const problems = [];

// ---- preconditions ----
for (const p of PATHS)
  if (!ALL_PATHS.includes(p)) fatal(`unknown path "${p}"; the paths are ${ALL_PATHS.join(",")}`);
for (const f of [
  "testbed/dist/index.js",
  "controlplane/dist/main.js",
  "ztunnel/dist/main.js",
  "waypoint/dist/main.js",
  "waypoint/dist/route/index.js",
  "waypoint/dist/proxy/request/build.js",
])
  if (!existsSync(join(root, "packages", f)))
    fatal(`packages/${f} is missing: build first (cd ${root} && npx -y pnpm@10 run build)`);
const nginxBin = which("nginx");
const haproxyBin = which("haproxy");
const missing = [
  ...(PATHS.includes("nginx") && !nginxBin ? ["nginx"] : []),
  ...(PATHS.includes("haproxy") && !haproxyBin ? ["haproxy"] : []),
];
if (missing.length > 0)
  fatal(
    `${missing.join(" and ")} not installed; the ${missing.join(" and ")} path${missing.length > 1 ? "s need" : " needs"} ${missing.length > 1 ? "them" : "it"}.\n` +
      `  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y ${missing.join(" ")}\n` +
      `  (or skip: --paths ${PATHS.filter((p) => !missing.includes(p)).join(",")})`,
  );
if (!existsSync("/proc/self/status")) fatal("needs Linux /proc for the proxies' CPU and RSS");

// ---- stop everything on any exit ----
let stopping;
function stopAll() {
  stopping ??= (async () => {
    // Reverse start order: load, the path's proxies (waypoint and ztunnels before their control
    // plane), backend.
    for (const { name, child } of [...children.values()].reverse()) await stopChild(name, child);
    for (const pid of extraPids) if (alive(pid)) kill(pid, "SIGKILL");
  })();
  return stopping;
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    process.stderr.write(`\n${sig}: stopping every process started by the bench\n`);
    stopAll().finally(() => process.exit(130));
  });
}
process.on("exit", () => {
  for (const { child } of children.values()) child.kill("SIGKILL");
  for (const pid of extraPids) kill(pid, "SIGKILL");
});

const results = {};
const machine = {};
let exitCode = 0;
try {
  await main();
} catch (err) {
  exitCode = 1;
  process.stderr.write(`\nbench failed: ${err?.stack ?? err}\nlogs kept in ${join(out, "logs")}\n`);
} finally {
  await stopAll();
  if (!KEEP && exitCode === 0 && problems.length === 0) rmSync(out, { recursive: true, force: true });
  else if (exitCode === 0) process.stderr.write(`logs and configs kept in ${relative(root, out)}/\n`);
}
process.exit(exitCode);

async function main() {
  Object.assign(machine, describeMachine());
  if (machine.loadBefore > cpus().length / 2)
    process.stderr.write(
      `warning: load average ${machine.loadBefore.toFixed(2)} on ${cpus().length} CPUs; the figures will be noisy\n`,
    );
  rmSync(out, { recursive: true, force: true });
  for (const d of ["manifests", "state", "logs", "nginx/tmp"]) mkdirSync(join(out, d), { recursive: true });
  if (PATHS.some((p) => MESH_PATHS.has(p))) await writeManifests(join(out, "manifests"));

  const backend = startNode("backend", "backend.mjs", []);
  await waitLine(backend, "ready", 10_000);
  // One path at a time: its proxies start, must answer and route, sit idle a moment (RSS, fds),
  // carry the load, are checked, and stop before the next path's start. full and split bind the
  // same addresses (the nodes', the client pod's SOCKS5 port, the waypoint's), and an idle proxy
  // left running would take CPU from the path being measured.
  for (const path of PATHS) {
    const proxy = await startPath(path);
    // The mesh applies the VirtualService a moment after it is ready: until then, no header routing.
    await until(() => routesRight(path), MESH_PATHS.has(path) ? 30_000 : 5_000, `the ${path} path to route`);
    await sleep(1000);
    const idle = idleFigures(proxy);
    const before = MESH_PATHS.has(path) ? await meshCounters() : undefined;

    process.stderr.write(`== ${path}: ${CONNECTIONS} connections, ${WARMUP} s warm-up + ${SECONDS} s ==\n`);
    const stats0 = await backendStats();
    const r = await runLoad(path, proxy);
    const stats1 = await backendStats();
    r.backendConnections =
      stats1.v1.connections + stats1.v2.connections - stats0.v1.connections - stats0.v2.connections;
    r.backendRequests = stats1.v1.requests + stats1.v2.requests - stats0.v1.requests - stats0.v2.requests;
    r.rssIdleKb = idle.total.rssKb;
    for (const [name, part] of Object.entries(r.parts)) part.rssIdleKb = idle.parts[name].rssKb;
    results[path] = r;
    checkLoad(path, r);
    if (MESH_PATHS.has(path)) Object.assign(r, await afterMesh(path, proxy, idle, before, r.parts));
    await stopPath(proxy);
    // After the stop, so what the proxies log while draining and exiting is read too.
    for (const name of proxy.logs) checkLog(path, name);
    process.stderr.write(
      `   ${fmt(r.rps)} req/s, p50 ${r.p50ms.toFixed(3)} ms, p99 ${r.p99ms.toFixed(3)} ms, ${errorCount(r)} errors\n`,
    );
  }
  machine.loadAfter = loadavg()[0];
  if (PATHS.includes("core")) machine.routeDecisionUs = await routeDecisionCost();
  report();
  if (args.json) writeFileSync(args.json, JSON.stringify({ machine, results, problems }, null, 2));
}

// ---- each path's proxies ----

/**
 * Starts the path's proxies and returns what the runner measures of them: `pids`, summed into the
 * path's CPU and RSS figures; `parts`, named groups of pids reported one by one (split: each
 * process, the control plane among them but outside the sums); `children`, to stop in reverse;
 * `logs`, the log files checked for warn/error lines.
 */
async function startPath(path) {
  const proxy = { pids: [], parts: {}, children: [], logs: [] };
  if (path === "core") {
    const core = startNode("core-proxy", "core-proxy.mjs", []);
    await waitLine(core, "ready", 10_000);
    Object.assign(proxy, { pids: [core.pid], children: [core] });
  } else if (path === "nginx") Object.assign(proxy, await startNginx());
  else if (path === "haproxy") Object.assign(proxy, await startHaproxy());
  else if (path === "full") {
    const mesh = startNode("mesh", "mesh.mjs", [
      "--dir",
      join(out, "manifests"),
      "--state",
      join(out, "state", "full"),
      "--log-level",
      MESH_LOG_LEVEL,
    ]);
    await waitLine(mesh, "ready", 40_000);
    Object.assign(proxy, { pids: [mesh.pid], children: [mesh], logs: ["mesh"] });
  } else if (path === "split") Object.assign(proxy, await startSplit());
  return proxy;
}

async function stopPath(proxy) {
  for (const child of [...proxy.children].reverse()) await stopChild(names.get(child), child);
}

/** VmRSS and open fds of the path's proxies, summed and per part. */
function idleFigures(proxy) {
  const figures = (pids) => ({ rssKb: sumStatus(pids, "VmRSS"), fds: fdCount(pids) });
  const parts = {};
  for (const [name, pids] of Object.entries(proxy.parts)) parts[name] = figures(pids);
  return { total: figures(proxy.pids), parts };
}

// ---- the load ----

function target(path) {
  if (path === "direct") return { target: C.V1 };
  if (path === "core") return { target: C.CORE };
  if (path === "nginx") return { target: C.NGINX };
  if (path === "haproxy") return { target: C.HAPROXY };
  return { target: { host: C.SERVICE.vip, port: C.SERVICE.port }, socks: C.SOCKS };
}

/** Runs one load process; samples the proxies' CPU and RSS over its measured window. */
async function runLoad(path, proxy) {
  const cfg = {
    ...target(path),
    localAddress: C.CLIENT_IP,
    connections: CONNECTIONS,
    warmupMs: WARMUP * 1000,
    durationMs: SECONDS * 1000,
    hostHeader: `${C.SERVICE.host}:${C.SERVICE.port}`,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  };
  const child = startNode(`load-${path}`, "load.mjs", [JSON.stringify(cfg)]);
  let finishSampling;
  const lines = [];
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const deadline = setTimeout(
    () => child.kill("SIGKILL"),
    (WARMUP + SECONDS) * 1000 + REQUEST_TIMEOUT_MS + 20_000,
  );
  onLines(child, (line) => {
    lines.push(line);
    if (line.includes('"measuring"')) finishSampling = sample({ total: proxy.pids, ...proxy.parts });
  });
  await exited;
  clearTimeout(deadline);
  const sampled = finishSampling?.();
  // Ctrl-C stops the load too: its last line is then no result.
  if (stopping) throw new Error(`stopped before the ${path} load finished`);
  let r;
  try {
    r = JSON.parse(lines.at(-1));
  } catch {
    throw new Error(`the ${path} load exited ${child.exitCode ?? child.signalCode} without a result`);
  }
  const perThousand = (cpuS) => (r.requests > 0 ? (cpuS * 1000) / (r.requests / 1000) : 0);
  const parts = {};
  for (const name of Object.keys(proxy.parts))
    parts[name] = {
      cpuMsPer1k: perThousand(sampled?.[name].cpuS ?? 0),
      rssLoadKb: sampled?.[name].rssMaxKb ?? 0,
      rssPeakKb: sumStatus(proxy.parts[name], "VmHWM"),
    };
  const cpuS = sampled?.total.cpuS ?? 0;
  return {
    ...r,
    proxyCpuS: cpuS,
    proxyCpuMsPer1k: perThousand(cpuS),
    rssLoadKb: sampled?.total.rssMaxKb ?? 0,
    rssPeakKb: sumStatus(proxy.pids, "VmHWM"),
    parts,
  };
}

/**
 * From now until the returned function is called: CPU seconds and the highest VmRSS (sampled every
 * 250 ms) of each named group of pids. A group's RSS is the sum over its pids at each sample.
 */
function sample(groups) {
  const cpu0 = {};
  const rssMaxKb = {};
  for (const [name, pids] of Object.entries(groups)) {
    cpu0[name] = cpuTicks(pids);
    rssMaxKb[name] = 0;
  }
  const timer = setInterval(() => {
    for (const [name, pids] of Object.entries(groups))
      rssMaxKb[name] = Math.max(rssMaxKb[name], sumStatus(pids, "VmRSS"));
  }, 250);
  return () => {
    clearInterval(timer);
    const figures = {};
    for (const [name, pids] of Object.entries(groups))
      figures[name] = { cpuS: (cpuTicks(pids) - cpu0[name]) / clockTicks(), rssMaxKb: rssMaxKb[name] };
    return figures;
  };
}

function checkLoad(path, r) {
  const errors = errorCount(r);
  if (errors > 0) {
    // The proxies say why in the body (the waypoint: "... reset reason: <error>").
    const why = [...new Set(r.errorSamples.map((a) => a.slice(a.indexOf("\r\n\r\n") + 4).trim()))];
    problems.push(
      `${path}: ${errors} errors ${JSON.stringify(r.errors)}${why.length ? `; answers: ${JSON.stringify(why)}` : ""}`,
    );
  }
  if (r.backends.other > 0) problems.push(`${path}: ${r.backends.other} 200 answers without x-backend`);
  if (r.backendRequests < r.requests)
    problems.push(
      `${path}: the servers saw ${r.backendRequests} requests, fewer than the ${r.requests} answered`,
    );
  if (path === "direct") return;
  if (r.jasonNotV2 > 0) problems.push(`${path}: ${r.jasonNotV2} end-user: jason requests not answered by v2`);
  const share = v2Share(r);
  if (Math.abs(share - EXPECTED_V2_SHARE) > 0.02)
    problems.push(`${path}: v2 answered ${(share * 100).toFixed(1)}% (expected ~55%)`);
}

/** One request (Connection: close) per header variant: jason must reach v2, the rest must answer. */
async function routesRight(path) {
  const { target: t, socks } = target(path);
  for (const jason of [true, false, true, false]) {
    const raw = await oneRequest(t, socks, jason);
    const backend = /\r\nx-backend:\s*(v\d)/i.exec(raw)?.[1];
    if (!raw.startsWith("HTTP/1.1 200")) return false;
    if (path !== "direct" && jason && backend !== "v2") return false;
  }
  return true;
}

async function oneRequest(t, socks, jason) {
  const { socksConnect } = await import("@ambient/testbed");
  const s = socks
    ? await socksConnect(socks, t, { localAddress: C.CLIENT_IP })
    : connect({ host: t.host, port: t.port, localAddress: C.CLIENT_IP });
  return new Promise((resolve, reject) => {
    const chunks = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error("no answer within 3 s"));
    }, 3000);
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks).toString("latin1"));
    };
    s.on("data", (c) => chunks.push(c));
    s.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // The SOCKS5 socket allows half-open: the server's FIN arrives as "end", never "close".
    s.once("end", done);
    s.once("close", done);
    s.write(
      `GET / HTTP/1.1\r\nHost: ${C.SERVICE.host}:${C.SERVICE.port}\r\n${jason ? "end-user: jason\r\n" : ""}Connection: close\r\n\r\n`,
    );
    s.resume();
  });
}

/** The routing decision alone (route table lookup, header match, weighted pick), in this process:
 *  how much of the core path's cost is ours rather than node:http's. */
async function routeDecisionCost() {
  const { compileRoutes } = await import("../../packages/waypoint/dist/route/index.js");
  const table = compileRoutes([C.VIRTUAL_SERVICE], { namespace: C.NAMESPACE });
  const request = (headers) => ({
    method: "GET",
    scheme: "http",
    authority: `${C.SERVICE.host}:${C.SERVICE.port}`,
    path: "/",
    headers: {
      host: `${C.SERVICE.host}:${C.SERVICE.port}`,
      "user-agent": "ambient-bench",
      accept: "*/*",
      ...headers,
    },
    port: C.SERVICE.port,
    protocol: "http/1.1",
    source: {
      ip: C.CLIENT_IP,
      principal: `spiffe://cluster.local/ns/${C.NAMESPACE}/sa/client`,
      namespace: C.NAMESPACE,
    },
    destination: { host: C.SERVICE.host, namespace: C.NAMESPACE, ip: C.SERVICE.vip, port: C.SERVICE.port },
  });
  const requests = [request({ "end-user": "jason" }), request({})];
  const N = 200_000;
  let sink = 0;
  for (let i = 0; i < N; i++) sink += table.route(requests[i & 1]).kind.length; // warm-up (JIT)
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink += table.route(requests[i & 1]).kind.length;
  const ns = Number(process.hrtime.bigint() - t0) / N;
  return sink > 0 ? ns / 1000 : 0;
}

// ---- the mesh paths (full, split): what the mesh says after the load ----

async function meshCounters() {
  const text = await (await fetch(`http://${C.WAYPOINT_IP}:15020/metrics`)).text();
  const codes = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("istio_requests_total{")) continue;
    const code = /response_code="(\d+)"/.exec(line)?.[1] ?? "?";
    const flags = /response_flags="([^"]*)"/.exec(line)?.[1] ?? "?";
    const key = `${code} ${flags}`;
    codes[key] = (codes[key] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  const dump = async (ip) => (await fetch(`http://${ip}:15000/config_dump`)).json();
  const [a, b, w] = await Promise.all([dump(C.NODE_A.ip), dump(C.NODE_B.ip), dump(C.WAYPOINT_IP)]);
  return {
    waypointResponses: codes,
    ztunnelOpen: { [C.NODE_A.name]: a.connections?.open, [C.NODE_B.name]: b.connections?.open },
    waypointPool: { sessions: w.pool?.sessions, activeStreams: w.pool?.activeStreams },
  };
}

/** The mesh's counters, fds and RSS 2 s after the load; `parts` (the load's per-process figures)
 *  gets each process's fds and RSS. */
async function afterMesh(path, proxy, idle, before, parts) {
  const rssEndOfLoadKb = sumStatus(proxy.pids, "VmRSS");
  // Every request is answered; give the last tunnels a moment to close before counting what is left.
  await sleep(2000);
  const after = await meshCounters();
  const responses = {};
  for (const [k, v] of Object.entries(after.waypointResponses)) {
    const d = v - (before.waypointResponses[k] ?? 0);
    if (d) responses[k] = d;
  }
  const r = {
    waypointResponses: responses,
    ztunnelOpenAfter: after.ztunnelOpen,
    waypointPoolAfter: after.waypointPool,
    meshFds: { idle: idle.total.fds, after: fdCount(proxy.pids) },
    meshRssKb: { idle: idle.total.rssKb, endOfLoad: rssEndOfLoadKb, after2s: sumStatus(proxy.pids, "VmRSS") },
  };
  for (const [name, pids] of Object.entries(proxy.parts))
    Object.assign(parts[name], {
      fdsIdle: idle.parts[name].fds,
      fdsAfter: fdCount(pids),
      rssAfter2sKb: sumStatus(pids, "VmRSS"),
    });
  const bad = Object.entries(responses).filter(([k]) => !k.startsWith("200 "));
  if (bad.length > 0)
    problems.push(`${path}: the waypoint answered ${JSON.stringify(Object.fromEntries(bad))}`);
  // node-b's inbound connections outlive the load on purpose: they are the waypoint's keep-alive
  // pool toward the two app pods (POOLED); anything beyond is a leak.
  for (const [node, open] of Object.entries(after.ztunnelOpen)) {
    const pooled = node === C.NODE_B.name ? POOLED : 0;
    if (open > pooled)
      problems.push(
        `${path}: ztunnel ${node} still counts ${open} open connections 2 s after the load (${pooled} may be pooled)`,
      );
  }
  if (after.waypointPool.activeStreams > POOLED)
    problems.push(
      `${path}: the waypoint's HBONE pool still has ${after.waypointPool.activeStreams} active streams (${POOLED} may be pooled)`,
    );
  // One socket per pooled connection (node-b's ztunnel → app), plus a little slack.
  if (r.meshFds.after > r.meshFds.idle + 8 + POOLED)
    problems.push(`${path}: the proxies hold ${r.meshFds.after} fds after the load (${r.meshFds.idle} idle)`);
  return r;
}

/**
 * warn and error lines in a proxy's log (JSON, one record a line), and any line that is not a
 * record (a crash's stack, a Node warning). At the default --log-level error, that is every line.
 */
function checkLog(path, name) {
  const file = join(out, "logs", `${name}.log`);
  if (!existsSync(file)) return;
  const counts = new Map();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let key = `not a log record: ${line.slice(0, 160)}`;
    try {
      const rec = JSON.parse(line);
      if (!["warn", "error", "fatal"].includes(rec.level)) continue;
      key = `${rec.level} ${rec.msg}${rec.err ? `: ${String(rec.err.message ?? rec.err).slice(0, 160)}` : ""}`;
    } catch {}
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  if (counts.size === 0) return;
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3);
  problems.push(
    `${path}: ${name} logged ${total} warn/error lines (logs/${name}.log): ${top.map(([k, n]) => `${n} × ${k}`).join("; ")}`,
  );
}

/**
 * The split path: the control plane, node-a's and node-b's ztunnels and the waypoint, each its
 * own process from its bin script on the manifests folder, as they run in a cluster (the control
 * plane and ztunnels started as bench/ztunnel/run.mjs starts them). The waypoint gets what
 * LocalMesh's startWaypoint gives the in-process one: the Gateway's name and namespace, its pod's
 * address (the Gateway's spec.addresses) and node (node-a, where the Pod of writeManifests is),
 * node-a's token (local mode's CA gives a node's token the identities of that node's pods: here
 * sa/waypoint, the default, named after the Gateway) and admin on the pod IP.
 */
async function startSplit() {
  const state = join(out, "state", "split");
  const xds = `127.0.0.1:${await freePort()}`;
  const bin = (f) => join(root, "packages", f);
  const { nodeArgv } = await import("@ambient/testbed"); // each bin's shipped runtime flags
  // A 2 s drain (the default is 25 s), as the ztunnel bench: each stop waits at most that long.
  const proxyFlags = ["--xds-address", xds, "--drain-deadline", "2s", "--log-level", MESH_LOG_LEVEL];
  const cp = startProcess("controlplane", process.execPath, [
    ...nodeArgv(bin("controlplane/bin/ambient-controlplane.js")),
    "--config-dir",
    join(out, "manifests"),
    "--listen",
    xds,
    "--state-dir",
    state,
    "--log-level",
    MESH_LOG_LEVEL,
  ]);
  const ztunnels = [];
  for (const node of [C.NODE_A, C.NODE_B]) {
    ztunnels.push(
      startProcess(`ztunnel-${node.name}`, process.execPath, [
        ...nodeArgv(bin("ztunnel/bin/ztunnel.js")),
        "--node-name",
        node.name,
        "--node-ip",
        node.ip,
        "--token-file",
        await nodeToken(cp, state, node.name),
        "--admin-on-node-ip",
        ...proxyFlags,
      ]),
    );
  }
  const waypoint = startProcess("waypoint", process.execPath, [
    ...nodeArgv(bin("waypoint/bin/waypoint.js")),
    "--name",
    "waypoint",
    "--namespace",
    C.NAMESPACE,
    "--ip",
    C.WAYPOINT_IP,
    "--node-name",
    C.NODE_A.name,
    "--token-file",
    await nodeToken(cp, state, C.NODE_A.name),
    "--admin-on-pod-ip",
    ...proxyFlags,
  ]);
  // Ready: xDS synced and the workload certificates issued (ztunnel: its node's pods; waypoint: its own).
  await waitReady(ztunnels[0], `http://${C.NODE_A.ip}:15021/healthz/ready`);
  await waitReady(ztunnels[1], `http://${C.NODE_B.ip}:15021/healthz/ready`);
  await waitReady(waypoint, `http://${C.WAYPOINT_IP}:15021/healthz/ready`);
  return {
    pids: [ztunnels[0].pid, waypoint.pid, ztunnels[1].pid],
    parts: {
      [ZTUNNEL_A]: [ztunnels[0].pid],
      waypoint: [waypoint.pid],
      [ZTUNNEL_B]: [ztunnels[1].pid],
      [CONTROL_PLANE]: [cp.pid],
    },
    children: [cp, ...ztunnels, waypoint],
    logs: ["controlplane", "ztunnel-node-a", "ztunnel-node-b", "waypoint"],
  };
}

/** The node's bootstrap token file, which the control plane writes once it has seen the Node. */
async function nodeToken(cp, state, node) {
  const file = join(state, "node-tokens", `${node}.token`);
  await until(() => existsSync(file), 20_000, `the control plane to write ${relative(root, file)}`, cp);
  return file;
}

/**
 * The manifests folder both mesh paths run on: config.mjs's objects, plus the Pod and Service of
 * the waypoint Gateway. LocalMesh's control plane makes those two itself (local mode standing in for
 * Istio's deployment controller); the ambient-controlplane binary serves the folder as it is, like
 * istiod, so they are written out here with the same synthesizeWaypoints(), as netns mode writes
 * them to its generated folder. The Service gets a fixed VIP, as the API server would give it.
 * LocalMesh recognizes them as its own (their ambient.io/synthesized-for annotation) and keeps them.
 */
async function writeManifests(dir) {
  const { synthesizeWaypoints } = await import("@ambient/controlplane");
  const files = C.manifestObjects();
  const given = Object.values(files).flat();
  const made = synthesizeWaypoints(given).objects.filter((o) => !given.includes(o));
  files["11-waypoint-deployment.yaml"] = made.map((o) =>
    o.kind === "Service" ? { ...o, spec: { ...o.spec, clusterIP: C.WAYPOINT_VIP } } : o,
  );
  for (const [name, objects] of Object.entries(files))
    writeFileSync(join(dir, name), C.yamlDocuments(objects));
}

// ---- peers ----

async function startNginx() {
  const conf = join(out, "nginx", "nginx.conf");
  writeFileSync(conf, nginxConfig(join(out, "nginx")));
  const errorLog = join(out, "logs", "nginx-error.log");
  execFileSync(nginxBin, ["-t", "-q", "-e", errorLog, "-p", join(out, "nginx"), "-c", conf], {
    stdio: "pipe",
  });
  const master = startProcess("nginx", nginxBin, ["-e", errorLog, "-p", join(out, "nginx"), "-c", conf]);
  await waitListening(master, "nginx", C.NGINX);
  const workers = childPids(master.pid);
  for (const pid of workers) extraPids.add(pid);
  return { pids: [master.pid, ...workers], children: [master] };
}

async function startHaproxy() {
  const conf = join(out, "haproxy.cfg");
  writeFileSync(conf, haproxyConfig());
  execFileSync(haproxyBin, ["-c", "-q", "-f", conf], { stdio: "pipe" });
  const p = startProcess("haproxy", haproxyBin, ["-db", "-f", conf]);
  await waitListening(p, "haproxy", C.HAPROXY);
  return { pids: [p.pid], children: [p] };
}

// ---- processes ----

/** A Node helper of ours: stdout piped (its "ready" and results), stderr to its log, and an IPC
 *  channel so it stops itself if this process dies without stopping it. */
function startNode(name, script, argv) {
  const logFd = openSync(join(out, "logs", `${name}.log`), "a");
  const child = spawn(process.execPath, [join(here, script), ...argv], {
    cwd: root,
    stdio: ["ignore", "pipe", logFd, "ipc"],
  });
  return track(name, child, !name.startsWith("load-"));
}

function startProcess(name, cmd, argv) {
  const logFd = openSync(join(out, "logs", `${name}.log`), "a");
  return track(name, spawn(cmd, argv, { cwd: root, stdio: ["ignore", logFd, logFd] }), true);
}

function track(name, child, longLived) {
  names.set(child, name);
  children.set(child.pid, { name, child });
  child.once("exit", (code, signal) => {
    children.delete(child.pid);
    if (longLived && !stopping && !stopRequested.has(child)) {
      problems.push(`${name} exited during the run (${code ?? signal}); see logs/${name}.log`);
      process.stderr.write(`!! ${name} exited early (${code ?? signal})\n`);
    }
  });
  child.once("error", (err) => process.stderr.write(`!! cannot start ${name}: ${err.message}\n`));
  return child;
}

async function stopChild(name, child) {
  if (exitedEarly(child)) return;
  stopRequested.add(child);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const inTime = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
  if (!inTime) {
    process.stderr.write(`!! ${name} did not stop within 15 s of SIGTERM; killed\n`);
    child.kill("SIGKILL");
    await exited;
  } else if (child.spawnfile === process.execPath && child.exitCode !== 0) {
    // Our Node helpers exit 0 after a clean stop; anything else is in their log.
    process.stderr.write(`!! ${name} exited ${child.exitCode ?? child.signalCode} on stop; see its log\n`);
  }
}

function onLines(child, fn) {
  let buf = "";
  child.stdout.setEncoding("utf8").on("data", (d) => {
    buf += d;
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      fn(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
    }
  });
}

function waitLine(child, text, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "${text}" from pid ${child.pid} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(
          `pid ${child.pid} exited (${code ?? signal}) before "${text}"; see ${relative(root, out)}/logs`,
        ),
      );
    });
    onLines(child, (line) => {
      if (line.trim() !== text) return;
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Polls `check` (a throw means "not yet") until it holds; fails after `timeoutMs`, or at once when
 *  `child`, the process that should make it hold, has exited. */
async function until(check, timeoutMs, what, child) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (child && exitedEarly(child))
      throw new Error(
        `${names.get(child)} exited (${child.exitCode ?? child.signalCode}) while waiting for ${what}; see ${relative(root, out)}/logs`,
      );
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await sleep(200);
  }
}

/** Whether the child has exited (or was killed). */
function exitedEarly(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Until `url` answers 200 (a proxy's /healthz/ready), failing at once if `child` exits. */
async function waitReady(child, url) {
  await until(
    async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return res.status === 200;
    },
    30_000,
    `${url} to answer 200`,
    child,
  );
}

/** Until `addr` accepts connections, failing at once if `child` exits (e.g. the port was taken). */
async function waitListening(child, name, addr) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const listening = await isListening(addr);
    // A moment more: a process that cannot bind all its listeners exits right after the first.
    if (listening) await sleep(300);
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(
        `${name} exited (${child.exitCode ?? child.signalCode}); see ${relative(root, out)}/logs/${name}.log`,
      );
    if (listening) return;
    if (Date.now() > deadline)
      throw new Error(`${name} is not listening on ${addr.host}:${addr.port} after 10 s`);
    await sleep(100);
  }
}

function isListening({ host, port }) {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function backendStats() {
  return (await fetch(`http://${C.V1.host}:${C.V1.port}/__stats`)).json();
}

// ---- /proc ----

// ---- report ----

function describeMachine() {
  const models = cpus().map((c) => c.model.trim());
  const run = (cmd, argv) => {
    try {
      return execFileSync(cmd, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
    } catch (err) {
      return `${err.stdout ?? ""}${err.stderr ?? ""}`.trim();
    }
  };
  const version = (cmd, argv) => {
    // nginx -v writes to stderr; haproxy -v to stdout.
    const r = spawnSyncText(cmd, argv);
    return /version:?\s*(?:nginx\/)?(\S+)/i.exec(r)?.[1] ?? "?";
  };
  return {
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    cpu: `${models.length} vCPU ${models[0]}`,
    node: process.version,
    nginx: nginxBin ? version(nginxBin, ["-v"]) : "-",
    haproxy: haproxyBin ? version(haproxyBin, ["-v"]) : "-",
    commit: commitOf(run),
    command: `node bench/waypoint/run.mjs${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}`,
    loadBefore: loadavg()[0],
  };
}

/** The commit measured, and whether packages/ differs from it (dist is built from the working tree). */
function commitOf(run) {
  const head = spawnSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" });
  if (head.status !== 0) return "? (not a git checkout)";
  const dirty = run("git", ["-C", root, "status", "--porcelain", "--", "packages"]);
  return `${head.stdout.trim()}${dirty ? " + uncommitted changes in packages/" : ""}`;
}

function spawnSyncText(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`;
}

function report() {
  const d = results.direct;
  const ratio = (v, base) => (base ? ` (${(v / base).toFixed(2)}×)` : "");
  const p = (s) => process.stdout.write(`${s}\n`);
  p("");
  p(
    `date: ${machine.date} · machine: ${machine.cpu}, Node ${machine.node}, nginx ${machine.nginx}, HAProxy ${machine.haproxy} · ambient ${machine.commit}`,
  );
  p(`command: ${machine.command}`);
  p(
    `load: ${CONNECTIONS} keep-alive connections, ${WARMUP} s warm-up + ${SECONDS} s measured, GET / → 200 + 1 KiB, every other request with end-user: jason; load average ${machine.loadBefore.toFixed(2)} before, ${machine.loadAfter.toFixed(2)} after`,
  );
  p("");
  p("| path | req/s | p50 ms | p99 ms |");
  p("| --- | --: | --: | --: |");
  for (const path of PATHS) {
    const r = results[path];
    p(
      `| ${LABELS[path]} | ${fmt(r.rps)}${ratio(r.rps, d?.rps)} | ${r.p50ms.toFixed(3)}${ratio(r.p50ms, d?.p50ms)} | ${r.p99ms.toFixed(3)}${ratio(r.p99ms, d?.p99ms)} |`,
    );
  }
  p("");
  p(
    "| path | errors | v2 share | backend conns opened | proxy CPU per 1,000 req | proxy RSS idle → under load | load generator CPU |",
  );
  p("| --- | --: | --: | --: | --: | --: | --: |");
  for (const path of PATHS) {
    const r = results[path];
    const cpu = path === "direct" ? "–" : `${fmt(r.proxyCpuMsPer1k)} ms`;
    const rss = path === "direct" ? "–" : `${mib(r.rssIdleKb)} → ${mib(r.rssLoadKb)} MiB`;
    p(
      `| ${path} | ${errorCount(r)} | ${(v2Share(r) * 100).toFixed(1)}% | ${fmt(r.backendConnections)} | ${cpu} | ${rss} | ${r.clientCpuPct.toFixed(0)}% |`,
    );
  }
  if (machine.routeDecisionUs !== undefined)
    p(
      `\nrouting decision alone (the core path's compileRoutes table: route(), header match + weighted pick, in-process): ${machine.routeDecisionUs.toFixed(2)} µs per request`,
    );
  for (const path of PATHS.filter((x) => MESH_PATHS.has(x))) reportMesh(path, p);
  p("");
  if (problems.length === 0) p("problems seen: none");
  else for (const x of problems) p(`problem: ${x}`);
}

/** A mesh path's process figures and what the mesh counted; for split, each process on its own. */
function reportMesh(path, p) {
  const r = results[path];
  const what =
    path === "full"
      ? "mesh process (control plane + 2 ztunnels + waypoint)"
      : "the three proxies (ztunnel node-a + waypoint + ztunnel node-b; control plane not included)";
  p("");
  p(
    `${path} path, ${what}: VmRSS idle ${mib(r.meshRssKb.idle)} MiB, ` +
      `under load ≤ ${mib(r.rssLoadKb)} MiB, 2 s after ${mib(r.meshRssKb.after2s)} MiB, VmHWM ${mib(r.rssPeakKb)} MiB; ` +
      `fds ${r.meshFds.idle} idle → ${r.meshFds.after} after`,
  );
  p(
    `${path}: waypoint answers during the run: ${JSON.stringify(r.waypointResponses)}; ztunnel open connections 2 s after: ${JSON.stringify(r.ztunnelOpenAfter)}`,
  );
  if (Object.keys(r.parts).length === 0) return;
  p("");
  p(
    `| ${path}: process | CPU per 1,000 req | VmRSS idle → under load → 2 s after | VmHWM | fds idle → after |`,
  );
  p("| --- | --: | --: | --: | --: |");
  for (const [name, x] of Object.entries(r.parts))
    p(
      `| ${name} | ${fmt(x.cpuMsPer1k)} ms | ${mib(x.rssIdleKb)} → ${mib(x.rssLoadKb)} → ${mib(x.rssAfter2sKb)} MiB | ${mib(x.rssPeakKb)} MiB | ${x.fdsIdle} → ${x.fdsAfter} |`,
    );
  // The issue's goal: the waypoint alone at most 3× nginx's CPU per request (nginx, when it ran).
  const waypoint = r.parts.waypoint;
  const nginx = results.nginx?.proxyCpuMsPer1k;
  if (waypoint)
    p(
      `\nwaypoint alone: ${fmt(waypoint.cpuMsPer1k)} ms CPU per 1,000 requests` +
        (nginx ? ` = ${(waypoint.cpuMsPer1k / nginx).toFixed(1)}× nginx (${fmt(nginx)} ms; goal ≤ 3×)` : ""),
    );
}

/** Of the 200 answers, the share v2 gave. */
function v2Share(r) {
  return r.backends.v2 / Math.max(1, r.backends.v1 + r.backends.v2 + r.backends.other);
}

function errorCount(r) {
  const e = r.errors;
  return (
    e.connect + e.closed + e.timeout + e.reset + e.other + Object.values(e.status).reduce((a, b) => a + b, 0)
  );
}

function fatal(message) {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function mib(kb) {
  return (kb / 1024).toFixed(1);
}

function fmt(n) {
  return Math.round(n).toLocaleString("en-US");
}

#!/usr/bin/env node
// ztunnel benchmark: the same client and server measured, in one run, over three paths:
//   direct   client → server (127.30.2.10:9000), the limit
//   ambient  client → SOCKS5 on its pod's ztunnel → HBONE (mTLS + HTTP/2 CONNECT) → peer ztunnel → server
//   stunnel  client → stunnel (client mode) → mutual TLS 1.3 → stunnel (server mode) → server
// For each: single-stream throughput, 1 KB round-trip latency, new connections per second, and the
// proxies' RSS idle and with 1,000 open connections. The load runs in its own process (load.mjs),
// the server in another (server.mjs). Every process started here is stopped at the end.
// Usage: node bench/ztunnel/run.mjs [--seconds 5] [--count 10000] [--warmup 1000] [--concurrency 16]
//        [--conns 1000] [--paths direct,ambient,stunnel] [--keep] [--json FILE] [--ztunnel-log-level debug]
//        [--ztunnel-processes 2]   (per node, sharing its listeners with --reuse-port: Node >= 22.12)
//        [--settle 30]   (seconds idle after the tests before the proxies' RSS is read again)
//        [--ztunnel-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]   (flags for both ztunnels' node)
//        [--perf]   (perf record of both proxies during each test: where native time goes)
//        [--perf-callgraph]   (the same with DWARF call graphs: `perf report -G -i out/perf-*.data`)
// Needs a build first (`pnpm build`) and stunnel4 (`apt-get install -y stunnel4`).

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { clockTicks, cpuTicks, fdCount, freePort, sleep, sumStatus, which } from "../lib/proc.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith("--")) continue;
  const next = process.argv[i + 1];
  // Flags for node are themselves flags: that value is taken whatever it starts with.
  const takesFlags = a === "--ztunnel-node-args";
  args[a.slice(2)] =
    next === undefined || (next.startsWith("--") && !takesFlags) ? "true" : process.argv[++i];
}
const SECONDS = Number(args.seconds ?? 5);
const COUNT = Number(args.count ?? 10_000);
const WARMUP = Number(args.warmup ?? 1_000);
const CONCURRENCY = Number(args.concurrency ?? 16);
const CONNS = Number(args.conns ?? 1_000);
const PATHS = (args.paths ?? "direct,ambient,stunnel").split(",");
const KEEP = args.keep === "true";
/** After a path's tests: idle this long, then read RSS again (does memory return close to idle?). V8's
 *  memory reducer shrinks the heap only after ~30 s with little allocation (measured: 10 s was too soon). */
const SETTLE_S = Number(args.settle ?? 30);
/**
 * ztunnel processes per node. More than one share the node's data ports with SO_REUSEPORT
 * (`--reuse-port`), the kernel spreading connections over them: the multi-core design measured
 * here. Each gets its own admin, metrics and readiness ports (ZTUNNEL_PORT_STEP apart) so that
 * its counters and readiness can be read one by one.
 */
const ZTUNNEL_PROCESSES = Number(args["ztunnel-processes"] ?? 1);
const ZTUNNEL_PORT_STEP = 1000;
/** Process k's admin, metrics and readiness ports. */
const ztunnelPorts = (k) => ({
  admin: 15000 + k * ZTUNNEL_PORT_STEP,
  metrics: 15020 + k * ZTUNNEL_PORT_STEP,
  readiness: 15021 + k * ZTUNNEL_PORT_STEP,
});
const PERF_CALLGRAPH = args["perf-callgraph"] === "true";
const PERF = args.perf === "true" || PERF_CALLGRAPH;
/** A load process that has not finished by then is stopped and its test reported as failed. */
const TEST_TIMEOUT_MS = 30_000;

// Addresses (all loopback): two nodes, a client pod on one, the server pod on the other; the
// stunnel pair sits on .50 addresses of the same two /24s.
const NODE_A = "127.30.1.1";
const NODE_B = "127.30.2.1";
const CLIENT_IP = "127.30.1.10";
const SERVER_IP = "127.30.2.10";
const APP_PORT = 9000;
const STUNNEL_CLIENT = { host: "127.30.1.50", port: 9000 };
const STUNNEL_SERVER = { host: "127.30.2.50", port: 9443 };

const out = join(here, "out");
const children = new Map(); // pid → { name, child }
let loadBefore = 0;
let problemsSeen = false;
const perfFiles = []; // --perf: { path, test, file } per recorded test

// ---- preconditions ----
const stunnelBin = which("stunnel4") ?? which("stunnel");
const perfBin = PERF ? which("perf") : undefined;
if (PERF && !perfBin) fail("--perf needs perf: apt-get install -y linux-perf", true);
if (!stunnelBin) {
  fail(
    "stunnel4 is not installed; the stunnel path needs it.\n" +
      "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y stunnel4\n" +
      "  (or run with --paths direct,ambient to skip that path)",
    PATHS.includes("stunnel"),
  );
}
if (!which("openssl"))
  fail("openssl is not installed: sudo apt-get install -y openssl", PATHS.includes("stunnel"));
for (const f of ["ztunnel/dist/main.js", "controlplane/dist/main.js", "testbed/dist/local/socks-client.js"]) {
  if (!existsSync(join(root, "packages", f)))
    fail(`packages/${f} is missing: build first (npx -y pnpm@10 run build)`, true);
}
if (!existsSync("/proc/self/status")) fail("needs Linux /proc to read the proxies' RSS", true);

// ---- stop everything on any exit ----
let stopping;
async function stopAll() {
  stopping ??= (async () => {
    // Reverse start order: load, stunnels, ztunnels (before their control plane), server.
    for (const { child } of [...children.values()].reverse()) await stopChild(child);
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
});

const results = {};
let exitCode = 0;
try {
  await main();
} catch (err) {
  exitCode = 1;
  process.stderr.write(`\nbench failed: ${err?.stack ?? err}\nlogs kept in ${join(out, "logs")}\n`);
} finally {
  await stopAll();
  if (!KEEP && exitCode === 0 && !problemsSeen) rmSync(out, { recursive: true, force: true });
}
process.exit(exitCode);

async function main() {
  loadBefore = loadavg()[0];
  if (loadBefore > cpus().length / 2)
    process.stderr.write(
      `warning: load average ${loadBefore.toFixed(2)} on ${cpus().length} CPUs; the machine is busy and the figures will be noisy\n`,
    );
  rmSync(out, { recursive: true, force: true });
  for (const d of ["manifests", "state", "certs", "logs"]) mkdirSync(join(out, d), { recursive: true });
  writeManifests(join(out, "manifests"));

  // The app.
  start("server", process.execPath, [join(here, "server.mjs"), SERVER_IP, String(APP_PORT)]);
  await waitListening(SERVER_IP, APP_PORT, "server");

  // Control plane and the two ztunnels.
  const proxies = { direct: [], ambient: [], stunnel: [] };
  if (PATHS.includes("ambient")) {
    const xdsPort = await freePort();
    const state = join(out, "state");
    start("controlplane", process.execPath, [
      join(root, "packages/controlplane/bin/ambient-controlplane.js"),
      "--config-dir",
      join(out, "manifests"),
      "--listen",
      `127.0.0.1:${xdsPort}`,
      "--state-dir",
      state,
    ]);
    for (const [name, ip] of [
      ["node-a", NODE_A],
      ["node-b", NODE_B],
    ]) {
      const tokenFile = join(state, "node-tokens", `${name}.token`);
      await until(() => existsSync(tokenFile), 20_000, `control plane to write ${tokenFile}`);
      const bin = join(root, "packages/ztunnel/bin/ztunnel.js");
      const { nodeArgv } = await import("@ambient/testbed"); // after the build check above
      for (let k = 0; k < ZTUNNEL_PROCESSES; k++) {
        const ports = ztunnelPorts(k);
        const z = start(`ztunnel-${name}${k > 0 ? `-${k}` : ""}`, process.execPath, [
          // The runtime flags ztunnel ships with (its shebang), as the image runs it.
          ...nodeArgv(bin).slice(0, -1),
          // Node refuses --cpu-prof in NODE_OPTIONS: profiling flags go on the command line, after
          // the shipped ones so that a flag given here wins.
          ...(args["ztunnel-node-args"] ? args["ztunnel-node-args"].split(" ").filter(Boolean) : []),
          bin,
          "--node-name",
          name,
          "--node-ip",
          ip,
          "--xds-address",
          `127.0.0.1:${xdsPort}`,
          "--token-file",
          tokenFile,
          "--admin-on-node-ip",
          "--drain-deadline",
          "2s",
          ...(ZTUNNEL_PROCESSES > 1
            ? [
                "--reuse-port",
                "--admin-port",
                String(ports.admin),
                "--metrics-port",
                String(ports.metrics),
                "--readiness-port",
                String(ports.readiness),
              ]
            : []),
          ...(args["ztunnel-log-level"] ? ["--log-level", args["ztunnel-log-level"]] : []),
        ]);
        proxies.ambient.push(z.pid);
      }
    }
    for (const ip of [NODE_A, NODE_B])
      for (let k = 0; k < ZTUNNEL_PROCESSES; k++)
        await waitReady(`http://${ip}:${ztunnelPorts(k).readiness}/healthz/ready`);
  }

  // The stunnel pair.
  if (PATHS.includes("stunnel")) {
    const certs = join(out, "certs");
    makeCertificates(certs);
    for (const side of ["server", "client"]) {
      const conf = join(out, `stunnel-${side}.conf`);
      writeFileSync(conf, stunnelConfig(side, certs));
      const s = start(`stunnel-${side}`, stunnelBin, [conf]);
      proxies.stunnel.push(s.pid);
    }
    // Read from /proc, not probed: a probe without TLS would leave an error in stunnel's log.
    await until(() => isListening(STUNNEL_SERVER), 15_000, "the stunnel server to listen");
    await until(() => isListening(STUNNEL_CLIENT), 15_000, "the stunnel client to listen");
  }

  // Idle RSS: every proxy started and ready, no traffic yet.
  await sleep(1000);
  const idle = {};
  const fdsIdle = {};
  for (const p of PATHS) {
    idle[p] = sumStatus(proxies[p], "VmRSS");
    fdsIdle[p] = proxies[p].map(fdCount);
  }

  for (const path of PATHS) {
    const r = { rssIdleKb: idle[path] };
    results[path] = r;
    const pids = proxies[path];
    process.stderr.write(`\n== ${path} ==\n`);

    // (d) RSS with CONNS connections open through the path.
    const h = await holdConnections(path, pids);
    Object.assign(r, h);
    log(`hold: ${h.held}/${CONNS} open, RSS ${mib(h.rssHoldKb)} MiB`, h);

    // (a) throughput.
    let cpu0 = cpuTicks(pids);
    r.throughput = await profiled(path, "throughput", pids, () =>
      load(path, ["--test", "throughput", "--seconds", String(SECONDS)]),
    );
    r.throughputCpuS = (cpuTicks(pids) - cpu0) / clockTicks();
    log(`throughput: ${fmt(r.throughput.mbPerS)} MB/s`, r.throughput);

    // (b) latency.
    cpu0 = cpuTicks(pids);
    r.latency = await profiled(path, "latency", pids, () =>
      load(path, ["--test", "latency", "--count", String(COUNT), "--warmup", String(WARMUP)]),
    );
    r.latencyCpuS = (cpuTicks(pids) - cpu0) / clockTicks();
    log(`latency: p50 ${fmt(r.latency.p50us)} µs, p99 ${fmt(r.latency.p99us)} µs`, r.latency);

    // (c) connection rate.
    cpu0 = cpuTicks(pids);
    r.connrate = await profiled(path, "connrate", pids, () =>
      load(path, ["--test", "connrate", "--seconds", String(SECONDS), "--concurrency", String(CONCURRENCY)]),
    );
    r.connrateCpuS = (cpuTicks(pids) - cpu0) / clockTicks();
    log(`connrate: ${fmt(r.connrate.perS)} conn/s`, r.connrate);

    r.rssPeakKb = sumStatus(pids, "VmHWM");
    r.rssEndKb = sumStatus(pids, "VmRSS");
    // Leak check: every connection the load made should be closed in the proxies by now.
    await sleep(1000);
    r.fdsIdle = fdsIdle[path];
    r.fdsEnd = pids.map(fdCount);
    if (path === "ambient") {
      // Connections the load attempted: held ones, 2 for throughput (probe + run), 1 for latency,
      // and the connection-rate loops' (failed ones included).
      const attempted = (t) => errorCount(t) + (t?.connections ?? 0);
      r.made = r.held + 2 + 1 + attempted(r.connrate) + errorCount(r.throughput) + errorCount(r.latency);
      r.counters = {};
      for (const [node, ip] of [
        ["node-a", NODE_A],
        ["node-b", NODE_B],
      ])
        r.counters[node] = await ztunnelCounters(ip);
      // Pooled HBONE sessions stay open (idle 5 minutes) and hold one socket on each side.
      r.poolSessions = r.counters["node-a"].poolSessions;
    }

    // (e) Memory after the load: what the proxies still hold once nothing has flowed for a while.
    if (pids.length > 0) {
      await sleep(SETTLE_S * 1000);
      r.rssSettledKb = sumStatus(pids, "VmRSS");
      log(`settled: RSS ${mib(r.rssSettledKb)} MiB ${SETTLE_S} s after the tests`, {});
    }
  }

  report(proxies);
  if (PERF) perfReport();
}

// ---- native profile (--perf) ----

/**
 * Runs one test with `perf record` sampling the path's proxies (999 Hz, CPU clock, so it works on
 * VMs without hardware counters). The JS profile (--cpu-prof) shows native time only as "(program)":
 * this says which library (OpenSSL, nghttp2, libuv, V8, the kernel) and which symbols it is.
 */
async function profiled(path, test, pids, run) {
  if (!PERF || pids.length === 0) return run();
  const file = join(out, `perf-${path}-${test}.data`);
  const rec = spawn(
    perfBin,
    [
      "record",
      "-q",
      ...(PERF_CALLGRAPH ? ["--call-graph", "dwarf,8192", "-F", "199"] : ["-F", "999"]),
      "-e",
      "cpu-clock",
      "-p",
      pids.join(","),
      "-o",
      file,
    ],
    {
      stdio: ["ignore", "ignore", openSync(join(out, "logs", `perf-${path}-${test}.log`), "w")],
    },
  );
  await sleep(300); // perf attaches before the load starts
  try {
    return await run();
  } finally {
    rec.kill("SIGINT");
    await new Promise((resolve) => rec.once("exit", resolve));
    perfFiles.push({ path, test, file });
  }
}

/** The top shared objects and symbols of each recorded test, after the tables. */
function perfReport() {
  for (const { path, test, file } of perfFiles) {
    if (!existsSync(file)) continue;
    for (const sort of ["dso", "dso,sym"]) {
      let text = "";
      try {
        text = execFileSync(
          perfBin,
          ["report", "-i", file, "--stdio", "--sort", sort, "--percent-limit", "1.5"],
          {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "ignore"],
            maxBuffer: 64 * 1024 * 1024,
          },
        );
      } catch (err) {
        text = `perf report failed: ${err.message}`;
      }
      const lines = text.split("\n").filter((l) => l.trim() && !l.startsWith("#"));
      process.stdout.write(
        `\n## perf ${path} ${test} by ${sort} (${file})\n${lines.slice(0, 25).join("\n")}\n`,
      );
    }
  }
}

// ---- load ----

function pathArgs(path) {
  if (path === "direct") return ["--connect", `${SERVER_IP}:${APP_PORT}`, "--local", CLIENT_IP];
  if (path === "ambient")
    return [
      "--connect",
      `${CLIENT_IP}:15080`,
      "--socks-dest",
      `${SERVER_IP}:${APP_PORT}`,
      "--local",
      CLIENT_IP,
    ];
  return ["--connect", `${STUNNEL_CLIENT.host}:${STUNNEL_CLIENT.port}`, "--local", CLIENT_IP];
}

/** Runs one load process to completion; returns its JSON result (with `failed` when it failed). */
async function load(path, testArgs) {
  const child = start(
    `load-${path}-${testArgs[1]}`,
    process.execPath,
    [join(here, "load.mjs"), ...testArgs, ...pathArgs(path)],
    { pipe: true },
  );
  let outText = "";
  child.stdout.setEncoding("utf8").on("data", (d) => {
    outText += d;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), TEST_TIMEOUT_MS);
  await new Promise((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  const last = outText.trim().split("\n").at(-1);
  try {
    return JSON.parse(last);
  } catch {
    return {
      failed: `load process exited ${child.exitCode ?? child.signalCode} without a result`,
      errors: {},
    };
  }
}

async function holdConnections(path, pids) {
  const child = start(
    `load-${path}-hold`,
    process.execPath,
    [join(here, "load.mjs"), "--test", "hold", "--conns", String(CONNS), ...pathArgs(path)],
    { pipe: true },
  );
  let outText = "";
  let onLine;
  child.stdout.setEncoding("utf8").on("data", (d) => {
    outText += d;
    onLine?.();
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const ready = await Promise.race([
    new Promise((resolve) => {
      onLine = () => {
        if (outText.includes("\n")) resolve(JSON.parse(outText.split("\n")[0]));
      };
    }),
    exited.then(() => ({ held: 0, failed: "hold process exited early" })),
    sleep(TEST_TIMEOUT_MS).then(() => ({ held: 0, failed: "timed out opening connections" })),
  ]);
  // Let the proxies settle (buffers allocated, GC run) before reading.
  await sleep(1500);
  const rssHoldKb = sumStatus(pids, "VmRSS");
  child.stdin.end("close\n");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
  const lines = outText.trim().split("\n");
  let final = {};
  try {
    final = JSON.parse(lines.at(-1));
  } catch {}
  await sleep(500);
  return {
    held: ready.held ?? 0,
    holdOpenMs: ready.openMs,
    holdErrors: ready.errors ?? {},
    holdDropped: final.dropped,
    holdFailed: ready.failed,
    rssHoldKb,
  };
}

// ---- report ----

function report(proxies) {
  const d = results.direct;
  const ratio = (v, base) => (v && base ? `${(v / base).toFixed(2)}×` : "–");
  const line = (cells) => `| ${cells.join(" | ")} |`;
  const rows = [];
  rows.push(
    line([
      "path",
      "throughput MB/s",
      "p50 µs",
      "p99 µs",
      "added p50 / p90 / p99 µs",
      "conn/s",
      "proxy RSS idle",
      `proxy RSS, ${CONNS.toLocaleString("en")} conns`,
    ]),
  );
  rows.push(line(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]));
  for (const path of PATHS) {
    const r = results[path];
    const t = r.throughput?.mbPerS;
    const l = r.latency ?? {};
    const c = r.connrate?.perS;
    const added =
      path === "direct" || !d?.latency?.p50us || !l.p50us
        ? "–"
        : `${fmt(l.p50us - d.latency.p50us)} / ${fmt(l.p90us - d.latency.p90us)} / ${fmt(l.p99us - d.latency.p99us)}`;
    rows.push(
      line([
        path,
        t ? `${fmt(t)} (${ratio(t, d?.throughput?.mbPerS)})` : fails(r.throughput),
        l.p50us ? `${fmt(l.p50us)} (${ratio(l.p50us, d?.latency?.p50us)})` : fails(r.latency),
        l.p99us ? `${fmt(l.p99us)} (${ratio(l.p99us, d?.latency?.p99us)})` : "–",
        added,
        c ? `${fmt(c)} (${ratio(c, d?.connrate?.perS)})` : fails(r.connrate),
        path === "direct" ? "–" : `${mib(r.rssIdleKb)} MiB`,
        path === "direct" ? "–" : `${mib(r.rssHoldKb)} MiB`,
      ]),
    );
  }
  const costRows = [
    line([
      "path",
      "proxy CPU per 1,000 round trips (= vCPU at 1,000 rps)",
      "proxy CPU s per GB",
      "proxy CPU ms per 1,000 conns",
      "peak proxy RSS (VmHWM)",
      `proxy RSS ${SETTLE_S} s after the tests`,
    ]),
    line(["---", "---:", "---:", "---:", "---:", "---:"]),
  ];
  for (const path of PATHS.filter((p) => p !== "direct")) {
    const r = results[path];
    const rt = (r.latency?.roundTrips ?? 0) + (r.latency?.warmup ?? 0);
    const gb = ((r.throughput?.bytes ?? 0) + 64 * 2 ** 20) / 1e9;
    const conns = r.connrate?.connections ?? 0;
    costRows.push(
      line([
        path,
        rt ? `${fmt((r.latencyCpuS / rt) * 1000 * 1000)} ms` : "–",
        r.throughput?.bytes ? `${(r.throughputCpuS / gb).toFixed(2)} s` : "–",
        conns ? `${fmt((r.connrateCpuS / conns) * 1000 * 1000)} ms` : "–",
        `${mib(r.rssPeakKb)} MiB`,
        `${mib(r.rssSettledKb)} MiB (idle ${mib(r.rssIdleKb)})`,
      ]),
    );
  }

  const problems = [];
  for (const path of PATHS) {
    const r = results[path];
    for (const [what, v] of [
      ["throughput", r.throughput],
      ["latency", r.latency],
      ["connrate", r.connrate],
    ]) {
      if (v?.failed) problems.push(`${path} ${what}: FAILED ${v.failed} ${JSON.stringify(v.errors)}`);
      else if (v?.errors && Object.keys(v.errors).length)
        problems.push(`${path} ${what}: errors ${JSON.stringify(v.errors)}`);
    }
    if (r.holdFailed || r.held < CONNS || Object.keys(r.holdErrors ?? {}).length || r.holdDropped)
      problems.push(
        `${path} hold: ${r.held}/${CONNS} opened, ${r.holdDropped ?? "?"} dropped while held, errors ${JSON.stringify(r.holdErrors)}${r.holdFailed ? `, ${r.holdFailed}` : ""}`,
      );
  }
  for (const path of PATHS.filter((p) => p !== "direct")) {
    const r = results[path];
    const pooled = r.poolSessions ?? 0;
    if (r.fdsEnd?.some((n, i) => n > r.fdsIdle[i] + pooled + 2))
      problems.push(
        `${path}: open file descriptors per proxy went from ${r.fdsIdle} (idle) to ${r.fdsEnd} after the tests (${pooled} pooled HBONE sessions)`,
      );
    for (const [node, c] of Object.entries(r.counters ?? {})) {
      if (c.opened !== c.closed || c.open !== 0)
        problems.push(
          `${path} ${node}: istio_tcp_connections_opened_total ${c.opened}, closed_total ${c.closed}, open in /config_dump ${c.open}; the load made ${r.made}`,
        );
    }
  }
  problems.push(...proxyLogProblems());

  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  const cmd = `node bench/ztunnel/run.mjs ${process.argv.slice(2).join(" ")}`.trim();
  const o = [];
  o.push("");
  o.push(
    `date ${new Date().toISOString().slice(0, 10)} · ${cpus().length} × ${cpu} · Node ${process.version} · ${stunnelVersion()} · ambient ${gitDescribe()}`,
  );
  o.push(
    `command: ${cmd} · load average (1 min) before ${loadBefore.toFixed(2)}, after ${loadavg()[0].toFixed(2)}`,
  );
  o.push(
    `throughput: one connection, bytes timed until the server has them all; latency: ${COUNT.toLocaleString("en")} sequential 1 KB round trips after ${WARMUP.toLocaleString("en")} warm-up; conn/s: ${CONCURRENCY} loops of open → 1 byte each way → close for ${SECONDS} s; ratios are path / direct`,
  );
  o.push("");
  o.push(...rows);
  o.push("");
  o.push(...costRows);
  o.push("");
  if (problems.length) {
    problemsSeen = true;
    o.push(`problems seen (logs kept in ${join(out, "logs")}):`);
    for (const p of problems) o.push(`  - ${p}`);
  } else
    o.push(
      "problems seen: none (no load errors, no dropped connections, no warn/error lines from the proxies)",
    );
  process.stdout.write(`${o.join("\n")}\n`);
  if (args.json)
    writeFileSync(args.json, JSON.stringify({ results, proxies: Object.keys(proxies) }, null, 2));
}

/** warn/error lines in the ztunnels' JSON logs and stunnel's LOG0-LOG4 lines, counted by message. */
function proxyLogProblems() {
  const out_ = [];
  const ztunnels = ["node-a", "node-b"].flatMap((node) =>
    Array.from({ length: ZTUNNEL_PROCESSES }, (_, k) => `ztunnel-${node}${k > 0 ? `-${k}` : ""}`),
  );
  for (const name of [...ztunnels, "stunnel-client", "stunnel-server"]) {
    const file = join(out, "logs", `${name}.log`);
    if (!existsSync(file)) continue;
    const counts = new Map();
    for (const lineText of readFileSync(file, "utf8").split("\n")) {
      let key;
      if (name.startsWith("ztunnel")) {
        if (!lineText.startsWith("{")) {
          if (lineText.trim()) key = `stderr: ${lineText.slice(0, 160)}`;
        } else {
          try {
            const rec = JSON.parse(lineText);
            const lvl =
              typeof rec.level === "number"
                ? rec.level
                : ({ warn: 40, error: 50, fatal: 60 }[rec.level] ?? 30);
            if (lvl >= 40)
              key = `${rec.level} ${rec.msg}${rec.err ? `: ${String(rec.err.message ?? rec.err).slice(0, 160)}` : ""}`;
          } catch {
            key = `unparsed: ${lineText.slice(0, 160)}`;
          }
        }
      } else {
        const m = /LOG([0-4])\[[^\]]*\]: (.*)$/.exec(lineText);
        if (m) key = `LOG${m[1]} ${m[2].replace(/\d+/g, "N").slice(0, 160)}`;
      }
      if (key) counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const [k, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 8))
      out_.push(`${name} log: ${n} × ${k}`);
  }
  return out_;
}

// ---- setup ----

function writeManifests(dir) {
  const ns = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n  labels: { istio.io/dataplane-mode: ambient }\n`;
  const node = (name, ip) =>
    `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${name}\nstatus:\n  addresses:\n    - { type: InternalIP, address: ${ip} }\n`;
  const pod = (name, nodeName, ip, ports) =>
    [
      "apiVersion: v1",
      "kind: Pod",
      "metadata:",
      `  name: ${name}`,
      "  namespace: bench",
      `  labels: { app: ${name} }`,
      "spec:",
      `  nodeName: ${nodeName}`,
      `  serviceAccountName: ${name}`,
      "  containers:",
      "    - name: app",
      "      image: app",
      `      ports: ${JSON.stringify(ports)}`,
      "status:",
      "  phase: Running",
      `  podIP: ${ip}`,
      "",
    ].join("\n");
  writeFileSync(
    join(dir, "bench.yaml"),
    [
      ns,
      node("node-a", NODE_A),
      node("node-b", NODE_B),
      pod("client", "node-a", CLIENT_IP, []),
      pod("server", "node-b", SERVER_IP, [{ name: "tcp", containerPort: APP_PORT }]),
    ].join("---\n"),
  );
}

/** ECDSA P-256 CA, server and client certificates for the stunnel pair. */
function makeCertificates(dir) {
  const ssl = (...a) => execFileSync("openssl", a, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const key = (name) =>
    ssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`);
  key("ca");
  ssl(
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-sha256",
    "-days",
    "2",
    "-subj",
    "/CN=bench-ca",
    "-out",
    "ca.pem",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  for (const [name, eku] of [
    ["server", "serverAuth"],
    ["client", "clientAuth"],
  ]) {
    key(name);
    ssl("req", "-new", "-key", `${name}.key`, "-subj", `/CN=${name}.bench.local`, "-out", `${name}.csr`);
    writeFileSync(
      join(dir, `${name}.ext`),
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${eku}\nsubjectAltName=DNS:${name}.bench.local\n`,
    );
    ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.pem`,
    );
  }
}

/** Mutual TLS 1.3 both ways; each side checks the other's chain and name, as HBONE checks identities. */
function stunnelConfig(side, certs) {
  const common = [
    "foreground = yes",
    "pid =",
    // Logs go to stderr (our log file) only. With syslog on and no syslog daemon, glibc falls back
    // to the console, and writing every connection's lines to a serial console costs ~10 ms each.
    "syslog = no",
    "",
    "[bench]",
    `cert = ${join(certs, `${side}.pem`)}`,
    `key = ${join(certs, `${side}.key`)}`,
    `CAfile = ${join(certs, "ca.pem")}`,
    "sslVersionMin = TLSv1.3",
    "sslVersionMax = TLSv1.3",
    // ztunnel sets TCP_NODELAY on its sockets; so must the peer for the latency test to be fair.
    "socket = l:TCP_NODELAY=1",
    "socket = r:TCP_NODELAY=1",
  ];
  if (side === "client") {
    return [
      ...common,
      "client = yes",
      `accept = ${STUNNEL_CLIENT.host}:${STUNNEL_CLIENT.port}`,
      `connect = ${STUNNEL_SERVER.host}:${STUNNEL_SERVER.port}`,
      "verifyChain = yes",
      "checkHost = server.bench.local",
      "",
    ].join("\n");
  }
  return [
    ...common,
    `accept = ${STUNNEL_SERVER.host}:${STUNNEL_SERVER.port}`,
    `connect = ${SERVER_IP}:${APP_PORT}`,
    // verify = 2: the client must present a certificate whose chain verifies to CAfile.
    "verify = 2",
    "",
  ].join("\n");
}

// ---- processes ----

function start(name, cmd, argv, opts = {}) {
  const logFd = openSync(join(out, "logs", `${name}.log`), "a");
  const child = spawn(cmd, argv, {
    cwd: root,
    stdio: opts.pipe ? ["pipe", "pipe", logFd] : ["ignore", logFd, logFd],
  });
  children.set(child.pid, { name, child });
  child.once("exit", (code, signal) => {
    children.delete(child.pid);
    if (!opts.pipe && !stopping) process.stderr.write(`!! ${name} exited early (${code ?? signal})\n`);
  });
  child.once("error", (err) => process.stderr.write(`!! cannot start ${name}: ${err.message}\n`));
  return child;
}

function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

async function waitReady(url) {
  await until(
    async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false;
      }
    },
    30_000,
    `${url} to answer 200`,
  );
}

async function waitListening(host, port, what) {
  await until(
    () =>
      new Promise((resolve) => {
        const s = connect({ host, port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      }),
    15_000,
    `${what} to listen on ${host}:${port}`,
  );
}

/** Whether some socket listens on host:port (IPv4), from /proc/net/tcp. */
function isListening({ host, port }) {
  const addr = host
    .split(".")
    .map((b) => Number(b).toString(16).padStart(2, "0").toUpperCase())
    .reverse()
    .join("");
  const want = `${addr}:${port.toString(16).padStart(4, "0").toUpperCase()}`;
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .some((l) => {
      const f = l.trim().split(/\s+/);
      return f[1] === want && f[3] === "0A";
    });
}

async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Istio's connection counters (/metrics on 15020) and open connections and pooled sessions
 * (/config_dump), summed over the node's ztunnel processes.
 */
async function ztunnelCounters(ip) {
  const total = { opened: 0, closed: 0, open: 0, poolSessions: 0 };
  for (let k = 0; k < ZTUNNEL_PROCESSES; k++) {
    const c = await ztunnelProcessCounters(ip, ztunnelPorts(k));
    for (const key of Object.keys(total)) total[key] += c[key] ?? 0;
  }
  return total;
}

async function ztunnelProcessCounters(ip, ports) {
  const text = await (await fetch(`http://${ip}:${ports.metrics}/metrics`)).text();
  const sum = (name) =>
    text
      .split("\n")
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  const dump = await (await fetch(`http://${ip}:${ports.admin}/config_dump`)).json();
  return {
    opened: sum("istio_tcp_connections_opened_total"),
    closed: sum("istio_tcp_connections_closed_total"),
    open: dump.connections?.open,
    poolSessions: dump.connections?.pool?.sessions,
  };
}

function errorCount(result) {
  return Object.values(result?.errors ?? {}).reduce((a, n) => a + n, 0);
}

// ---- /proc ----

// ---- small helpers ----

function stunnelVersion() {
  if (!stunnelBin) return "no stunnel";
  // stunnel prints its version on stderr and exits non-zero.
  try {
    const r = execFileSync("sh", ["-c", `"${stunnelBin}" -version 2>&1`], { encoding: "utf8" });
    const line = r.split("\n").find((l) => /^stunnel \d/.test(l)) ?? "stunnel";
    const ssl = /Running\s+with (OpenSSL [\d.]+)/.exec(r)?.[1];
    return `${line.replace(/ on .*/, "")}${ssl ? ` (${ssl})` : ""}`;
  } catch {
    return "stunnel";
  }
}
function gitDescribe() {
  try {
    return execFileSync("git", ["describe", "--always", "--dirty"], { cwd: root, encoding: "utf8" }).trim();
  } catch {
    return "(not a git checkout)";
  }
}
function fail(message, fatal) {
  if (!fatal) return;
  process.stderr.write(`bench/ztunnel: ${message}\n`);
  process.exit(1);
}
function mib(kb) {
  return (kb / 1024).toFixed(1);
}
function fmt(n) {
  if (n === undefined || Number.isNaN(n)) return "–";
  const a = Math.abs(n);
  return a >= 100 ? Math.round(n).toLocaleString("en") : a >= 10 ? n.toFixed(1) : n.toFixed(2);
}
function fails(v) {
  return v?.failed ? `FAILED` : "–";
}
function log(msg, detail) {
  process.stderr.write(
    `${msg}${detail?.errors && Object.keys(detail.errors).length ? ` errors ${JSON.stringify(detail.errors)}` : ""}\n`,
  );
}

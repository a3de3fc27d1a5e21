// The netns harness on the real kernel: two node namespaces on a switch, one pod on each wired by
// the reference bridge + host-local plugins, plain (no mesh) traffic between them. Root only.

import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CniRuntime, k8sArgs } from "./cni-runtime.js";
import { ECHO_READY_MESSAGE, echoCommand, echoMainPath } from "./echo-app.js";
import { NetnsErrorCode } from "./errors.js";
import { run } from "./exec.js";
import { netnsPath } from "./names.js";
import { nodeConflist, writeNodeConflist } from "./node-conflist.js";
import { checkPod, createPodNetns, deletePod, type PodNetns, writeHostsFile } from "./pods.js";
import { type NetnsProcess, spawnInNetns } from "./spawn.js";
import { cleanupStale, createTopology, listNetns, type Topology } from "./topology.js";

const isRoot = process.getuid?.() === 0;
const PREFIX = "ambt-h-";
/** Its own prefix: cleanupStale must not touch the topology the other tests use. */
const STALE_PREFIX = "ambt-hs-";

async function curl(
  netns: string,
  url: string,
  via: "ip-netns-exec" | "nsenter" = "ip-netns-exec",
): Promise<string> {
  const args = ["-sS", "--max-time", "5", url];
  const { stdout } =
    via === "ip-netns-exec"
      ? await run("ip", ["netns", "exec", netns, "curl", ...args])
      : await run("nsenter", [`--net=${netnsPath(netns)}`, "curl", ...args]);
  return stdout;
}

describe.skipIf(!isRoot)("netns harness (root only: creates network namespaces)", () => {
  let topo: Topology;
  let client: PodNetns;
  let server: PodNetns;
  let logDir: string;
  const procs: NetnsProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(echoMainPath()))
      throw new Error(`${echoMainPath()} is missing: run \`pnpm build\` first`);
    logDir = await mkdtemp(join(tmpdir(), "ambt-h-logs-"));
    topo = await createTopology({ nodes: [{ name: "a" }, { name: "b" }], prefix: PREFIX });
    for (const n of topo.nodes) await writeNodeConflist(n.confDir, n);
    client = await createPodNetns(topo, "a", { namespace: "demo", name: "client" });
    server = await createPodNetns(topo, "b", { namespace: "demo", name: "server", uid: "uid-server" });
    const { cmd, args } = echoCommand({
      pod: "server",
      namespace: "demo",
      serviceAccount: "httpbin",
      node: "b",
      ports: [9080, 8080],
    });
    const echo = await spawnInNetns(server.netnsPath, cmd, args, { logFile: join(logDir, "echo.log") });
    procs.push(echo);
    await echo.waitForLog(ECHO_READY_MESSAGE);
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) await p.stop();
    await topo?.destroy();
    if (logDir) await rm(logDir, { recursive: true, force: true });
  });

  it("gives nodes and pods the planned addresses", async () => {
    const [a, b] = topo.nodes;
    expect(a).toMatchObject({
      netns: "ambt-h-node-a",
      ip: "198.18.0.11",
      podCidr: "198.19.1.0/24",
      gateway: "198.19.1.1",
    });
    expect(b).toMatchObject({
      netns: "ambt-h-node-b",
      ip: "198.18.0.12",
      podCidr: "198.19.2.0/24",
      gateway: "198.19.2.1",
    });
    expect(client.netns).toBe("ambt-h-demo-client");
    expect(client.ip).toMatch(/^198\.19\.1\.\d+$/);
    expect(server.ip).toMatch(/^198\.19\.2\.\d+$/);
    // The bridge plugin ran in the node netns: cni0 holds the gateway there.
    const { stdout } = await run("ip", ["-n", a!.netns, "-4", "addr", "show", "cni0"]);
    expect(stdout).toContain("198.19.1.1/24");
    const routes = await run("ip", ["-n", a!.netns, "route"]);
    expect(routes.stdout).toContain("198.19.2.0/24 via 198.18.0.12 dev eth0");
  });

  it("a process in pod 1 reaches the echo server in pod 2 across nodes, with its own address", async () => {
    const body = JSON.parse(await curl(client.netns, `http://${server.ip}:9080/hello`));
    expect(body).toMatchObject({
      pod: "server",
      namespace: "demo",
      serviceAccount: "httpbin",
      node: "b",
      path: "/hello",
    });
    // No masquerade anywhere on the path: the server sees the client pod's IP.
    expect(body.peer).toMatch(new RegExp(`^${client.ip.replaceAll(".", "\\.")}:`));
  });

  it("a probe from the node netns reaches its pod", async () => {
    const body = JSON.parse(await curl(topo.node("b").netns, `http://${server.ip}:8080/healthz`, "nsenter"));
    expect(body.peer).toMatch(/^198\.19\.2\.1:/);
  });

  it("resolves service names through the pod's hosts file under `ip netns exec`", async () => {
    await writeHostsFile(client.netns, [
      { ip: server.ip, names: ["echo.demo.svc.cluster.local", "echo.demo"] },
    ]);
    const body = JSON.parse(await curl(client.netns, "http://echo.demo.svc.cluster.local:9080/"));
    expect(body.pod).toBe("server");
    const local = await run("ip", ["netns", "exec", client.netns, "getent", "hosts", "localhost"]);
    expect(local.stdout).toMatch(/127\.0\.0\.1|::1/);
  });

  it("runs CNI CHECK against the cached ADD result", async () => {
    await expect(checkPod(topo, server)).resolves.toBeUndefined();
  });

  it("invokes a chained plugin as libcni does: order, env, injected name/version, prevResult, DEL cache", async () => {
    const node = topo.node("a");
    const record = join(logDir, "recorder.jsonl");
    // A stand-in for ambient-cni, installed where the agent would put it (first in CNI_PATH).
    const recorder = join(node.cniBinDir, "recorder");
    await writeFile(
      recorder,
      `#!${process.execPath}
const fs = require("node:fs");
const conf = JSON.parse(fs.readFileSync(0, "utf8"));
const e = process.env;
fs.appendFileSync(${JSON.stringify(record)}, JSON.stringify({
  command: e.CNI_COMMAND, containerId: e.CNI_CONTAINERID, netns: e.CNI_NETNS, ifName: e.CNI_IFNAME,
  args: e.CNI_ARGS, path: e.CNI_PATH, ns: fs.readlinkSync("/proc/self/ns/net"), conf,
}) + "\\n");
if (e.CNI_COMMAND === "ADD") process.stdout.write(JSON.stringify(conf.prevResult));
`,
      { mode: 0o755 },
    );
    const list = nodeConflist(node);
    list.plugins.push({ type: "recorder", marker: 7 });
    await writeFile(join(node.confDir, "10-ambient-bridge.conflist"), JSON.stringify(list));
    try {
      const pod = await createPodNetns(topo, node, { namespace: "demo", name: "chained", uid: "u-1" });
      await checkPod(topo, pod);
      await deletePod(topo, pod);
      const calls = (await readFile(record, "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(calls.map((c) => c.command)).toEqual(["ADD", "CHECK", "DEL"]);
      const nodeNs = `net:[${(await stat(node.netnsPath)).ino}]`;
      for (const c of calls) {
        expect(c).toMatchObject({
          containerId: pod.containerId,
          netns: pod.netnsPath,
          ifName: "eth0",
          args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=chained;K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=u-1`,
          path: `${node.cniBinDir}:/usr/lib/cni`,
          ns: nodeNs,
        });
        expect(c.conf).toMatchObject({
          type: "recorder",
          marker: 7,
          name: "ambient-pods",
          cniVersion: "1.0.0",
        });
        // ADD: the bridge's result; CHECK and DEL: the cached final result of the ADD.
        expect(c.conf.prevResult.ips[0].address).toBe(`${pod.ip}/24`);
      }
      expect(pod.result).toEqual(calls[0].conf.prevResult);
    } finally {
      await writeNodeConflist(node.confDir, node);
    }
  });

  it("reports a plugin's error JSON as a typed error naming the plugin", async () => {
    const node = topo.node("a");
    const bad = nodeConflist({ ...node, podCidr: "not-a-cidr" });
    const runtime = new CniRuntime({
      path: topo.cniPath(node),
      cacheDir: node.cniCacheDir,
      pluginNetns: node.netnsPath,
    });
    const rt = {
      containerId: "bad0",
      netns: client.netnsPath,
      ifName: "eth1",
      args: k8sArgs({ namespace: "demo", name: "client", containerId: "bad0" }),
    };
    const err = await runtime.addNetworkList(bad, rt).catch((e) => e);
    expect(err.code).toBe(NetnsErrorCode.CNI_PLUGIN_FAILED);
    expect(err.message).toMatch(/CNI plugin bridge ADD failed/);
    expect(err.details.plugin).toBe("bridge");

    const missing = { ...bad, plugins: [{ type: "no-such-plugin" }] };
    const notFound = await runtime.addNetworkList(missing, rt).catch((e) => e);
    expect(notFound.code).toBe(NetnsErrorCode.CNI_PLUGIN_NOT_FOUND);
    expect(notFound.message).toContain("no-such-plugin");
  });

  it("a failed pod ADD leaves no netns behind", async () => {
    const node = topo.node("a");
    const conf = join(node.confDir, "00-broken.conflist");
    await writeFile(
      conf,
      JSON.stringify({ cniVersion: "1.0.0", name: "broken", plugins: [{ type: "no-such-plugin" }] }),
    );
    try {
      const err = await createPodNetns(topo, node, { namespace: "demo", name: "doomed" }).catch((e) => e);
      expect(err.code).toBe(NetnsErrorCode.CNI_PLUGIN_NOT_FOUND);
      expect(await listNetns()).not.toContain("ambt-h-demo-doomed");
    } finally {
      await rm(conf, { force: true });
    }
  });

  it("deletePod runs DEL (the IP is released) and removes the netns and hosts file", async () => {
    const pod = await createPodNetns(topo, "a", { namespace: "demo", name: "shortlived" });
    await writeHostsFile(pod.netns, []);
    const ipamDir = join(topo.node("a").ipamDir, "ambient-pods");
    expect(await readdir(ipamDir)).toContain(pod.ip);
    await deletePod(topo, pod);
    expect(await readdir(ipamDir)).not.toContain(pod.ip);
    expect(await listNetns()).not.toContain(pod.netns);
    expect(existsSync(`/etc/netns/${pod.netns}`)).toBe(false);
  });

  it("stop() ends a process and everything it forked", async () => {
    const p = await spawnInNetns(client.netnsPath, "sh", ["-c", "sleep 300 & echo started; wait"], {
      logFile: join(logDir, "sh.log"),
      stopTimeoutMs: 2_000,
    });
    await p.waitForLog("started");
    const { stdout } = await run("ip", ["netns", "pids", client.netns]);
    const before = stdout.trim().split("\n").length;
    expect(before).toBeGreaterThanOrEqual(2);
    await p.stop();
    expect(p.running).toBe(false);
    const after = await run("ip", ["netns", "pids", client.netns]);
    expect(after.stdout.trim()).toBe("");
  });

  it("waitForLog fails with the log tail when the process exits first", async () => {
    const p = await spawnInNetns(client.netnsPath, "sh", ["-c", "echo boom >&2; exit 3"], {
      logFile: join(logDir, "fail.log"),
    });
    const err = await p.waitForLog("never").catch((e) => e);
    expect(err.code).toBe(NetnsErrorCode.PROCESS_NOT_READY);
    expect(err.message).toContain("boom");
    const missing = await spawnInNetns("/var/run/netns/ambt-h-none", "true", [], {
      logFile: join(logDir, "none.log"),
    }).catch((e) => e);
    expect(missing.code).toBe(NetnsErrorCode.COMMAND_FAILED);
  });

  it("cleanupStale removes a crashed run's netns, processes and hosts dirs", async () => {
    const name = `${STALE_PREFIX}demo-left`;
    await run("ip", ["netns", "add", name]);
    await writeHostsFile(name, []);
    const orphan = await spawnInNetns(netnsPath(name), "sleep", ["300"], {
      logFile: join(logDir, "orphan.log"),
    });
    const removed = await cleanupStale(STALE_PREFIX);
    expect(removed).toEqual([name]);
    await orphan.exited;
    expect(await listNetns()).not.toContain(name);
    expect(existsSync(`/etc/netns/${name}`)).toBe(false);
  });

  // Last: it tears the shared topology down.
  it("destroy() leaves no netns, hosts dir or state behind, and is idempotent", async () => {
    // A forgotten process in a pod: destroy() must not be blocked by it.
    const forgotten = await spawnInNetns(client.netnsPath, "sleep", ["300"], {
      logFile: join(logDir, "x.log"),
    });
    for (const p of procs.splice(0)) await p.stop();
    await topo.destroy();
    await forgotten.exited;
    expect((await listNetns()).filter((n) => n.startsWith(PREFIX))).toEqual([]);
    const etc = await readdir("/etc/netns").catch(() => [] as string[]);
    expect(etc.filter((n) => n.startsWith(PREFIX))).toEqual([]);
    expect(existsSync(topo.stateDir)).toBe(false);
    await expect(topo.destroy()).resolves.toBeUndefined();
  });
});

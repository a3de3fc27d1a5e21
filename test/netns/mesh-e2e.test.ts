// Transparent capture end to end, on real network namespaces: two node netns joined by a switch,
// pods wired by the reference bridge + host-local plugins with ambient-cni chained after them, and
// the real control plane, node agents and ztunnels running inside the node netns (NetnsMesh, the
// same harness as `ambientctl up --netns`). Clients are unmodified `curl`s run with
// `ip netns exec`. The tests share one mesh and run in order: later ones build on the labels and
// policies earlier ones left. Root only; needs the built packages (`pnpm build`).

import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger } from "@ambient/core";
import { NetnsMesh, type NetnsNode, netns } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { metricValue } from "../utils/mesh.js";

const isRoot = process.getuid?.() === 0;
const REPO = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURE = join(REPO, "test", "netns", "fixtures", "e2e");
const PREFIX = "ambt-e2e-";
const SLEEP_PRINCIPAL = "spiffe://cluster.local/ns/demo/sa/sleep";
const WEB_PRINCIPAL = "spiffe://cluster.local/ns/demo/sa/web";
const OLD_PRINCIPAL = "spiffe://cluster.local/ns/legacy/sa/old";
/** Config reaching every process (folder → control plane / agent → ztunnel) takes well under this. */
const PROPAGATION_MS = 30_000;

let mesh: NetnsMesh;
let dir: string;

interface HttpAnswer {
  status: number;
  body: string;
}

/** An unmodified curl inside a netns (`ip netns exec` also mounts the pod's hosts file). */
async function curl(
  netnsName: string,
  url: string,
  timeoutS = 5,
  headers: readonly string[] = [],
): Promise<HttpAnswer> {
  const { stdout } = await netns.run("ip", [
    "netns",
    "exec",
    netnsName,
    "curl",
    "-sS",
    "-m",
    String(timeoutS),
    ...headers.flatMap((h) => ["-H", h]),
    "-w",
    "\n%{http_code}",
    url,
  ]);
  const cut = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

/** curl's outcome as a value: the answer, or the error curl printed. */
const attempt = (netnsName: string, url: string, timeoutS = 3) =>
  curl(netnsName, url, timeoutS).then(
    (r) => r,
    (err: Error) => err,
  );

async function until<T>(what: string, probe: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + PROPAGATION_MS;
  let last: unknown;
  for (;;) {
    last = await probe().catch((err) => err);
    if (last !== undefined && last !== false && !(last instanceof Error)) return last as T;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}; last: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const node = (name: string): NetnsNode => mesh.nodes.get(name)!;
/** How many plaintext connections from `peerIp` a node's ztunnel refused, from its log. */
const refusedPlaintextFrom = (nodeName: string, peerIp: string) =>
  readFileSync(join(mesh.stateDir, "logs", `ztunnel-${nodeName}.log`), "utf8")
    .split("\n")
    .filter(
      (line) =>
        line.includes("inbound plaintext connection refused") && line.includes(`"src.addr":"${peerIp}:`),
    ).length;
const podNs = (namespace: string, name: string) => mesh.podNetns(namespace, name);
const podIp = (namespace: string, name: string) => mesh.pods.get(`${namespace}/${name}`)!.sandbox.ip;

/** Sum of a Prometheus counter over the series whose labels include `labels`, from a node's ztunnel. */
async function metric(nodeName: string, name: string, labels: Record<string, string>): Promise<number> {
  const n = node(nodeName).topology;
  const { status, body } = await curl(n.netns, `http://${n.ip}:15020/metrics`);
  expect(status).toBe(200);
  return metricValue(body, name, labels);
}

/** Our annotations on a pod, as the node's agent recorded them. */
function annotation(nodeName: string, pod: string): string | undefined {
  const file = join(node(nodeName).agentStateDir, "annotations.json");
  if (!existsSync(file)) return undefined;
  const all = JSON.parse(readFileSync(file, "utf8")) as Record<string, Record<string, string>>;
  return all[pod]?.["ambient.istio.io/redirection"];
}

/** A request every 100 ms from `netnsName` until stop(), each outcome with when it started. */
function steadyTraffic(netnsName: string, url: string) {
  const outcomes: { startedAt: number; ok: boolean; why?: string }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const startedAt = Date.now();
      const r = await attempt(netnsName, url, 2);
      const ok = !(r instanceof Error) && r.status === 200;
      outcomes.push({
        startedAt,
        ok,
        ...(!ok && { why: r instanceof Error ? r.message : `HTTP ${r.status}` }),
      });
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  return {
    outcomes,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** Every rule in a netns (iptables-save without counters and comments). */
async function rules(netnsName: string): Promise<string[]> {
  const { stdout } = await netns.run("ip", ["netns", "exec", netnsName, "iptables-save"]);
  return stdout.split("\n").filter((l) => l.startsWith("-A "));
}
const ours = (all: string[]) => all.filter((l) => l.includes("AMBIENT_"));

function setLegacyLabel(label: string | undefined): void {
  const labels = label ? `\n  labels: { istio.io/dataplane-mode: ${label} }` : "";
  writeFileSync(
    join(dir, "01-legacy-namespace.yaml"),
    `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: legacy${labels}\n`,
  );
}

function setPeerAuthentication(mode: "STRICT" | "PERMISSIVE"): void {
  writeFileSync(
    join(dir, "30-peer-authentication.yaml"),
    `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: demo }
spec:
  mtls: { mode: ${mode} }
`,
  );
}

/** A raw exchange on a unix socket: what a confused or hostile local client would send. */
function rawExchange(socketPath: string, bytes: string, until: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    let text = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer on ${socketPath}; got ${JSON.stringify(text)}`));
    }, 10_000);
    s.on("connect", () => s.write(bytes));
    s.on("data", (c) => {
      text += c.toString("utf8");
      if (until(text)) {
        clearTimeout(timer);
        s.destroy();
        resolve(text);
      }
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(text);
    });
    s.on("error", reject);
  });
}

function postJson(socketPath: string, path: string, body: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path, method: "POST", headers: { "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.on("data", (c) => {
          text += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe.skipIf(!isRoot)("the mesh on network namespaces (needs root; skipped otherwise)", () => {
  beforeAll(async () => {
    for (const bin of ["controlplane", "cni", "ztunnel", "ctl"]) {
      if (!existsSync(join(REPO, "packages", bin, "dist", "index.js")))
        throw new Error(
          `packages/${bin}/dist is missing: the netns mesh runs the built binaries; run \`pnpm build\` first`,
        );
    }
    dir = mkdtempSync(join(tmpdir(), "ambt-e2e-manifests-"));
    cpSync(FIXTURE, dir, { recursive: true });
    mesh = await NetnsMesh.start({
      dir,
      prefix: PREFIX,
      logLevel: "info",
      logger: createLogger({ level: "warn" }),
    });
    // Every pod's sandbox is up and its app answers before the tests start.
    await until(
      "web to answer sleep",
      async () => (await curl(podNs("demo", "sleep"), "http://web.demo.svc.cluster.local/")).status === 200,
    );
  }, 180_000);

  afterAll(async () => {
    await mesh?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("an unmodified curl reaches a pod on the other node by name, VIP and pod IP; the node link carries only TLS on 15008", async () => {
    const sleep = podNs("demo", "sleep");
    const a = node("node-a").topology;
    const hosts = readFileSync(join(netns.ETC_NETNS_DIR, sleep, "hosts"), "utf8");
    const vip = hosts
      .split("\n")
      .find((l) => l.includes("web.demo.svc.cluster.local"))
      ?.split(/\s+/)[0];
    expect(vip).toMatch(/^198\.18\.100\./);
    const marker = `plaintext-marker-${randomBytes(6).toString("hex")}`;
    const pcap = join(mesh.stateDir, "node-a-link.pcap");
    const dump = await netns.spawnInNetns(
      a.netnsPath,
      "tcpdump",
      ["-i", a.linkIfName, "-n", "--immediate-mode", "-U", "-w", pcap, "tcp"],
      {
        logFile: join(mesh.stateDir, "logs", "tcpdump.log"),
      },
    );
    await dump.waitForLog(/listening on/);
    const urls = [
      `http://web.demo.svc.cluster.local/${marker}/by-name`,
      `http://${vip}/${marker}/by-vip`,
      `http://${podIp("demo", "web")}:8080/${marker}/by-pod-ip`,
    ];
    for (const url of urls) {
      const r = await curl(sleep, url);
      expect(r.status, url).toBe(200);
      // The destination saw the request as sent.
      expect(JSON.parse(r.body)).toMatchObject({
        pod: "web",
        namespace: "demo",
        path: new URL(url).pathname,
      });
    }
    // Packets reach the file as they are captured (-U, --immediate-mode); stop once ours are there.
    const read = async () => (await netns.run("tcpdump", ["-nn", "-r", pcap])).stdout;
    await until("the capture to hold the HBONE packets", async () => /\.15008[ :]/.test(await read()));
    await dump.stop();

    const raw = readFileSync(pcap);
    expect(raw.includes(marker)).toBe(false);
    expect(raw.includes("GET /")).toBe(false);
    const stdout = await read();
    const packets = stdout.split("\n").filter(Boolean);
    // The control plane (xDS and certificates on 15010) lives on node-a too; everything else that
    // crosses the link is HBONE.
    const dataPlane = packets.filter((l) => !/\.15010[ :]/.test(l));
    expect(
      dataPlane.length,
      `packets on node-a's link:\n${stdout}\n${readFileSync(dump.logFile, "utf8")}`,
    ).toBeGreaterThan(0);
    for (const l of dataPlane) expect(l).toMatch(/\.15008[ :]/);

    // Both ztunnels recorded both identities over mutual TLS.
    const labels = {
      source_principal: SLEEP_PRINCIPAL,
      destination_principal: WEB_PRINCIPAL,
      connection_security_policy: "mutual_tls",
    };
    expect(
      await metric("node-a", "istio_tcp_connections_opened_total", { ...labels, reporter: "source" }),
    ).toBeGreaterThanOrEqual(3);
    expect(
      await metric("node-b", "istio_tcp_connections_opened_total", { ...labels, reporter: "destination" }),
    ).toBeGreaterThanOrEqual(3);
  });

  it("PERMISSIVE lets a pod outside the mesh in; STRICT refuses it while mesh clients and kubelet probes still get through", async () => {
    const old = podNs("legacy", "old");
    const web = `http://${podIp("demo", "web")}:8080/from-legacy`;
    expect((await curl(old, web)).status).toBe(200);
    // By name too: outside the mesh the VIP is the node's business (kube-proxy's DNAT), not ztunnel's.
    const byName = "http://web.demo.svc.cluster.local/from-legacy";
    expect((await curl(old, byName)).status).toBe(200);

    setPeerAuthentication("STRICT");
    await until("STRICT to refuse legacy/old", async () => (await attempt(old, web)) instanceof Error);
    const refused = await attempt(old, web);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toMatch(/curl: \(\d+\)/);
    // Through the VIP it reaches web's ztunnel just the same, and is refused there: node-b logs the
    // refusal for old's address. (curl's own words cannot tell: the reset can land before curl has
    // seen its connect complete, and it then says "Couldn't connect".)
    const refusals = () => refusedPlaintextFrom("node-b", podIp("legacy", "old"));
    const before = refusals();
    const refusedByName = await attempt(old, byName);
    expect(refusedByName).toBeInstanceOf(Error);
    await until("node-b to log the refusal", async () => refusals() > before);

    expect((await curl(podNs("demo", "sleep"), "http://web.demo.svc.cluster.local/")).status).toBe(200);
    // A kubelet probe: from the node's own address, straight to the pod, not through ztunnel.
    const b = node("node-b").topology;
    const probe = await curl(b.netns, `http://${podIp("demo", "web")}:8080/healthz`);
    expect(probe.status).toBe(200);
  });

  it("labelling a running pod's namespace enrols it without a restart; unlabelling unenrols it; a pod labelled none stays out", async () => {
    const old = podNs("legacy", "old");
    const optout = podNs("legacy", "optout");
    const web = `http://${podIp("demo", "web")}:8080/from-old`;
    const pids = [...mesh.nodes.values()].flatMap((n) => [n.agent.pid, n.ztunnel.pid]);
    expect(annotation("node-a", "legacy/old")).toBeUndefined();
    expect(ours(await rules(old))).toEqual([]);

    setLegacyLabel("ambient");
    await until("legacy/old to be enrolled", async () => annotation("node-a", "legacy/old") === "enabled");
    expect(ours(await rules(old)).length).toBeGreaterThan(0);
    // STRICT is still on in demo: only a connection carried by ztunnel with old's identity gets in.
    const r = await until("legacy/old to reach web through ztunnel", async () => {
      const a = await attempt(old, web);
      return a instanceof Error ? undefined : a;
    });
    expect(r.status).toBe(200);
    expect(
      await metric("node-b", "istio_tcp_connections_opened_total", {
        reporter: "destination",
        source_principal: OLD_PRINCIPAL,
        connection_security_policy: "mutual_tls",
      }),
    ).toBeGreaterThanOrEqual(1);
    // optout carries istio.io/dataplane-mode=none: no rules, no annotation, still refused.
    expect(annotation("node-a", "legacy/optout")).toBeUndefined();
    expect(ours(await rules(optout))).toEqual([]);
    expect(await attempt(optout, web)).toBeInstanceOf(Error);

    setLegacyLabel(undefined);
    await until("legacy/old to be unenrolled", async () => annotation("node-a", "legacy/old") === undefined);
    expect(ours(await rules(old))).toEqual([]);
    await until("STRICT to refuse legacy/old again", async () => (await attempt(old, web)) instanceof Error);
    // No process was restarted for any of this.
    expect([...mesh.nodes.values()].flatMap((n) => [n.agent.pid, n.ztunnel.pid])).toEqual(pids);

    setPeerAuthentication("PERMISSIVE");
    await until("PERMISSIVE to let legacy/old in", async () => {
      const a = await attempt(old, web);
      return !(a instanceof Error) && a.status === 200;
    });
  });

  it("a ztunnel rollout while traffic flows refuses no connection (the new one binds next to the old, then the old drains)", async () => {
    // The agent let the old listeners hand their queues over to the new ones.
    const handoff = await netns.run("ip", [
      "netns",
      "exec",
      podNs("demo", "sleep"),
      "cat",
      "/proc/sys/net/ipv4/tcp_migrate_req",
    ]);
    expect(handoff.stdout.trim()).toBe("1");
    const traffic = steadyTraffic(podNs("demo", "sleep"), "http://web.demo.svc.cluster.local/during-rollout");
    try {
      await until("traffic before the rollout", async () => traffic.outcomes.filter((o) => o.ok).length >= 3);
      const startedAt = Date.now();
      const before = node("node-a").ztunnel.pid;
      await mesh.rolloutZtunnel("node-a");
      expect(node("node-a").ztunnel.pid).not.toBe(before);
      const doneAt = Date.now();
      await until(
        "three requests after the rollout",
        async () => traffic.outcomes.filter((o) => o.startedAt > doneAt).length >= 3,
      );
      const during = traffic.outcomes.filter((o) => o.startedAt >= startedAt);
      expect(during.filter((o) => !o.ok)).toEqual([]);
      console.info(
        `ztunnel rollout: ${during.length} requests during and after it, none failed (${doneAt - startedAt} ms)`,
      );
    } finally {
      await traffic.stop();
    }
  });

  it("after a ztunnel crash, new connections recover within seconds of the replacement starting", async () => {
    const traffic = steadyTraffic(podNs("demo", "sleep"), "http://web.demo.svc.cluster.local/after-crash");
    try {
      await until("traffic before the crash", async () => traffic.outcomes.filter((o) => o.ok).length >= 3);
      const { stoppedAt } = await mesh.crashZtunnel("node-a");
      // Only a request started after the old ztunnel was gone shows recovery.
      const first = await until("a successful request after the crash", async () =>
        traffic.outcomes.find((o) => o.startedAt > stoppedAt && o.ok),
      );
      await until(
        "three more requests",
        async () => traffic.outcomes.filter((o) => o.startedAt > first.startedAt).length >= 3,
      );
      expect(traffic.outcomes.filter((o) => o.startedAt > first.startedAt && !o.ok)).toEqual([]);
      console.info(
        `ztunnel crash: new connections recovered ${first.startedAt - stoppedAt} ms after the old one was gone`,
      );
    } finally {
      await traffic.stop();
    }
  });

  it("an agent restart reconciles the rules it finds: nothing duplicated, nothing lost", async () => {
    const netnsNames = [
      podNs("demo", "sleep"),
      podNs("demo", "web"),
      node("node-a").topology.netns,
      node("node-b").topology.netns,
    ];
    const before = await Promise.all(netnsNames.map(rules));
    expect(ours(before[0]!).length).toBeGreaterThan(0);
    expect(ours(before[1]!).length).toBeGreaterThan(0);
    await mesh.restartAgent("node-a");
    await mesh.restartAgent("node-b");
    const after = await Promise.all(netnsNames.map(rules));
    for (const [i, name] of netnsNames.entries()) {
      expect(after[i]!.length, `iptables-save -A lines in ${name}`).toBe(before[i]!.length);
      expect([...after[i]!].sort(), name).toEqual([...before[i]!].sort());
    }
    const r = await until("traffic after the agent restarts", async () => {
      const a = await attempt(
        podNs("demo", "sleep"),
        "http://web.demo.svc.cluster.local/after-agent-restart",
      );
      return a instanceof Error ? undefined : a;
    });
    expect(r.status).toBe(200);
  });

  it("bad input gets a clear error and breaks nothing: a missing netns, an unknown pod, garbage on both agent sockets", async () => {
    const a = node("node-a");
    const topo = mesh.topology;
    const runtime = netns.cniRuntimeFor(topo, a.topology);
    const { list } = await netns.loadNodeNetwork(a.topology.confDir);
    const ambient = list.plugins.find((p) => p.type === "ambient-cni");
    expect(ambient, "ambient-cni chained into the node's conflist").toBeDefined();

    // 1. ADD for a netns that does not exist (ambient-cni as the runtime runs it in the chain).
    const missing = `/var/run/netns/${PREFIX}no-such-netns`;
    const noNetns = await runtime
      .addNetworkList(
        { ...list, plugins: [ambient!] },
        {
          containerId: randomBytes(32).toString("hex"),
          netns: missing,
          ifName: "eth0",
          args: netns.k8sArgs({ namespace: "demo", name: "ghost", containerId: "c0" }),
        },
      )
      .catch((e: Error) => e);
    expect(noNetns).toBeInstanceOf(Error);
    expect((noNetns as Error).message).toMatch(/code 3\).*network namespace .*no-such-netns does not exist/);

    // 2. A pod the cluster does not know: the full chain, as a runtime would; the ADD fails (it is
    // not started outside the mesh) and the runtime's cleanup leaves nothing behind.
    const ghost = await netns
      .createPodNetns(topo, "node-a", { namespace: "demo", name: "ghost" })
      .catch((e: Error) => e);
    expect(ghost).toBeInstanceOf(Error);
    expect((ghost as Error).message).toMatch(
      /code 100\).*pod demo\/ghost is not known to the cluster source/,
    );
    expect(await netns.listNetns()).not.toContain(podNs("demo", "ghost"));
    expect(annotation("node-a", "demo/ghost")).toBeUndefined();

    // 3. Garbage on the CNI socket: an HTTP 400 for a bad request, and a 400 naming the bad fields.
    const garbage = await rawExchange(a.cniSocket, "\x16\x03\x01garbage\r\n\r\n", (t) =>
      t.includes("\r\n\r\n"),
    );
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    const badJson = await postJson(a.cniSocket, "/v1/cni/add", "{not json");
    expect(badJson.status).toBe(400);
    expect(JSON.parse(badJson.body).error).toMatch(/body is not JSON/);
    const badFields = await postJson(a.cniSocket, "/v1/cni/add", JSON.stringify({ podName: 7 }));
    expect(badFields.status).toBe(400);
    expect(JSON.parse(badFields.body).error).toMatch(/podName/);

    // 4. Garbage on the ztunnel socket: an error line naming the problem, then that connection closes.
    const answer = await rawExchange(a.ztunnelSocket, "this is not the protocol\n", (t) =>
      t.includes('"type":"error"'),
    );
    const errorLine = answer
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; error?: string })
      .find((m) => m.type === "error");
    expect(errorLine?.error).toBeTruthy();

    // Nothing else broke: the agent and ztunnel run, traffic flows, a new pod still enrols.
    expect(a.agent.running && a.ztunnel.running).toBe(true);
    expect(
      (await curl(podNs("demo", "sleep"), "http://web.demo.svc.cluster.local/after-garbage")).status,
    ).toBe(200);
    expect(annotation("node-a", "demo/sleep")).toBe("enabled");
  });

  it("a waypoint runs in its own pod netns, uncaptured; service traffic to web goes through it (L7 fault on a header)", async () => {
    writeFileSync(
      join(dir, "40-waypoint.yaml"),
      `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: demo
  labels: { istio.io/waypoint-for: service }
  annotations: { ambient.io/node: node-b }
spec:
  gatewayClassName: istio-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: demo }
spec:
  hosts: [web.demo.svc.cluster.local]
  http:
    - match: [{ headers: { x-fault: { exact: teapot } } }]
      fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }
      route: [{ destination: { host: web.demo.svc.cluster.local } }]
    - route: [{ destination: { host: web.demo.svc.cluster.local } }]
`,
    );
    const demo = join(dir, "10-demo.yaml");
    const text = readFileSync(demo, "utf8");
    const labelled = text.replace(
      "kind: Service\nmetadata: { name: web, namespace: demo }",
      "kind: Service\nmetadata:\n  name: web\n  namespace: demo\n  labels: { istio.io/use-waypoint: waypoint }",
    );
    expect(labelled).not.toBe(text);
    writeFileSync(demo, labelled);

    const sleep = podNs("demo", "sleep");
    const url = "http://web.demo.svc.cluster.local/via-waypoint";
    const teapot = await until("the waypoint to apply the VirtualService", async () => {
      const r = await curl(sleep, url, 5, ["x-fault: teapot"]);
      return r.status === 418 ? r.status : undefined;
    });
    expect(teapot).toBe(418);
    const plain = await curl(sleep, url);
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.body)).toMatchObject({ pod: "web", path: "/via-waypoint" });

    // The waypoint's pod: a sandbox of its own on node-b, not redirected (it terminates HBONE itself).
    const wp = mesh.pods.get("demo/waypoint-waypoint");
    expect(wp?.sandbox.node).toBe("node-b");
    expect(ours(await rules(podNs("demo", "waypoint-waypoint")))).toEqual([]);
    expect(annotation("node-b", "demo/waypoint-waypoint")).toBeUndefined();
    // web's ztunnel saw the request arrive from the waypoint's identity.
    expect(
      await metric("node-b", "istio_tcp_connections_opened_total", {
        reporter: "destination",
        source_principal: "spiffe://cluster.local/ns/demo/sa/waypoint",
        destination_principal: WEB_PRINCIPAL,
      }),
    ).toBeGreaterThanOrEqual(1);
  });
});

// The loopback cluster (`ambientctl up --kube` without --netns) driven with the real kubectl: the
// mesh's own pods are in the API as on a cluster; `kubectl label namespace` enrols running pods
// (ztunnel serves them, HBONE with both identities in the metrics) and unlabelling unenrols them; a
// pod applied later starts enrolled; an AuthorizationPolicy applied with kubectl denies and its
// deletion allows again. Every component runs in this process (no build needed). Loopback 127.32.

import { appendFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createMemoryLogger } from "@ambient/core";
import { run } from "@ambient/ctl";
import { httpGetViaSocks, kube, socksConnect } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";
import { metricValue, scrape } from "../utils/mesh.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/cluster", import.meta.url));
const CLIENT = "spiffe://cluster.local/ns/demo/sa/client";
const WEB = "spiffe://cluster.local/ns/demo/sa/web";
const NODE_1 = "127.32.1.1";
const NODE_2 = "127.32.2.1";
const WEB_HOST = "web.demo.svc.cluster.local";

let state: TempDir;
let cluster: kube.KubeCluster;
let kubectl: KubeClients;

async function k(...args: string[]): Promise<string> {
  const r = await kubectl.kubectl(args);
  expect(r.code, `kubectl ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

const podIp = (name: string) => k("get", "pod", name, "-n", "demo", "-o", "jsonpath={.status.podIP}");
/** A GET from pod `fromIp` through its ztunnel's SOCKS5 listener: the answer, or why it failed. */
const get = (fromIp: string, path = "/") =>
  httpGetViaSocks(fromIp, WEB_HOST, 80, path).then(
    (r) => r.status,
    (err: Error) => err.message,
  );

/** The one file named `name` under `dir` (the kubelets keep their logs in their own state folders). */
async function findFile(dir: string, name: string): Promise<string> {
  const hits = (await readdir(dir, { recursive: true })).filter((p) => p.endsWith(`/${name}`));
  expect(hits).toHaveLength(1);
  return join(dir, hits[0]!);
}

beforeAll(async () => {
  state = await tempDir("ambient-kube-loopback-");
  const { logger } = createMemoryLogger("info");
  cluster = await kube.KubeCluster.start({
    stateDir: state.path,
    dir: FIXTURE,
    loopbackNet: "127.32",
    logLevel: "info",
    logger,
    reflector: { watchdogMs: 10_000, backoff: { initialMs: 100, maxMs: 1_000 } },
  });
  kubectl = await kubeClients(cluster.kubeconfigPath);
  await cluster.podsReady(60_000);
}, 90_000);

afterAll(async () => {
  await kubectl?.cleanup();
  await cluster?.stop();
  await state?.cleanup();
}, 30_000);

describe("the loopback cluster with the real kubectl", () => {
  it("shows the mesh's own pods as on a cluster: istiod behind Service istiod:15012, a ztunnel per node", async () => {
    const wide = await k("get", "pods", "-n", "istio-system", "-o", "wide");
    expect(wide).toMatch(/istiod\s+1\/1\s+Running\s+0\s+\S+\s+127\.32\.1\.1\s+node-1/);
    expect(wide).toMatch(/ztunnel-node-1\s+1\/1\s+Running\s+0\s+\S+\s+127\.32\.1\.1\s+node-1/);
    expect(wide).toMatch(/ztunnel-node-2\s+1\/1\s+Running\s+0\s+\S+\s+127\.32\.2\.1\s+node-2/);
    expect(await k("get", "pods", "-n", "istio-system", "-l", "app=ztunnel", "-o", "name")).toContain(
      "pod/ztunnel-node-2",
    );
    expect(
      await k("get", "service", "istiod", "-n", "istio-system", "-o", "jsonpath={.spec.ports[0].port}"),
    ).toBe("15012");
    // The control plane published its root to every namespace, as istiod does.
    expect(await k("get", "configmap", "istio-ca-root-cert", "-n", "demo", "-o", "name")).toContain(
      "configmap/",
    );
    // kubectl create token works for the node proxies' account.
    expect(
      (await k("create", "token", "ztunnel", "-n", "istio-system", "--audience", "istio-ca")).trim(),
    ).toMatch(/^ey/);
  });

  it("labelling a namespace enrols its running pods (HBONE, both identities in the metrics); unlabelling unenrols", async () => {
    const client = await podIp("client");
    // Not in the mesh: ztunnel serves no listener for the pod.
    expect(await get(client)).toMatch(/ECONNREFUSED/);

    await k("label", "namespace", "demo", "istio.io/dataplane-mode=ambient");
    await eventually(async () => expect(await get(client, "/enrolled")).toBe(200), 20_000);
    const labels = {
      source_principal: CLIENT,
      destination_principal: WEB,
      connection_security_policy: "mutual_tls",
    };
    expect(
      metricValue(await scrape(NODE_1), "istio_tcp_connections_opened_total", {
        ...labels,
        reporter: "source",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metricValue(await scrape(NODE_2), "istio_tcp_connections_opened_total", {
        ...labels,
        reporter: "destination",
      }),
    ).toBeGreaterThanOrEqual(1);

    await k("label", "namespace", "demo", "istio.io/dataplane-mode-");
    await eventually(async () => expect(await get(client)).toMatch(/ECONNREFUSED/), 20_000);
    await k("label", "namespace", "demo", "istio.io/dataplane-mode=ambient");
    await eventually(async () => expect(await get(client)).toBe(200), 20_000);
  });

  it("a pod applied later with kubectl starts enrolled", async () => {
    const file = join(state.path, "late.yaml");
    await writeFile(
      file,
      `apiVersion: v1
kind: Pod
metadata: { name: late, namespace: demo }
spec:
  nodeName: node-2
  serviceAccountName: client
  containers: [{ name: curl, image: curlimages/curl }]
`,
    );
    await k("apply", "-f", file);
    const late = await eventually(async () => {
      const ip = await podIp("late");
      expect(ip).toMatch(/^127\.32\.2\./);
      return ip;
    });
    await eventually(async () => expect(await get(late, "/late")).toBe(200), 20_000);
  });

  it("an AuthorizationPolicy applied with kubectl denies within seconds; deleting it allows again", async () => {
    const client = await podIp("client");
    expect(await get(client)).toBe(200);
    const file = join(state.path, "policy.yaml");
    await writeFile(
      file,
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: web-only-from-nobody, namespace: demo }
spec:
  selector: { matchLabels: { app: web } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: [cluster.local/ns/demo/sa/nobody] } }] }]
`,
    );
    await k("apply", "-f", file);
    await eventually(async () => expect(await get(client)).not.toBe(200), 20_000);
    await k("delete", "-f", file);
    await eventually(async () => expect(await get(client)).toBe(200), 20_000);
  });

  it("kubectl logs reads a pod's container log from its kubelet, and ds/ztunnel resolves through the DaemonSet's selector", async () => {
    const pod = await k("logs", "-n", "istio-system", "ztunnel-node-2");
    expect(pod).toContain("ztunnel ready");
    // The admin listener is on the pod's node address: these are node-2's lines, not node-1's.
    expect(pod).toContain("127.32.2.1");
    const ds = await kubectl.kubectl(["logs", "-n", "istio-system", "ds/ztunnel"]);
    expect(ds.code, ds.stderr).toBe(0);
    expect(ds.stdout).toContain("ztunnel ready");
    expect(ds.stderr).toMatch(/Found 2 pods, using pod\/ztunnel-node-\d/);
    const tail = await k("logs", "-n", "istio-system", "ztunnel-node-1", "--tail=1");
    expect(tail.trimEnd().split("\n")).toHaveLength(1);
    // What this kubelet cannot answer is refused by name, never answered wrongly.
    const since = await kubectl.kubectl(["logs", "-n", "istio-system", "ztunnel-node-1", "--since=1m"]);
    expect(since.code).not.toBe(0);
    expect(since.stderr).toContain("does not support the log option sinceSeconds");
    const none = await kubectl.kubectl(["logs", "-n", "istio-system", "ztunnel-node-1", "-c", "nope"]);
    expect(none.stderr).toContain("container nope is not valid for pod ztunnel-node-1");
  });

  it("kubectl logs -f ds/ztunnel streams the lines ztunnel writes next; a followed pod's log ends when the pod stops", async () => {
    const follow = kubectl.kubectlStream(["logs", "-f", "-n", "istio-system", "ds/ztunnel"]);
    try {
      await eventually(() => expect(follow.output()).toContain("ztunnel ready"));
      // A line written after the request: both nodes' ztunnels log the level change, whichever is followed.
      for (const ip of [NODE_1, NODE_2]) {
        const res = await fetch(`http://${ip}:15000/logging?level=info`, { method: "POST" });
        expect(res.status).toBe(200);
      }
      await eventually(() => expect(follow.output()).toContain("log level changed"));
    } finally {
      await follow.stop();
    }

    const file = join(state.path, "follow.yaml");
    await writeFile(
      file,
      `apiVersion: v1
kind: Pod
metadata: { name: followed, namespace: demo }
spec:
  nodeName: node-1
  serviceAccountName: client
  containers: [{ name: app, image: example/app }]
`,
    );
    await k("apply", "-f", file);
    await eventually(
      async () => expect(await k("get", "pod", "followed", "-n", "demo")).toMatch(/Running/),
      20_000,
    );
    const log = await findFile(state.path, "demo_followed_app.log");
    const app = kubectl.kubectlStream(["logs", "-f", "-n", "demo", "followed"]);
    try {
      // The echo server writes nothing: lines appended to its log file stand in for its stdout.
      await eventually(async () => {
        await appendFile(log, "line written while followed\n");
        expect(app.output()).toContain("line written while followed");
      });
      await k("delete", "pod", "followed", "-n", "demo", "--wait=false");
      // The container stopped: the stream ends and kubectl exits by itself, successfully.
      expect(await app.exited).toBe(0);
    } finally {
      await app.stop();
    }
  });

  it("ambientctl ztunnel-config --node reads that node's ztunnel through the API's pod proxy, with istioctl's columns", async () => {
    const ctl = async (...args: string[]) => {
      const lines: string[] = [];
      const errors: string[] = [];
      const spy = vi.spyOn(process.stderr, "write").mockImplementation((s) => {
        errors.push(String(s));
        return true;
      });
      try {
        const code = await run(["ztunnel-config", ...args], { KUBECONFIG: cluster.kubeconfigPath }, (l) =>
          lines.push(l),
        );
        return { code, out: lines.join("\n"), err: errors.join("") };
      } finally {
        spy.mockRestore();
      }
    };
    const webIp = await podIp("web");
    // The kubeconfig is found as kubectl finds it ($KUBECONFIG); no --node: the first ztunnel pod.
    const workloads = await ctl("workloads", "--node", "node-2");
    expect(workloads.code, workloads.err).toBe(0);
    expect(workloads.out).toMatch(/NAMESPACE\s+POD NAME\s+ADDRESS\s+NODE\s+WAYPOINT\s+PROTOCOL/);
    expect(workloads.out).toMatch(
      new RegExp(`demo\\s+web\\s+${webIp.replaceAll(".", "\\.")}\\s+node-2\\s+None\\s+HBONE`),
    );
    // Certificates are per node: node-1 runs only client, so its ztunnel holds no web certificate.
    const certs = await ctl("certificates", "--node", "node-2");
    expect(certs.out).toMatch(
      /CERTIFICATE NAME\s+TYPE\s+STATUS\s+VALID CERT\s+SERIAL NUMBER\s+NOT AFTER\s+NOT BEFORE/,
    );
    expect(certs.out).toMatch(
      /spiffe:\/\/cluster\.local\/ns\/demo\/sa\/web\s+Leaf\s+Available\s+true\s+[0-9a-f]+/,
    );
    const node1 = JSON.parse((await ctl("certificates", "--node", "node-1", "-o", "json")).out) as {
      identity: string;
    }[];
    expect(node1.map((c) => c.identity)).toContain(CLIENT);
    expect(node1.map((c) => c.identity)).not.toContain(WEB);
    // Connections: one held open from client (node-1) to web (node-2), seen on both nodes' ztunnels.
    const clientIp = await podIp("client");
    const socket = await socksConnect({ host: clientIp, port: 15080 }, { host: WEB_HOST, port: 80 });
    try {
      const ip = webIp.replaceAll(".", "\\.");
      await eventually(async () => {
        const out = (await ctl("connections", "--node", "node-1")).out;
        expect(out).toMatch(/WORKLOAD\s+DIRECTION\s+LOCAL\s+REMOTE\s+REMOTE TARGET\s+PROTOCOL/);
        expect(out).toMatch(
          new RegExp(`client\\.demo\\s+Outbound\\s+\\S+\\s+${ip}:15008\\s+${WEB_HOST}:80\\s+HBONE`),
        );
      });
      await eventually(async () =>
        expect((await ctl("connections", "--node", "node-2")).out).toMatch(
          new RegExp(`web\\.demo\\s+Inbound\\s+${ip}:\\d+\\s+127\\.32\\.1\\.\\d+:\\d+\\s+HBONE`),
        ),
      );
    } finally {
      socket.destroy();
    }
    const services = await ctl("services", "-o", "yaml");
    expect(services.code, services.err).toBe(0);
    expect(services.out).toMatch(/name: web\n/);
    // The same path works for kubectl.
    const raw = await k(
      "get",
      "--raw",
      "/api/v1/namespaces/istio-system/pods/ztunnel-node-2:15000/proxy/config_dump",
    );
    expect(JSON.parse(raw)).toHaveProperty("workloads");

    const missing = await ctl("workloads", "--node", "node-9");
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/no running ztunnel pod \(app=ztunnel in istio-system\) on node node-9/);
  });

  it("ambientctl check finds the healthy cluster healthy (exit 0), and names a waypoint a namespace uses but lacks", async () => {
    const lines: string[] = [];
    const env = { KUBECONFIG: cluster.kubeconfigPath };
    expect(await run(["check"], env, (l) => lines.push(l))).toBe(0);
    const out = lines.join("\n");
    expect(out).toMatch(/ok\s+ztunnel: ztunnel Ready on every node \(2\)/);
    expect(out).toMatch(/ok\s+CNI: not used/);
    expect(out).toMatch(/ok\s+versions: one version: istiod dev, ztunnel dev/);
    expect(out).toContain("No problems found.");

    await k("label", "namespace", "demo", "istio.io/use-waypoint=missing");
    try {
      lines.length = 0;
      expect(await run(["check"], env, (l) => lines.push(l))).toBe(1);
      expect(lines.join("\n")).toMatch(/namespace demo uses waypoint demo\/missing, which does not exist/);
    } finally {
      await k("label", "namespace", "demo", "istio.io/use-waypoint-");
    }
  });
});

// deploy/charts/ambient installed with the real helm into `ambientctl up --kube --netns --no-mesh`:
// the chart's pods run as rendered on the kubelet stand-in — istiod and ztunnel in their own pod
// network namespaces (ztunnel dials istiod by its Service name through the kube-proxy stand-in), the
// CNI agent on each node's network writing the plugin and the chained conflist into the node's CNI
// folders. Pods applied afterwards in a labelled namespace are captured and talk through ztunnel
// with both identities; an upgrade rolls the DaemonSets; uninstall removes the pods and leaves each
// node's CNI config as it was before the install. Root only; needs the built packages.

import { spawn } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger } from "@ambient/core";
import { kube, netns } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHART } from "../deploy/chart.js";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { DEMO_CLIENT_ID, DEMO_WEB_ID, type KubeClients, kubeClients, mustRun } from "../utils/kube.js";
import { metricValue } from "../utils/mesh.js";

const isRoot = process.getuid?.() === 0;
const DEMO = fileURLToPath(new URL("../kube/fixtures/cluster/00-demo.yaml", import.meta.url));
const PREFIX = "ambt-helm-";
const NS = "istio-system";
const NODES = ["node-1", "node-2"];
const WEB_URL = "http://web.demo.svc.cluster.local";
const TRAFFIC = fileURLToPath(new URL("./fixtures/traffic.mjs", import.meta.url));
/** ztunnel's grace period here: a drain (deadline one second less) ends long-lived connections quickly. */
const ZTUNNEL_GRACE_S = 5;

let state: TempDir;
let cluster: kube.KubeCluster;
let clients: KubeClients;

const { k, helm, jsonpath } = mustRun(() => clients);

/** Every file of a node's CNI config folder with its content. */
async function cniConfig(node: string): Promise<Record<string, string>> {
  const dir = cluster.topology!.node(node).confDir;
  const out: Record<string, string> = {};
  for (const f of (await readdir(dir)).sort()) out[f] = await readFile(join(dir, f), "utf8");
  return out;
}

/** The plugin types each conflist chains, in order. */
function pluginTypes(conf: Record<string, string>): string[] {
  return Object.entries(conf)
    .filter(([f]) => f.endsWith(".conflist"))
    .flatMap(([, text]) => (JSON.parse(text) as { plugins: { type: string }[] }).plugins.map((p) => p.type));
}

/** An unmodified curl in a pod's netns: the HTTP status, or curl's error. */
async function curl(pod: string, url: string): Promise<number | string> {
  try {
    const { stdout } = await netns.run("ip", [
      ...["netns", "exec", `${PREFIX}demo-${pod}`],
      ...["curl", "-sS", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", url],
    ]);
    return Number(stdout);
  } catch (err) {
    return (err as Error).message;
  }
}

interface TrafficEvent {
  kind: "started" | "short" | "long-open" | "long-closed" | "stopped";
  at: number;
  id?: number;
  startedAt?: number;
  status?: number;
  error?: string;
  opened?: number;
  closedAt?: number;
  requests?: number;
  byUs?: boolean;
  failure?: string;
}

/**
 * fixtures/traffic.mjs in a pod's netns: a new connection with a GET every 50 ms, and two
 * long-lived keep-alive connections (a GET every 500 ms; reopened when closed). Events as they come.
 */
function steadyTraffic(pod: string, url: string) {
  const child = spawn(
    "ip",
    [
      "netns",
      "exec",
      `${PREFIX}demo-${pod}`,
      process.execPath,
      TRAFFIC,
      "--url",
      url,
      "--interval",
      "50",
      "--long",
      "2",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const events: TrafficEvent[] = [];
  let buffered = "";
  child.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) if (line) events.push(JSON.parse(line) as TrafficEvent);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    events,
    short: () => events.filter((e) => e.kind === "short"),
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
      return events;
    },
  };
}

/** The names of the pods of `app` in istio-system. */
async function podsOf(app: string): Promise<string[]> {
  return (await k("get", "pods", "-n", NS, "-l", `app=${app}`, "-o", "jsonpath={.items[*].metadata.name}"))
    .split(" ")
    .filter(Boolean)
    .sort();
}

/** A ztunnel's metrics, read inside its own pod netns. */
async function ztunnelMetric(node: string, labels: Record<string, string>): Promise<number> {
  const [name, ip] = (
    await k(
      "get",
      "pods",
      "-n",
      NS,
      "-l",
      "app=ztunnel",
      "--field-selector",
      `spec.nodeName=${node}`,
      "-o",
      "jsonpath={.items[0].metadata.name} {.items[0].status.podIP}",
    )
  ).split(" ");
  const { stdout } = await netns.run("ip", [
    ...["netns", "exec", `${PREFIX}${NS}-${name}`],
    ...["curl", "-sS", `http://${ip}:15020/metrics`],
  ]);
  return metricValue(stdout, "istio_tcp_connections_opened_total", labels);
}

describe.skipIf(!isRoot)(
  "helm install of deploy/charts/ambient on `ambientctl up --kube --netns --no-mesh` (needs root; skipped otherwise)",
  () => {
    const before: Record<string, Record<string, string>> = {};

    beforeAll(async () => {
      state = await tempDir("ambient-kube-helm-netns-");
      cluster = await kube.KubeCluster.start({
        stateDir: state.path,
        nodes: NODES,
        netns: { prefix: PREFIX },
        mesh: false,
        logLevel: "info",
        logger: createLogger({ level: "warn" }),
      });
      clients = await kubeClients(cluster.kubeconfigPath);
      for (const node of NODES) before[node] = await cniConfig(node);
    }, 120_000);

    afterAll(async () => {
      await clients?.cleanup();
      await cluster?.stop();
      await state?.cleanup();
      expect((await netns.listNetns()).filter((n) => n.startsWith(PREFIX))).toEqual([]);
    }, 60_000);

    it("install: istiod and ztunnel in their own netns, the CNI agent chained into every node; pods applied later are captured, HBONE with both identities", {
      timeout: 240_000,
    }, async () => {
      // --wait: the harness's controllers create the pods; helm returns once the workloads say Ready.
      await helm(
        ...["install", "ambient", CHART, "-n", NS, "--create-namespace", "--set", "global.tag=t1"],
        ...["--set", `ztunnel.terminationGracePeriodSeconds=${ZTUNNEL_GRACE_S}`],
        ...["--wait", "--timeout", "180s"],
      );
      // Each pod is its workload's: ztunnel's and the CNI agents' DaemonSets, istiod's ReplicaSet.
      const owners = await jsonpath(
        "pods",
        '{range .items[*]}{.metadata.labels.app} {.metadata.ownerReferences[?(@.controller==true)].kind}{"\\n"}{end}',
        NS,
      );
      expect(owners.trim().split("\n").sort()).toEqual([
        "istio-cni-node DaemonSet",
        "istio-cni-node DaemonSet",
        "istiod ReplicaSet",
        "ztunnel DaemonSet",
        "ztunnel DaemonSet",
      ]);
      for (const node of NODES) {
        const conf = await cniConfig(node);
        expect(pluginTypes(conf)).toEqual(["bridge", "ambient-cni"]);
        expect(conf).not.toEqual(before[node]);
      }
      const ips = (await k("get", "pods", "-n", NS, "-o", "jsonpath={.items[*].status.podIP}")).split(" ");
      const nodeIps = cluster.nodes.map((n) => n.ip);
      // istiod and both ztunnels have their own addresses; the CNI agents run on their node's.
      expect(ips.filter((ip) => !nodeIps.includes(ip))).toHaveLength(3);

      await k("apply", "-f", DEMO);
      await k("label", "namespace", "demo", "istio.io/dataplane-mode=ambient");
      await cluster.podsReady(60_000);
      await eventually(async () => expect(await curl("client", WEB_URL)).toBe(200), 30_000);
      const labels = {
        source_principal: DEMO_CLIENT_ID,
        destination_principal: DEMO_WEB_ID,
        connection_security_policy: "mutual_tls",
      };
      expect(await ztunnelMetric("node-1", { ...labels, reporter: "source" })).toBeGreaterThanOrEqual(1);
      expect(await ztunnelMetric("node-2", { ...labels, reporter: "destination" })).toBeGreaterThanOrEqual(1);
    });

    it("rollouts under steady traffic drop nothing: helm upgrade of ztunnel's image, rollout restart of ztunnel, of the CNI agents (pods created meanwhile start captured) and of the control plane", {
      timeout: 480_000,
    }, async () => {
      const rootCert = () =>
        k("get", "configmap", "istio-ca-root-cert", "-n", "demo", "-o", "jsonpath={.data.root-cert\\.pem}");
      const root = await rootCert();
      const traffic = steadyTraffic("client", `${WEB_URL}/`);
      const phases: { name: string; from: number; to: number }[] = [];
      const phase = async (name: string, work: () => Promise<void>) => {
        const from = Date.now();
        await work();
        phases.push({ name, from, to: Date.now() });
      };
      let longBefore: number[] = [];
      try {
        await eventually(
          async () => expect(traffic.short().filter((e) => e.status === 200).length).toBeGreaterThan(5),
          60_000,
        );
        await eventually(
          async () => expect(traffic.events.filter((e) => e.kind === "long-open").length).toBe(2),
          30_000,
        );
        longBefore = traffic.events.filter((e) => e.kind === "long-open").map((e) => e.id!);

        // 1. helm upgrade changing ztunnel's image: node by node, the new pod beside the old one.
        const zBefore = await podsOf("ztunnel");
        await phase("helm upgrade ztunnel.tag=t2", async () => {
          await helm(
            ...["upgrade", "ambient", CHART, "-n", NS, "--reuse-values", "--set", "ztunnel.tag=t2"],
            ...["--wait", "--timeout", "240s"],
          );
          await k("rollout", "status", "daemonset/ztunnel", "-n", NS, "--timeout=240s");
        });
        // The rollout is complete once the new pods are available; the old ones may still be
        // terminating (draining, up to their grace period) and are listed until they are gone.
        let zAfter: string[] = [];
        await eventually(async () => {
          zAfter = await podsOf("ztunnel");
          expect(zAfter).toHaveLength(2);
          expect(zAfter.filter((p) => zBefore.includes(p))).toEqual([]);
        }, 60_000);
        expect(await jsonpath("daemonset/ztunnel", "{.spec.template.spec.containers[0].image}", NS)).toMatch(
          /:t2$/,
        );

        // 2. kubectl rollout restart of ztunnel.
        await phase("rollout restart daemonset/ztunnel", async () => {
          await k("rollout", "restart", "daemonset/ztunnel", "-n", NS);
          await k("rollout", "status", "daemonset/ztunnel", "-n", NS, "--timeout=240s");
        });
        await eventually(async () => {
          const now = await podsOf("ztunnel");
          expect(now).toHaveLength(2);
          expect(now.filter((p) => zAfter.includes(p))).toEqual([]);
        }, 60_000);

        // 3. The CNI agents roll while pods are created on both nodes: each waits (its ADD is
        // retried while its node's agent is away) and starts captured, none outside the mesh.
        await phase("rollout restart daemonset/istio-cni-node", async () => {
          await k("rollout", "restart", "daemonset/istio-cni-node", "-n", NS);
          const file = join(state.path, "during-cni.yaml");
          await writeFile(
            file,
            ["node-1", "node-2"]
              .map(
                (node, i) => `apiVersion: v1
kind: Pod
metadata: { name: during-cni-${i + 1}, namespace: demo }
spec:
  nodeName: ${node}
  serviceAccountName: client
  containers: [{ name: curl, image: curlimages/curl }]
`,
              )
              .join("---\n"),
          );
          await k("apply", "-f", file);
          await k("rollout", "status", "daemonset/istio-cni-node", "-n", NS, "--timeout=240s");
        });
        for (const pod of ["during-cni-1", "during-cni-2"]) {
          await eventually(
            async () =>
              expect(
                await jsonpath(
                  `pod/${pod}`,
                  "{.status.phase} {.metadata.annotations.ambient\\.istio\\.io/redirection}",
                  "demo",
                ),
              ).toBe("Running enabled"),
            90_000,
          );
          await eventually(async () => expect(await curl(pod, WEB_URL)).toBe(200), 30_000);
        }

        // 4. The control plane: a new istiod beside the old one; proxies reconnect; same root.
        await phase("helm upgrade istiod.tag=t3", async () => {
          const before = await podsOf("istiod");
          await helm(
            ...["upgrade", "ambient", CHART, "-n", NS, "--reuse-values", "--set", "istiod.tag=t3"],
            ...["--wait", "--timeout", "240s"],
          );
          await k("rollout", "status", "deployment/istiod", "-n", NS, "--timeout=240s");
          await eventually(
            async () => expect((await podsOf("istiod")).filter((p) => before.includes(p))).toEqual([]),
            60_000,
          );
        });
        expect(await rootCert()).toBe(root);
        // A pod started after the upgrade gets its certificate from the new istiod and is reached.
        await k("delete", "pod", "during-cni-2", "-n", "demo", "--wait=true");
        await k("apply", "-f", join(state.path, "during-cni.yaml"));
        await eventually(async () => expect(await curl("during-cni-2", WEB_URL)).toBe(200), 90_000);

        const lastEnd = Date.now();
        await eventually(
          async () =>
            expect(
              traffic.short().filter((e) => e.startedAt! > lastEnd && e.status === 200).length,
            ).toBeGreaterThan(5),
          30_000,
        );
      } finally {
        await traffic.stop();
      }
      const shorts = traffic.short();
      const failed = shorts.filter((e) => e.status !== 200);
      for (const p of phases)
        console.info(
          `${p.name}: ${shorts.filter((e) => e.startedAt! >= p.from && e.startedAt! <= p.to).length} new connections, ${Math.round((p.to - p.from) / 1000)} s`,
        );
      expect(failed).toEqual([]);
      // Long-lived connections through a replaced ztunnel were drained: closed by the proxy (not by
      // us) once the old ztunnel's drain deadline passed, and the client's new ones worked.
      const closed = traffic.events.filter((e) => e.kind === "long-closed");
      for (const id of longBefore) {
        const end = closed.find((e) => e.id === id);
        expect(end, `long-lived connection ${id}`).toBeDefined();
        expect(end!.byUs, `long-lived connection ${id} ended by the mesh`).toBe(false);
        expect(end!.requests).toBeGreaterThan(0);
      }
      const later = closed.filter((e) => !longBefore.includes(e.id!) && e.requests! > 0);
      expect(later.length).toBeGreaterThan(0);
    });

    it("uninstall removes the release and its pods, and each node's CNI config is back as it was before install", {
      timeout: 120_000,
    }, async () => {
      await helm("uninstall", "ambient", "-n", NS);
      await eventually(async () => expect(await k("get", "pods", "-n", NS, "-o", "name")).toBe(""), 60_000);
      for (const node of NODES)
        await eventually(async () => expect(await cniConfig(node)).toEqual(before[node]), 30_000);
      expect((await helm("list", "-A", "-q")).trim()).toBe("");
    });
  },
);

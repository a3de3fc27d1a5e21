// deploy/charts/ambient installed with the real helm into `ambientctl up --kube --netns --no-mesh`:
// the chart's pods run as rendered on the kubelet stand-in — istiod and ztunnel in their own pod
// network namespaces (ztunnel dials istiod by its Service name through the kube-proxy stand-in), the
// CNI agent on each node's network writing the plugin and the chained conflist into the node's CNI
// folders. Pods applied afterwards in a labelled namespace are captured and talk through ztunnel
// with both identities; an upgrade rolls the DaemonSets; uninstall removes the pods and leaves each
// node's CNI config as it was before the install. Root only; needs the built packages.

import { readdir, readFile } from "node:fs/promises";
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

// deploy/charts/ambient installed with the real helm into the loopback cluster of
// `ambientctl up --kube --no-mesh`: the chart's pods, as rendered, run on the kubelet stand-in
// (istiod and ztunnel off the host network on their own addresses, ztunnel dialling istiod by its
// Service name), a labelled namespace's pods are served by ztunnel with both identities, an upgrade
// of the tag rolls the DaemonSets, and uninstall removes the pods. Loopback 127.36.

import { fileURLToPath } from "node:url";
import { createMemoryLogger } from "@ambient/core";
import { httpGetViaSocks, kube } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHART } from "../deploy/chart.js";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";
import { runWorkloads } from "../utils/kube-workloads.js";
import { metricValue, scrape } from "../utils/mesh.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/cluster", import.meta.url));
const NS = "istio-system";
const CLIENT = "spiffe://cluster.local/ns/demo/sa/client";
const WEB = "spiffe://cluster.local/ns/demo/sa/web";
const WEB_HOST = "web.demo.svc.cluster.local";

let state: TempDir;
let cluster: kube.KubeCluster;
let clients: KubeClients;

async function ok(run: Promise<{ code: number; stdout: string; stderr: string }>, what: string) {
  const r = await run;
  expect(r.code, `${what}: ${r.stderr}`).toBe(0);
  return r.stdout;
}
const k = (...args: string[]) => ok(clients.kubectl(args), `kubectl ${args.join(" ")}`);
const helm = (...args: string[]) => ok(clients.helm(args), `helm ${args.join(" ")}`);
const jsonpath = (what: string, path: string, ns = NS) =>
  k("get", ...what.split(" "), "-n", ns, "-o", `jsonpath=${path}`);

beforeAll(async () => {
  state = await tempDir("ambient-kube-helm-");
  const { logger } = createMemoryLogger("info");
  cluster = await kube.KubeCluster.start({
    stateDir: state.path,
    dir: FIXTURE,
    mesh: false,
    loopbackNet: "127.36",
    logLevel: "info",
    logger,
    reflector: { watchdogMs: 10_000, backoff: { initialMs: 100, maxMs: 1_000 } },
  });
  clients = await kubeClients(cluster.kubeconfigPath);
  await cluster.podsReady(60_000);
}, 90_000);

afterAll(async () => {
  await clients?.cleanup();
  await cluster?.stop();
  await state?.cleanup();
}, 30_000);

describe("helm install of deploy/charts/ambient on `ambientctl up --kube --no-mesh` (loopback)", () => {
  it("--no-mesh runs the folder's apps and no mesh component", async () => {
    expect(await k("get", "pods", "-A", "-o", "name")).not.toMatch(/istiod|ztunnel|istio-cni/);
    expect(await jsonpath("pod client", "{.status.phase}", "demo")).toBe("Running");
  });

  it("install brings the mesh up: istiod Ready, ztunnel and istio-cni-node on every node, a labelled namespace served with both identities", {
    timeout: 180_000,
  }, async () => {
    await helm("install", "ambient", CHART, "-n", NS, "--create-namespace", "--set", "global.tag=t1");
    await runWorkloads(cluster, NS);
    await cluster.podsReady(90_000);
    const wide = await k("get", "pods", "-n", NS, "-o", "wide");
    for (const node of ["node-1", "node-2"]) {
      expect(wide).toMatch(new RegExp(`ztunnel-\\S+\\s+1/1\\s+Running.*${node}`));
      expect(wide).toMatch(new RegExp(`istio-cni-node-\\S+\\s+1/1\\s+Running.*${node}`));
    }
    expect(wide).toMatch(/istiod-\S+\s+1\/1\s+Running/);
    // Off the host network: each pod has its own address, not its node's.
    for (const ip of (await jsonpath("pods -l app=ztunnel", "{.items[*].status.podIP}")).split(" "))
      expect(ip).toMatch(/^127\.36\.[12]\.(\d+)$/);
    expect(await jsonpath("pods -l app=ztunnel", "{.items[*].status.podIP}")).not.toMatch(/\.1(\s|$)/);

    await k("label", "namespace", "demo", "istio.io/dataplane-mode=ambient");
    const client = await jsonpath("pod client", "{.status.podIP}", "demo");
    await eventually(
      async () =>
        expect(await httpGetViaSocks(client, WEB_HOST, 80, "/helm").then((r) => r.status)).toBe(200),
      30_000,
    );
    const ztunnelOn = async (node: string) =>
      jsonpath(`pods -l app=ztunnel --field-selector spec.nodeName=${node}`, "{.items[0].status.podIP}");
    const labels = {
      source_principal: CLIENT,
      destination_principal: WEB,
      connection_security_policy: "mutual_tls",
    };
    expect(
      metricValue(await scrape(await ztunnelOn("node-1")), "istio_tcp_connections_opened_total", {
        ...labels,
        reporter: "source",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metricValue(await scrape(await ztunnelOn("node-2")), "istio_tcp_connections_opened_total", {
        ...labels,
        reporter: "destination",
      }),
    ).toBeGreaterThanOrEqual(1);
  });
});

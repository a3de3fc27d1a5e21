// deploy/charts/ambient installed with the real helm into the loopback cluster of
// `ambientctl up --kube --no-mesh`: the chart's pods, as rendered, run on the kubelet stand-in
// (istiod and ztunnel off the host network on their own addresses, ztunnel dialling istiod by its
// Service name), created by the harness's DaemonSet and Deployment controllers so `helm install
// --wait` returns once they are Ready; a labelled namespace's pods are served by ztunnel with both
// identities; `helm upgrade` and `kubectl rollout restart` roll ztunnel's DaemonSet on every node.
// Loopback 127.36.

import { fileURLToPath } from "node:url";
import { httpGetViaSocks, type kube } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHART } from "../deploy/chart.js";
import { eventually } from "../utils/index.js";
import {
  DEMO_CLIENT_ID,
  DEMO_WEB_ID,
  daemonSetRolledOut,
  type KubeClients,
  type LoopbackTestCluster,
  mustRun,
  startLoopbackCluster,
} from "../utils/kube.js";
import { metricValue, scrape } from "../utils/mesh.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/cluster", import.meta.url));
const NS = "istio-system";
const WEB_HOST = "web.demo.svc.cluster.local";

let t: LoopbackTestCluster;
let cluster: kube.KubeCluster;
let clients: KubeClients;

const { k, helm, jsonpath: jsonpathIn } = mustRun(() => clients);
const jsonpath = (what: string, path: string, ns = NS) => jsonpathIn(what, path, ns);

/** `Kind/name` of each selected pod's controller, sorted. */
async function owners(selector: string): Promise<string[]> {
  const out = await jsonpath(
    `pods -l ${selector}`,
    '{range .items[*]}{.metadata.ownerReferences[?(@.controller==true)].kind}/{.metadata.ownerReferences[?(@.controller==true)].name}{"\\n"}{end}',
  );
  return out.trim().split("\n").sort();
}

/** ztunnel's pods: uid, name, node and the template annotation `rollout` of each. */
async function ztunnelPods(): Promise<{ uid: string; name: string; node: string; rollout: string }[]> {
  const out = await jsonpath(
    "pods -l app=ztunnel",
    '{range .items[*]}{.metadata.uid} {.metadata.name} {.spec.nodeName} {.metadata.annotations.rollout}{"\\n"}{end}',
  );
  return out
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [uid = "", name = "", node = "", rollout = ""] = line.split(" ");
      return { uid, name, node, rollout };
    });
}

/**
 * After a rollout of ztunnel's DaemonSet: `kubectl rollout status` exits 0, the old pods are gone,
 * one new pod per node, and the DaemonSet's status counts every node as updated and available.
 */
async function expectRolled(old: { uid: string; name: string }[]) {
  await k("rollout", "status", "daemonset/ztunnel", "-n", NS, "--timeout=120s");
  // rollout status returns once the new pods are available; the old ones may still be terminating.
  await eventually(async () => {
    const pods = await ztunnelPods();
    expect(pods.map((p) => p.node).sort()).toEqual(["node-1", "node-2"]);
    for (const p of pods) {
      expect(old.map((o) => o.uid)).not.toContain(p.uid);
      expect(old.map((o) => o.name)).not.toContain(p.name);
    }
  }, 60_000);
  const status = JSON.parse(await k("get", "daemonset", "ztunnel", "-n", NS, "-o", "json")) as {
    metadata: { generation: number };
    status: Record<string, number>;
  };
  expect(status.status).toMatchObject(daemonSetRolledOut(2, status.metadata.generation));
  return ztunnelPods();
}

/** The labelled demo namespace is served through the (new) ztunnels. */
async function served(path: string) {
  const client = await jsonpath("pod client", "{.status.podIP}", "demo");
  await eventually(
    async () => expect(await httpGetViaSocks(client, WEB_HOST, 80, path).then((r) => r.status)).toBe(200),
    30_000,
  );
}

beforeAll(async () => {
  t = await startLoopbackCluster("ambient-kube-helm-", { dir: FIXTURE, mesh: false, loopbackNet: "127.36" });
  ({ cluster, clients } = t);
  await cluster.podsReady(60_000);
}, 90_000);

afterAll(() => t?.stop(), 30_000);

describe("helm install of deploy/charts/ambient on `ambientctl up --kube --no-mesh` (loopback)", () => {
  it("--no-mesh runs the folder's apps and no mesh component", async () => {
    expect(await k("get", "pods", "-A", "-o", "name")).not.toMatch(/istiod|ztunnel|istio-cni/);
    expect(await jsonpath("pod client", "{.status.phase}", "demo")).toBe("Running");
  });

  it("install brings the mesh up: istiod Ready, ztunnel and istio-cni-node on every node, a labelled namespace served with both identities", {
    timeout: 180_000,
  }, async () => {
    // --wait: helm returns once the DaemonSets' and the Deployment's status say every pod is Ready.
    await helm(
      ...["install", "ambient", CHART, "-n", NS, "--create-namespace", "--set", "global.tag=t1"],
      ...["--wait", "--timeout", "150s"],
    );
    const ready = await jsonpath(
      "pods",
      '{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
    );
    expect(ready.trim().split("\n")).toHaveLength(5);
    expect(ready).not.toMatch(/ (False|)$/m);
    // Every pod is the controllers': ztunnel and istio-cni-node by their DaemonSet, istiod by the
    // ReplicaSet of Deployment istiod.
    expect(await owners("app=ztunnel")).toEqual(["DaemonSet/ztunnel", "DaemonSet/ztunnel"]);
    expect(await owners("app=istio-cni-node")).toEqual([
      "DaemonSet/istio-cni-node",
      "DaemonSet/istio-cni-node",
    ]);
    const [istiodOwner] = await owners("app=istiod");
    expect(istiodOwner).toMatch(/^ReplicaSet\/istiod-[a-z0-9]+$/);
    expect(
      await jsonpath(`replicaset ${istiodOwner!.split("/")[1]}`, "{.metadata.ownerReferences[0].name}"),
    ).toBe("istiod");
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
    await served("/helm");
    const ztunnelOn = async (node: string) =>
      jsonpath(`pods -l app=ztunnel --field-selector spec.nodeName=${node}`, "{.items[0].status.podIP}");
    const labels = {
      source_principal: DEMO_CLIENT_ID,
      destination_principal: DEMO_WEB_ID,
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

  it("helm upgrade --reuse-values with a new pod annotation rolls ztunnel's DaemonSet on every node", {
    timeout: 240_000,
  }, async () => {
    const old = await ztunnelPods();
    expect(old).toHaveLength(2);
    await helm(
      ...["upgrade", "ambient", CHART, "-n", NS, "--reuse-values"],
      ...["--set", "ztunnel.podAnnotations.rollout=two"],
    );
    const rolled = await expectRolled(old);
    expect(rolled.map((p) => p.rollout)).toEqual(["two", "two"]);
    expect(await jsonpath("daemonset ztunnel", "{.spec.template.metadata.annotations.rollout}")).toBe("two");
    await served("/after-upgrade");
  });

  it("kubectl rollout restart daemonset/ztunnel replaces the pod on every node", {
    timeout: 240_000,
  }, async () => {
    const old = await ztunnelPods();
    await k("rollout", "restart", "daemonset/ztunnel", "-n", NS);
    const rolled = await expectRolled(old);
    // The restart changes only restartedAt: the upgrade's annotation stays.
    expect(rolled.map((p) => p.rollout)).toEqual(["two", "two"]);
    expect(
      await jsonpath(
        "pods -l app=ztunnel",
        "{.items[*].metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
      ),
    ).toMatch(/^\S+ \S+$/);
    await served("/after-restart");
  });
});

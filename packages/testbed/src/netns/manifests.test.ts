// The netns-mode "API server" view of a manifests folder (no root needed): the demo manifests
// are rewritten with netns addresses, pod status follows the sandboxes, and the generated folder
// loads cleanly with the control plane's own loader.

import { cp, mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@ambient/core";
import { eventually } from "@ambient/core/testing";
import { type KubeObject, type Node, objectKey, type Pod } from "@ambient/kube";
import { ManifestStore } from "@ambient/kube/manifests";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listGenerated, NetnsManifests } from "./manifests.js";
import { planPods, rewriteObject, serviceHostsEntries, VipAllocator } from "./manifests-rewrite.js";

const logger = createLogger({ level: "silent" });
const EXAMPLES = join(import.meta.dirname, "../../../../examples");
const NODES = [
  { name: "node-1", ip: "198.18.0.11" },
  { name: "node-2", ip: "198.18.0.12" },
];

const EXTRA = `
apiVersion: v1
kind: Pod
metadata: { name: agent, namespace: istio-system }
spec:
  nodeName: node-1
  hostNetwork: true
  containers: [{ name: agent }]
---
apiVersion: v1
kind: Pod
metadata: { name: unscheduled, namespace: legacy }
spec:
  containers: [{ name: app }]
---
apiVersion: v1
kind: Service
metadata: { name: external, namespace: legacy }
spec:
  clusterIP: 10.96.0.50
  ports: [{ port: 80 }]
---
apiVersion: v1
kind: Service
metadata: { name: headless, namespace: legacy }
spec:
  clusterIP: None
  ports: [{ port: 80 }]
`;

async function loadGenerated(dir: string): Promise<{ objects: KubeObject[]; problems: unknown[] }> {
  const store = new ManifestStore(dir, logger);
  const { problems } = await store.reload();
  return { objects: store.objects(), problems };
}

function find<T extends KubeObject>(
  objects: readonly KubeObject[],
  kind: string,
  name: string,
  ns?: string,
): T {
  const o = objects.find(
    (x) => x.kind === kind && x.metadata.name === name && (ns === undefined || x.metadata.namespace === ns),
  );
  if (!o) throw new Error(`${kind} ${ns ?? ""}/${name} not found`);
  return o as T;
}

describe("netns manifests", () => {
  let root: string;
  let src: string;
  let out: string;
  let m: NetnsManifests | undefined;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "ambt-h-manifests-"));
    src = join(root, "src");
    out = join(root, "generated");
    await cp(EXAMPLES, src, { recursive: true });
    await writeFile(join(src, "50-extra.yaml"), EXTRA);
  });

  afterEach(async () => {
    await m?.stop();
    m = undefined;
    await rm(root, { recursive: true, force: true });
  });

  it("writes one file per source file that the control plane's loader reads without problems", async () => {
    m = await NetnsManifests.start({ sourceDir: src, outDir: out, nodes: NODES, logger, watch: false });
    expect(await listGenerated(out)).toEqual([
      "00-cluster.yaml",
      "10-demo-apps.yaml",
      "20-legacy.yaml",
      "30-policy.yaml",
      "40-routing.yaml",
      "50-extra.yaml",
      "50-shop.yaml",
      "60-ingress.yaml",
      // The shop waypoint's Pod and Service, as Istio's deployment controller would make them.
      "ambient-waypoints.generated.yaml",
    ]);
    const { objects, problems } = await loadGenerated(out);
    expect(problems).toEqual([]);
    // The same objects; the waypoints' synthesized Pod and Service come from their own file.
    const byKey = (list: KubeObject[]) => [...list].sort((a, b) => (objectKey(a) < objectKey(b) ? -1 : 1));
    expect(byKey(objects)).toEqual(byKey(m.objects()));
  });

  it("gives nodes their netns address, remaps loopback VIPs and keeps everything else", async () => {
    m = await NetnsManifests.start({ sourceDir: src, outDir: out, nodes: NODES, logger, watch: false });
    const { objects } = await loadGenerated(out);
    expect(find<Node>(objects, "Node", "node-1").status?.addresses).toEqual([
      { type: "InternalIP", address: "198.18.0.11" },
    ]);
    expect(find<Node>(objects, "Node", "node-2").status?.addresses).toEqual([
      { type: "InternalIP", address: "198.18.0.12" },
    ]);
    // Loopback VIPs become 198.18.100.x in key order (demo/httpbin before demo/sleep).
    const vip = (ns: string, name: string) =>
      (find(objects, "Service", name, ns).spec as { clusterIP?: string }).clusterIP;
    expect(vip("demo", "httpbin")).toBe("198.18.100.1");
    expect(vip("demo", "sleep")).toBe("198.18.100.2");
    expect(vip("legacy", "external")).toBe("10.96.0.50");
    expect(vip("legacy", "headless")).toBe("None");
    // Policies pass through untouched.
    const sourceStore = new ManifestStore(src, logger);
    await sourceStore.reload();
    const policy = (list: KubeObject[]) => find(list, "AuthorizationPolicy", "httpbin-allow-sleep", "demo");
    expect(policy(objects)).toEqual(policy(sourceStore.objects()));
  });

  it("shows pods Pending without an IP until their sandbox exists, then Running and Ready", async () => {
    m = await NetnsManifests.start({ sourceDir: src, outDir: out, nodes: NODES, logger, watch: false });
    let pod = find<Pod>((await loadGenerated(out)).objects, "Pod", "sleep", "demo");
    expect(pod.status?.podIP).toBeUndefined();
    expect(pod.status?.phase).toBe("Pending");

    await m.setPodState("demo", "sleep", { ip: "198.19.1.2", ready: false });
    pod = find<Pod>((await loadGenerated(out)).objects, "Pod", "sleep", "demo");
    expect(pod.status).toMatchObject({ phase: "Running", podIP: "198.19.1.2", hostIP: "198.18.0.11" });
    expect(pod.status?.conditions).toContainEqual({ type: "Ready", status: "False" });

    await m.setPodState("demo", "sleep", {
      ip: "198.19.1.2",
      ready: true,
      annotations: { "ambient.istio.io/redirection": "enabled" },
    });
    pod = find<Pod>((await loadGenerated(out)).objects, "Pod", "sleep", "demo");
    expect(pod.status?.conditions).toContainEqual({ type: "Ready", status: "True" });
    expect(pod.metadata.annotations?.["ambient.istio.io/redirection"]).toBe("enabled");

    await m.setPodState("demo", "sleep", undefined);
    pod = find<Pod>((await loadGenerated(out)).objects, "Pod", "sleep", "demo");
    expect(pod.status?.podIP).toBeUndefined();
    expect(pod.status?.phase).toBe("Pending");
  });

  it("plans a sandbox per scheduled pod and node, skipping hostNetwork and unscheduled pods with a reason", async () => {
    m = await NetnsManifests.start({ sourceDir: src, outDir: out, nodes: NODES, logger, watch: false });
    const plan = m.plan();
    const names = (node: string) =>
      (plan.byNode.get(node) ?? []).map((p) => `${p.namespace}/${p.name}`).sort();
    expect(names("node-1")).toEqual([
      "demo/httpbin-v2",
      "demo/notsleep",
      "demo/sleep",
      "istio-system/istio-ingressgateway",
      "shop/reviews-v2",
      "shop/shopper",
    ]);
    // The pod Gateway httpbin-gateway selects runs the gateway proxy, not an echo app.
    expect(plan.pods.find((p) => p.name === "istio-ingressgateway")).toMatchObject({
      waypoint: "istio-ingressgateway",
      ingress: true,
    });
    expect(names("node-2")).toEqual([
      "demo/httpbin-v1",
      "legacy/legacy-client",
      "shop/reviews-v1",
      "shop/waypoint-waypoint",
    ]);
    expect(plan.pods.find((p) => p.name === "httpbin-v1")).toMatchObject({
      serviceAccount: "httpbin",
      ports: [8080],
      node: "node-2",
    });
    expect(plan.skipped).toEqual([
      expect.objectContaining({
        namespace: "istio-system",
        name: "agent",
        reason: expect.stringMatching(/hostNetwork/),
      }),
      expect.objectContaining({
        namespace: "legacy",
        name: "unscheduled",
        reason: expect.stringMatching(/nodeName/),
      }),
    ]);
  });

  it("follows edits to the source folder, keeping the VIPs already given", async () => {
    m = await NetnsManifests.start({ sourceDir: src, outDir: out, nodes: NODES, logger });
    let changes = 0;
    m.onChange(() => changes++);
    await writeFile(
      join(src, "60-new.yaml"),
      "apiVersion: v1\nkind: Service\nmetadata: { name: aaa, namespace: demo }\nspec:\n  ports: [{ port: 80 }]\n",
    );
    await eventually(async () => {
      const { objects } = await loadGenerated(out);
      // After demo's two and shop's four (reviews, reviews-v1, reviews-v2 and its waypoint's).
      expect((find(objects, "Service", "aaa", "demo").spec as { clusterIP?: string }).clusterIP).toBe(
        "198.18.100.7",
      );
      expect((find(objects, "Service", "httpbin", "demo").spec as { clusterIP?: string }).clusterIP).toBe(
        "198.18.100.1",
      );
    });
    expect(changes).toBeGreaterThan(0);
    await unlink(join(src, "60-new.yaml"));
    await eventually(async () => expect(await listGenerated(out)).not.toContain("60-new.yaml"));
    expect(m.hostsEntries("demo")).toContainEqual({
      ip: "198.18.100.1",
      names: ["httpbin.demo.svc.cluster.local", "httpbin.demo.svc", "httpbin.demo", "httpbin"],
    });
  });

  it("refuses a generated folder inside the source folder", async () => {
    await expect(
      NetnsManifests.start({ sourceDir: src, outDir: join(src, "gen"), nodes: NODES, logger }),
    ).rejects.toMatchObject({ code: "AMB_NETNS_NAME_INVALID" });
  });
});

describe("netns manifest rewriting (pure)", () => {
  const svc = (name: string, clusterIP?: string): KubeObject => ({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "ns" },
    spec: { ...(clusterIP && { clusterIP }), ports: [{ port: 80 }] },
  });

  it("keeps a VIP for the life of the allocator and skips addresses manifests claim", () => {
    const alloc = new VipAllocator();
    const first = alloc.assign([svc("b"), svc("a", "127.10.100.7"), svc("c", "198.18.100.1")]).vips;
    expect([...first]).toEqual([
      ["ns/a", "198.18.100.2"],
      ["ns/b", "198.18.100.3"],
    ]);
    const second = alloc.assign([svc("0"), svc("b")]).vips;
    expect(second.get("ns/b")).toBe("198.18.100.3");
    expect(second.get("ns/0")).toBe("198.18.100.1");
  });

  it("drops a loopback VIP it cannot replace rather than keep one that leads nowhere", () => {
    const out = rewriteObject(svc("a", "127.10.100.1"), {
      nodes: new Map(),
      pods: new Map(),
      vips: new Map(),
    });
    expect((out.spec as { clusterIP?: string }).clusterIP).toBeUndefined();
  });

  it("lists no Service without a ClusterIP in hosts entries", () => {
    expect(serviceHostsEntries([svc("a"), svc("b", "None"), svc("c", "198.18.100.9")])).toEqual([
      { ip: "198.18.100.9", names: ["c.ns.svc.cluster.local", "c.ns.svc", "c.ns"] },
    ]);
  });

  it("skips pods on nodes outside the topology", () => {
    const pod: KubeObject = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p" },
      spec: { nodeName: "elsewhere" },
    };
    expect(planPods([pod], new Set(["node-1"])).skipped).toEqual([
      { namespace: "default", name: "p", reason: "node elsewhere is not in the topology" },
    ]);
  });
});

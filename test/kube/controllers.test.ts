// kube-scheduler and the workload controllers on the loopback cluster, driven with the real kubectl:
// the ztunnel DaemonSet adopts the mesh's pre-made pods (no second set); `kubectl create
// deployment`, scale and `rollout status`; a rolling update (set image) never exceeds maxSurge extra
// pods nor drops below replicas - maxUnavailable available, checked on every event of the pods'
// history; `rollout undo`; a DaemonSet with maxSurge 1 / maxUnavailable 0 restarted with `rollout
// restart` starts each node's new pod and has it Ready before the old one is deleted; graceful
// and forced pod deletion; cascading deletes (background and foreground); an unschedulable pod's
// condition. Pod states come from the API server's event stream (what every watch is served from).
// Loopback range 127.47.

import { writeFile } from "node:fs/promises";
import type { kube } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../utils/index.js";
import {
  daemonSetRolledOut,
  type KubeClients,
  type LoopbackTestCluster,
  mustRun,
  startLoopbackCluster,
} from "../utils/kube.js";

const NS = "ctrl";

interface PodEvent {
  type: string;
  rv: number;
  name: string;
  uid: string;
  node?: string;
  labels: Record<string, string>;
  owner?: string;
  ready: boolean;
  terminating: boolean;
  grace?: number;
}

let t: LoopbackTestCluster;
let cluster: kube.KubeCluster;
let kubectl: KubeClients;
const history: PodEvent[] = [];
/** The DaemonSets' events in NS; `rv` orders them with the pods' (one store, one sequence). */
const dsHistory: { type: string; rv: number; terminating: boolean; finalizers: string[] }[] = [];

const { k } = mustRun(() => kubectl);

const json = async <T>(...args: string[]): Promise<T> => JSON.parse(await k(...args, "-o", "json")) as T;

beforeAll(async () => {
  t = await startLoopbackCluster("ambient-kube-ctrl-", {
    nodes: ["node-1", "node-2"],
    loopbackNet: "127.47",
  });
  ({ cluster, clients: kubectl } = t);
  cluster.api.store.subscribe((e) => {
    if (e.storage === "apps/daemonsets" && e.object.metadata.namespace === NS) {
      const m = e.object.metadata;
      dsHistory.push({
        type: e.type,
        rv: e.rv,
        terminating: !!m.deletionTimestamp,
        finalizers: m.finalizers ?? [],
      });
    }
    if (e.storage !== "/pods" || e.object.metadata.namespace !== NS) return;
    const o = e.object as {
      metadata: Record<string, unknown> & {
        name: string;
        uid: string;
        labels?: Record<string, string>;
        ownerReferences?: { name: string }[];
      };
      spec?: { nodeName?: string };
      status?: { conditions?: { type: string; status: string }[] };
    };
    history.push({
      type: e.type,
      rv: e.rv,
      name: o.metadata.name,
      uid: o.metadata.uid,
      ...(o.spec?.nodeName ? { node: o.spec.nodeName } : {}),
      labels: o.metadata.labels ?? {},
      ...(o.metadata.ownerReferences?.[0] ? { owner: o.metadata.ownerReferences[0].name } : {}),
      ready: o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
      terminating: o.metadata.deletionTimestamp !== undefined,
      ...(o.metadata.deletionGracePeriodSeconds !== undefined
        ? { grace: Number(o.metadata.deletionGracePeriodSeconds) }
        : {}),
    });
  });
  await k("create", "namespace", NS);
}, 90_000);

afterAll(() => t?.stop(), 30_000);

/** The pods alive after each event from `from` on, for pods `select` picks. */
function replay(from: number, select: (e: PodEvent) => boolean): Map<string, PodEvent>[] {
  const live = new Map<string, PodEvent>();
  for (const e of history.slice(0, from)) {
    if (!select(e)) continue;
    if (e.type === "DELETED") live.delete(e.uid);
    else live.set(e.uid, e);
  }
  const out: Map<string, PodEvent>[] = [];
  for (const e of history.slice(from)) {
    if (!select(e)) continue;
    if (e.type === "DELETED") live.delete(e.uid);
    else live.set(e.uid, e);
    out.push(new Map(live));
  }
  return out;
}

describe("workload controllers on the loopback cluster", () => {
  it("the ztunnel DaemonSet adopts the mesh's pods: no second set, status counts both nodes", async () => {
    await eventually(async () => {
      const ds = await json<{ status: Record<string, number> }>("get", "ds", "ztunnel", "-n", "istio-system");
      expect(ds.status).toMatchObject(daemonSetRolledOut(2));
    }, 30_000);
    const pods = await json<{
      items: { metadata: { name: string; ownerReferences?: { kind: string }[] } }[];
    }>("get", "pods", "-n", "istio-system", "-l", "app=ztunnel");
    expect(pods.items.map((p) => p.metadata.name).sort()).toEqual(["ztunnel-node-1", "ztunnel-node-2"]);
    for (const p of pods.items) expect(p.metadata.ownerReferences?.[0]?.kind).toBe("DaemonSet");
    await k("rollout", "status", "daemonset/ztunnel", "-n", "istio-system", "--timeout=30s");
  });

  it("kubectl create deployment, scale and rollout status: ReplicaSet per template, pods spread over nodes", async () => {
    await k("create", "deployment", "web", "-n", NS, "--image=example/web:1", "--replicas=3");
    await k("rollout", "status", "deployment/web", "-n", NS, "--timeout=60s");
    const rs = await json<{
      items: {
        metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
        status: Record<string, number>;
      }[];
    }>("get", "rs", "-n", NS, "-l", "app=web");
    expect(rs.items).toHaveLength(1);
    const hash = rs.items[0]!.metadata.labels["pod-template-hash"]!;
    expect(rs.items[0]!.metadata.name).toBe(`web-${hash}`);
    expect(rs.items[0]!.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("1");
    expect(rs.items[0]!.status).toMatchObject({
      replicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
      fullyLabeledReplicas: 3,
    });
    const pods = await json<{ items: { metadata: { name: string }; spec: { nodeName: string } }[] }>(
      "get",
      "pods",
      "-n",
      NS,
      "-l",
      "app=web",
    );
    expect(pods.items).toHaveLength(3);
    for (const p of pods.items) expect(p.metadata.name).toMatch(new RegExp(`^web-${hash}-[a-z0-9]{5}$`));
    const perNode = pods.items.map((p) => p.spec.nodeName).sort();
    expect(perNode.filter((n) => n === "node-1").length).toBeGreaterThanOrEqual(1);
    expect(perNode.filter((n) => n === "node-2").length).toBeGreaterThanOrEqual(1);
    const d = await json<{
      status: { conditions: { type: string; status: string; reason: string }[] } & Record<string, unknown>;
    }>("get", "deployment", "web", "-n", NS);
    expect(d.status).toMatchObject({
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
    });
    expect(d.status.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: "Available", status: "True", reason: "MinimumReplicasAvailable" }),
        expect.objectContaining({ type: "Progressing", status: "True", reason: "NewReplicaSetAvailable" }),
      ]),
    );

    await k("scale", "deployment", "web", "-n", NS, "--replicas=5");
    await k("rollout", "status", "deployment/web", "-n", NS, "--timeout=60s");
    expect((await k("get", "pods", "-n", NS, "-l", "app=web", "-o", "name")).trim().split("\n")).toHaveLength(
      5,
    );
  });

  it("set image rolls with at most maxSurge extra pods and never fewer than replicas - maxUnavailable available; undo rolls back", async () => {
    await k(
      "patch",
      "deployment",
      "web",
      "-n",
      NS,
      "--type=merge",
      "-p",
      '{"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":"20%"}}}}',
    );
    const from = history.length;
    await k("set", "image", "deployment/web", "-n", NS, "web=example/web:2");
    await k("rollout", "status", "deployment/web", "-n", NS, "--timeout=90s");
    // 5 replicas: maxSurge 1, maxUnavailable 20% of 5 = 1 (rounded down).
    const states = replay(from, (e) => e.labels.app === "web");
    expect(states.length).toBeGreaterThan(10);
    for (const live of states) {
      const running = [...live.values()].filter((p) => !p.terminating);
      expect(running.length).toBeLessThanOrEqual(5 + 1);
      expect(running.filter((p) => p.ready).length).toBeGreaterThanOrEqual(5 - 1);
    }
    const rs = await json<{
      items: {
        metadata: { annotations: Record<string, string> };
        spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
      }[];
    }>("get", "rs", "-n", NS, "-l", "app=web");
    const byImage = new Map(rs.items.map((r) => [r.spec.template.spec.containers[0]!.image, r]));
    expect(byImage.get("example/web:2")?.spec.replicas).toBe(5);
    expect(byImage.get("example/web:2")?.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("2");
    expect(byImage.get("example/web:1")?.spec.replicas).toBe(0);

    await k("rollout", "undo", "deployment/web", "-n", NS);
    await k("rollout", "status", "deployment/web", "-n", NS, "--timeout=90s");
    await eventually(async () => {
      const images = await k(
        "get",
        "pods",
        "-n",
        NS,
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
      );
      expect(images.trim().split(" ")).toEqual(Array(5).fill("example/web:1"));
    }, 30_000);
    const first = await json<{
      items: {
        metadata: { annotations: Record<string, string> };
        spec: { template: { spec: { containers: { image: string }[] } } };
      }[];
    }>("get", "rs", "-n", NS, "-l", "app=web");
    const v1 = first.items.find((r) => r.spec.template.spec.containers[0]!.image === "example/web:1");
    expect(v1?.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("3");
  });

  it("a DaemonSet with maxSurge 1 / maxUnavailable 0: rollout restart has each node's new pod Ready before the old one is deleted", async () => {
    const manifest = `apiVersion: apps/v1
kind: DaemonSet
metadata: { name: agent, namespace: ${NS} }
spec:
  selector: { matchLabels: { app: agent } }
  updateStrategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }
  template:
    metadata: { labels: { app: agent } }
    spec:
      terminationGracePeriodSeconds: 3
      containers: [{ name: agent, image: example/agent:1 }]
`;
    await applyYaml(manifest);
    await k("rollout", "status", "daemonset/agent", "-n", NS, "--timeout=60s");
    const before = await json<{
      items: { metadata: { name: string; labels: Record<string, string> }; spec: { nodeName: string } }[];
    }>("get", "pods", "-n", NS, "-l", "app=agent");
    expect(before.items.map((p) => p.spec.nodeName).sort()).toEqual(["node-1", "node-2"]);
    const oldHash = before.items[0]!.metadata.labels["controller-revision-hash"];
    expect(oldHash).toBeTruthy();

    const from = history.length;
    await k("rollout", "restart", "daemonset/agent", "-n", NS);
    await k("rollout", "status", "daemonset/agent", "-n", NS, "--timeout=90s");

    const events = history.slice(from).filter((e) => e.labels.app === "agent");
    for (const node of ["node-1", "node-2"]) {
      const old = before.items.find((p) => p.spec.nodeName === node)!.metadata.name;
      const oldDeletedAt = events.findIndex((e) => e.name === old && e.terminating);
      const newReadyAt = events.findIndex(
        (e) => e.node === node && e.ready && e.labels["controller-revision-hash"] !== oldHash,
      );
      expect(newReadyAt, `new pod on ${node} Ready`).toBeGreaterThanOrEqual(0);
      expect(oldDeletedAt, `old pod on ${node} deleted`).toBeGreaterThan(newReadyAt);
    }
    // Never more than one node surging, never a node without a Ready pod.
    for (const live of replay(from, (e) => e.labels.app === "agent")) {
      const running = [...live.values()].filter((p) => !p.terminating);
      expect(running.length).toBeLessThanOrEqual(3);
      for (const node of ["node-1", "node-2"])
        expect(
          running.some((p) => p.node === node && p.ready),
          `a Ready pod on ${node}`,
        ).toBe(true);
    }
    const ds = await json<{ status: Record<string, number>; metadata: { generation: number } }>(
      "get",
      "ds",
      "agent",
      "-n",
      NS,
    );
    await eventually(async () => {
      const now = await json<{ status: Record<string, number>; metadata: { generation: number } }>(
        "get",
        "ds",
        "agent",
        "-n",
        NS,
      );
      expect(now.status).toMatchObject(daemonSetRolledOut(2, ds.metadata.generation));
      expect(now.status.numberUnavailable ?? 0).toBe(0);
    }, 20_000);
    const revisions = await k("get", "controllerrevisions", "-n", NS, "-o", "name");
    expect(revisions.trim().split("\n")).toHaveLength(2);
  });

  it("graceful deletion: the pod is Terminating with its grace period until its kubelet stopped it; --force --grace-period=0 removes at once", async () => {
    await applyYaml(`apiVersion: v1
kind: Pod
metadata: { name: slow, namespace: ${NS}, labels: { app: slow } }
spec:
  terminationGracePeriodSeconds: 7
  containers: [{ name: app, image: example/slow:1 }]
`);
    await k("wait", "--for=condition=Ready", "pod/slow", "-n", NS, "--timeout=30s");
    const from = history.length;
    await k("delete", "pod", "slow", "-n", NS, "--wait=true", "--timeout=30s");
    const events = history.slice(from).filter((e) => e.name === "slow");
    expect(events[0]).toMatchObject({ type: "MODIFIED", terminating: true, grace: 7 });
    expect(events.at(-1)?.type).toBe("DELETED");

    await applyYaml(`apiVersion: v1
kind: Pod
metadata: { name: forced, namespace: ${NS}, labels: { app: forced } }
spec:
  containers: [{ name: app, image: example/forced:1 }]
`);
    await k("wait", "--for=condition=Ready", "pod/forced", "-n", NS, "--timeout=30s");
    const at = history.length;
    await k("delete", "pod", "forced", "-n", NS, "--grace-period=0", "--force");
    const forced = history.slice(at).filter((e) => e.name === "forced");
    expect(forced.map((e) => e.type)).toEqual(["DELETED"]);
  });

  it("an unscheduled pod no node fits stays Pending with PodScheduled=False Unschedulable, and is bound once a node fits", async () => {
    await applyYaml(`apiVersion: v1
kind: Pod
metadata: { name: picky, namespace: ${NS} }
spec:
  nodeSelector: { disk: ssd }
  containers: [{ name: app, image: example/picky:1 }]
`);
    await eventually(async () => {
      const p = await json<{
        status: {
          phase: string;
          conditions?: { type: string; status: string; reason?: string; message?: string }[];
        };
      }>("get", "pod", "picky", "-n", NS);
      expect(p.status.phase).toBe("Pending");
      expect(p.status.conditions).toContainEqual(
        expect.objectContaining({
          type: "PodScheduled",
          status: "False",
          reason: "Unschedulable",
          message: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
        }),
      );
    }, 20_000);
    await k("label", "node", "node-2", "disk=ssd");
    await k("wait", "--for=condition=Ready", "pod/picky", "-n", NS, "--timeout=30s");
    expect(await k("get", "pod", "picky", "-n", NS, "-o", "jsonpath={.spec.nodeName}")).toBe("node-2");
    await k("delete", "pod", "picky", "-n", NS);
  });

  it("deleting a Deployment cascades to its ReplicaSets and pods; a foreground delete holds the DaemonSet until its pods are gone", async () => {
    await k("delete", "deployment", "web", "-n", NS);
    await eventually(async () => {
      expect(await k("get", "rs,pods", "-n", NS, "-l", "app=web", "-o", "name")).toBe("");
    }, 30_000);

    const from = history.length;
    const dsFrom = dsHistory.length;
    await k("delete", "daemonset", "agent", "-n", NS, "--cascade=foreground", "--wait=true", "--timeout=30s");
    expect(await k("get", "pods", "-n", NS, "-l", "app=agent", "-o", "name")).toBe("");
    // Held with the foregroundDeletion finalizer, removed only after both pods went (gracefully).
    const ds = dsHistory.slice(dsFrom);
    expect(ds.some((e) => e.terminating && e.finalizers.includes("foregroundDeletion"))).toBe(true);
    expect(ds.at(-1)?.type).toBe("DELETED");
    const agentEvents = history.slice(from).filter((e) => e.labels.app === "agent");
    const podsGone = agentEvents.filter((e) => e.type === "DELETED");
    expect(podsGone).toHaveLength(2);
    expect(agentEvents.some((e) => e.terminating)).toBe(true);
    expect(ds.at(-1)!.rv).toBeGreaterThan(Math.max(...podsGone.map((e) => e.rv)));
  });
});

async function applyYaml(yaml: string): Promise<void> {
  const file = `${t.state.path}/manifest-${Date.now()}.yaml`;
  await writeFile(file, yaml);
  await k("apply", "-f", file);
}

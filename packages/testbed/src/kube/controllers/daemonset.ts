// The DaemonSet controller: one pod per node whose labels match the template's nodeSelector
// (nodes here carry no taints, so every toleration is moot), bound directly with spec.nodeName,
// labelled controller-revision-hash and pod-template-generation; the template's history kept as
// ControllerRevisions (`<ds>-<hash>`). Updates follow the strategy as Kubernetes' rolling_update.go
// does (daemonset-rolling.ts); status is what `kubectl rollout status ds` and helm --wait read.

import { type KubeObject, matchesLabelSelector, type Pod } from "@ambient/kube";
import { apiStatusOf } from "@ambient/kube/api";
import { DS_TEMPLATE_GENERATION } from "../../apiserver/defaults.js";
import { podPath } from "../client.js";
import { Controller, type ControllerDeps } from "./controller.js";
import {
  currentRevision,
  type DaemonSet,
  isPodUpdated,
  REVISION_HASH,
  TEMPLATE_GENERATION,
  truncateHistory,
} from "./controller-revisions.js";
import { type NodePods, rollingUpdate } from "./daemonset-rolling.js";
import { Expectations } from "./expectations.js";
import { matchesNodeSelector } from "./scheduler.js";
import {
  availability,
  controllerOf,
  createPod,
  deletePodRequest,
  isActive,
  isReady,
  KINDS,
  ownerRef,
  podFromTemplate,
  type Workload,
  type WorkloadSpec,
} from "./workload.js";

export class DaemonSetController extends Controller {
  private readonly expectations = new Expectations();

  constructor(d: ControllerDeps) {
    super("daemonset-controller", [KINDS.daemonSet, KINDS.controllerRevision, KINDS.pod, KINDS.node], d);
  }

  protected async sync(): Promise<void> {
    const nodes = this.list("Node");
    const pods = this.list<Pod>("Pod");
    const revisions = this.list("ControllerRevision");
    for (const ds of this.list<DaemonSet>("DaemonSet")) {
      if (ds.metadata.deletionTimestamp) continue;
      const ns = ds.metadata.namespace;
      const hash = await currentRevision(
        this.d.client,
        ds,
        revisions.filter((r) => r.metadata.namespace === ns),
      );
      const owned = await this.claim(
        ds,
        pods.filter((p) => p.metadata.namespace === ns),
      );
      const byNode = nodePods(nodes, owned, ds);
      if (this.expectations.satisfied(ds.metadata.uid!, owned)) {
        await this.manage(ds, byNode, hash);
        const strategy = (ds.spec?.updateStrategy?.type ?? "RollingUpdate") as string;
        if (strategy === "RollingUpdate") {
          const plan = rollingUpdate(ds, byNode, hash, (p) => this.available(ds, p));
          await this.syncNodes(ds, plan.delete, plan.create, hash);
        }
      }
      await truncateHistory(this.d.client, ds, revisions, owned, hash);
      await this.writeStatus(ds, byNode, hash);
    }
  }

  private available(ds: DaemonSet, pod: Pod): boolean {
    const a = availability(pod, ds.spec?.minReadySeconds ?? 0);
    if (a.inMs !== undefined) this.requeueAfter(a.inMs + 50);
    return a.available;
  }

  /** Its pods, adopting orphans the selector matches (pods made before the controller ran). */
  private async claim(ds: DaemonSet, pods: Pod[]): Promise<Pod[]> {
    const owned: Pod[] = [];
    for (const p of pods) {
      const ref = controllerOf(p);
      if (ref?.uid === ds.metadata.uid) owned.push(p);
      else if (!ref && isActive(p) && matchesLabelSelector(ds.spec?.selector ?? {}, p.metadata.labels)) {
        await this.d.client.mergePatch(podPath(p.metadata.namespace ?? "default", p.metadata.name), {
          metadata: { ownerReferences: [...(p.metadata.ownerReferences ?? []), ownerRef(ds)] },
        });
        owned.push(p);
      }
    }
    return owned;
  }

  /**
   * k8s podsShouldBeOnNode: a node that should run the daemon and has no pod (not even a
   * terminating one) gets one; a node that should not loses its pods; a failed pod is replaced.
   */
  private async manage(ds: DaemonSet, byNode: NodePods[], hash: string): Promise<void> {
    const create: string[] = [];
    const remove: Pod[] = [];
    for (const n of byNode) {
      if (!n.shouldRun) {
        remove.push(...n.pods.filter((p) => !p.metadata.deletionTimestamp));
        continue;
      }
      if (n.pods.length === 0) create.push(n.node);
      for (const p of n.pods)
        if (p.status?.phase === "Failed" && !p.metadata.deletionTimestamp) remove.push(p);
    }
    await this.syncNodes(ds, remove, create, hash);
  }

  private async syncNodes(ds: DaemonSet, remove: Pod[], create: string[], hash: string): Promise<void> {
    const key = ds.metadata.uid!;
    const generation = ds.metadata.annotations?.[DS_TEMPLATE_GENERATION] ?? "1";
    for (const node of create) {
      const pod = podFromTemplate(ds, ds.spec?.template ?? {}, `${ds.metadata.name}-`, {
        labels: { [REVISION_HASH]: hash, [TEMPLATE_GENERATION]: generation },
        nodeName: node,
      });
      this.expectations.created(key, await createPod(this.d.client, pod));
      this.log.info({ ds: ds.metadata.name, node }, "daemon pod created");
    }
    for (const p of remove) {
      const [path, body] = deletePodRequest(p);
      this.expectations.deleted(key, p.metadata.uid!);
      await this.d.client.request("DELETE", path, body).catch((err: unknown) => {
        if (apiStatusOf(err) !== 404 && apiStatusOf(err) !== 409) throw err;
      });
      this.log.info(
        { ds: ds.metadata.name, pod: p.metadata.name, node: p.spec?.nodeName },
        "daemon pod deleted",
      );
    }
  }

  /** k8s updateDaemonSetStatus: per node the oldest live pod counts for ready, available and updated. */
  private async writeStatus(ds: DaemonSet, byNode: NodePods[], hash: string): Promise<void> {
    const desired = byNode.filter((n) => n.shouldRun).length;
    let current = 0;
    let misscheduled = 0;
    let ready = 0;
    let available = 0;
    let updated = 0;
    for (const n of byNode) {
      const live = n.pods.filter((p) => !p.metadata.deletionTimestamp);
      if (live.length === 0) continue;
      if (!n.shouldRun) {
        misscheduled++;
        continue;
      }
      current++;
      // The oldest pod speaks for the node (creation times have 1 s resolution: an old pod first).
      const pod = live.find((p) => !isPodUpdated(ds, p, hash)) ?? live[0]!;
      if (isReady(pod)) ready++;
      if (this.available(ds, pod)) available++;
      if (isPodUpdated(ds, pod, hash)) updated++;
    }
    const status = {
      observedGeneration: ds.metadata.generation ?? 1,
      desiredNumberScheduled: desired,
      currentNumberScheduled: current,
      updatedNumberScheduled: updated,
      numberMisscheduled: misscheduled,
      numberReady: ready,
      numberAvailable: available,
      numberUnavailable: Math.max(0, desired - available),
    };
    const was = (ds.status ?? {}) as Record<string, unknown>;
    if (Object.entries(status).every(([k, v]) => (was[k] ?? 0) === v) && "desiredNumberScheduled" in was)
      return;
    const ns = ds.metadata.namespace ?? "default";
    await this.d.client
      .mergePatch(`/apis/apps/v1/namespaces/${ns}/daemonsets/${ds.metadata.name}/status`, { status })
      .catch((err: unknown) => {
        if (apiStatusOf(err) !== 404) throw err;
      });
  }
}

/** Per node: should the daemon run there, and its pods there (oldest first, terminating included). */
function nodePods(nodes: KubeObject[], owned: Pod[], ds: Workload<WorkloadSpec>): NodePods[] {
  const template = { spec: ds.spec?.template?.spec ?? {} };
  const out: NodePods[] = nodes.map((n) => ({
    node: n.metadata.name,
    shouldRun: matchesNodeSelector(template, n),
    pods: [],
  }));
  const byName = new Map(out.map((n) => [n.node, n]));
  for (const p of owned) {
    const node = p.spec?.nodeName;
    if (!node) continue;
    let entry = byName.get(node);
    if (!entry) {
      // A pod on a node that is gone: it should not run there.
      entry = { node, shouldRun: false, pods: [] };
      byName.set(node, entry);
      out.push(entry);
    }
    entry.pods.push(p);
  }
  for (const n of out) {
    n.pods.sort((a, b) =>
      String(a.metadata.creationTimestamp ?? "").localeCompare(String(b.metadata.creationTimestamp ?? "")),
    );
  }
  return out;
}

// The ReplicaSet controller: keeps spec.replicas active pods that match the selector and that it
// controls (ownerReferences, controller: true), adopting matching orphans as Kubernetes does;
// new pods are `<rs>-<5 random chars>`; surplus pods go in k8s' order (unscheduled, pending, not
// ready, newest first). Status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas
// (Ready for minReadySeconds; a terminating pod never counts), observedGeneration.

import { matchesLabelSelector, type Pod } from "@ambient/kube";
import { apiStatusOf } from "@ambient/kube/api";
import { podPath } from "../client.js";
import { Controller, type ControllerDeps } from "./controller.js";
import { Expectations } from "./expectations.js";
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
} from "./workload.js";

export type ReplicaSet = Workload;

export class ReplicaSetController extends Controller {
  private readonly expectations = new Expectations();

  constructor(d: ControllerDeps) {
    super("replicaset-controller", [KINDS.replicaSet, KINDS.pod], d);
  }

  protected async sync(): Promise<void> {
    const pods = this.list<Pod>("Pod");
    for (const rs of this.list<ReplicaSet>("ReplicaSet")) {
      if (rs.metadata.deletionTimestamp) continue;
      const inNs = pods.filter((p) => p.metadata.namespace === rs.metadata.namespace);
      const owned = await this.claim(rs, inNs);
      if (this.expectations.satisfied(rs.metadata.uid!, owned)) await this.scale(rs, owned);
      await this.writeStatus(rs, owned);
    }
  }

  /** Its pods, after adopting orphans its selector matches (the real controller's ClaimPods). */
  private async claim(rs: ReplicaSet, pods: Pod[]): Promise<Pod[]> {
    const selector = rs.spec?.selector ?? {};
    const owned: Pod[] = [];
    for (const p of pods) {
      const ref = controllerOf(p);
      if (ref?.uid === rs.metadata.uid) owned.push(p);
      else if (!ref && isActive(p) && matchesLabelSelector(selector, p.metadata.labels)) {
        const refs = [...(p.metadata.ownerReferences ?? []), ownerRef(rs)];
        await this.d.client.mergePatch(podPath(p.metadata.namespace ?? "default", p.metadata.name), {
          metadata: { ownerReferences: refs, uid: p.metadata.uid },
        });
        owned.push(p);
      }
    }
    return owned;
  }

  private async scale(rs: ReplicaSet, owned: Pod[]): Promise<void> {
    const active = owned.filter(isActive);
    const want = rs.spec?.replicas ?? 1;
    const key = rs.metadata.uid!;
    if (active.length < want) {
      for (let i = active.length; i < want; i++) {
        const pod = podFromTemplate(rs, rs.spec?.template ?? {}, `${rs.metadata.name}-`);
        this.expectations.created(key, await createPod(this.d.client, pod));
      }
      this.log.info({ rs: rs.metadata.name, created: want - active.length }, "pods created");
    } else if (active.length > want) {
      const victims = [...active].sort(deletionOrder).slice(0, active.length - want);
      for (const p of victims) {
        const [path, body] = deletePodRequest(p);
        this.expectations.deleted(key, p.metadata.uid!);
        await this.d.client.request("DELETE", path, body).catch((err: unknown) => {
          if (apiStatusOf(err) !== 404 && apiStatusOf(err) !== 409) throw err;
        });
      }
      this.log.info({ rs: rs.metadata.name, deleted: victims.length }, "pods deleted");
    }
  }

  private async writeStatus(rs: ReplicaSet, owned: Pod[]): Promise<void> {
    const active = owned.filter(isActive);
    const minReady = rs.spec?.minReadySeconds ?? 0;
    const templateLabels = rs.spec?.template?.metadata?.labels ?? {};
    let available = 0;
    let soonest = Number.POSITIVE_INFINITY;
    for (const p of active) {
      const a = availability(p, minReady);
      if (a.available) available++;
      else if (a.inMs !== undefined) soonest = Math.min(soonest, a.inMs);
    }
    if (soonest !== Number.POSITIVE_INFINITY) this.requeueAfter(soonest + 50);
    const status = {
      replicas: active.length,
      fullyLabeledReplicas: active.filter((p) =>
        Object.entries(templateLabels).every(([k, v]) => p.metadata.labels?.[k] === v),
      ).length,
      readyReplicas: active.filter(isReady).length,
      availableReplicas: available,
      observedGeneration: rs.metadata.generation ?? 1,
    };
    const current = (rs.status ?? {}) as Record<string, unknown>;
    if (Object.entries(status).every(([k, v]) => (current[k] ?? 0) === v)) return;
    const ns = rs.metadata.namespace ?? "default";
    await this.d.client
      .mergePatch(`/apis/apps/v1/namespaces/${ns}/replicasets/${rs.metadata.name}/status`, { status })
      .catch((err: unknown) => {
        if (apiStatusOf(err) !== 404) throw err;
      });
  }
}

/** k8s' ActivePods order: the first are deleted first. */
function deletionOrder(a: Pod, b: Pod): number {
  const rank = (p: Pod) => [
    p.spec?.nodeName ? 1 : 0,
    p.status?.phase === "Pending" ? 0 : p.status?.phase === "Running" ? 2 : 1,
    isReady(p) ? 1 : 0,
  ];
  const ra = rank(a);
  const rb = rank(b);
  for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i]! - rb[i]!;
  // Newer first.
  return String(b.metadata.creationTimestamp ?? "").localeCompare(String(a.metadata.creationTimestamp ?? ""));
}

// One step of a DaemonSet's RollingUpdate, as Kubernetes' rolling_update.go decides it. Without
// surge, old pods are deleted while fewer than maxUnavailable nodes lack an available pod (the
// next sync creates their replacements). With maxSurge, a node's new pod starts beside the old
// one, at most maxSurge nodes at a time, and the old pod is deleted only once the new one is
// available; an old pod that is not available is replaced at once, needing no budget.

import type { Pod } from "@ambient/kube";
import { type DaemonSet, isPodUpdated } from "./controller-revisions.js";
import { scaledValue } from "./workload.js";

export interface NodePods {
  node: string;
  shouldRun: boolean;
  /** The DaemonSet's pods on the node, oldest first, terminating ones included. */
  pods: Pod[];
}

/** k8s updatedDesiredNodeCounts: both round up against the desired node count; both 0 → maxUnavailable 1. */
export function updatedDesiredNodeCounts(
  ds: DaemonSet,
  desired: number,
): { maxSurge: number; maxUnavailable: number } {
  const ru = ds.spec?.updateStrategy?.rollingUpdate ?? {};
  const where = `DaemonSet ${ds.metadata.namespace}/${ds.metadata.name} spec.updateStrategy.rollingUpdate`;
  const maxSurge = scaledValue(ru.maxSurge ?? 0, desired, true, `${where}.maxSurge`);
  let maxUnavailable = scaledValue(ru.maxUnavailable ?? 1, desired, true, `${where}.maxUnavailable`);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable };
}

/** The live new and old pod of a node; undefined when the node has duplicates (manage's business). */
function updatedPodsOnNode(
  ds: DaemonSet,
  pods: Pod[],
  hash: string,
): { newPod?: Pod; oldPod?: Pod } | undefined {
  let newPod: Pod | undefined;
  let oldPod: Pod | undefined;
  for (const p of pods) {
    if (p.metadata.deletionTimestamp) continue;
    if (isPodUpdated(ds, p, hash)) {
      if (newPod) return undefined;
      newPod = p;
    } else {
      if (oldPod) return undefined;
      oldPod = p;
    }
  }
  return { ...(newPod ? { newPod } : {}), ...(oldPod ? { oldPod } : {}) };
}

export function rollingUpdate(
  ds: DaemonSet,
  byNode: NodePods[],
  hash: string,
  available: (p: Pod) => boolean,
): { delete: Pod[]; create: string[] } {
  const desired = byNode.filter((n) => n.shouldRun).length;
  const { maxSurge, maxUnavailable } = updatedDesiredNodeCounts(ds, desired);
  const running = byNode.filter((n) => n.shouldRun && n.pods.length > 0);
  if (maxSurge === 0) {
    let unavailable = 0;
    const replaceNow: Pod[] = [];
    const candidates: Pod[] = [];
    for (const n of running) {
      const found = updatedPodsOnNode(ds, n.pods, hash);
      if (!found) {
        unavailable++;
        continue;
      }
      const { newPod, oldPod } = found;
      if (!newPod && !oldPod) unavailable++;
      else if (newPod) {
        if (!available(newPod)) unavailable++;
      } else if (oldPod && !available(oldPod)) replaceNow.push(oldPod);
      else if (oldPod && unavailable < maxUnavailable) candidates.push(oldPod);
    }
    const room = Math.max(0, maxUnavailable - unavailable);
    return { delete: [...replaceNow, ...candidates.slice(0, room)], create: [] };
  }
  let surging = 0;
  const oldToDelete: Pod[] = [];
  const replaceNow: string[] = [];
  const candidates: string[] = [];
  for (const n of running) {
    const found = updatedPodsOnNode(ds, n.pods, hash);
    if (!found) {
      surging++;
      continue;
    }
    const { newPod, oldPod } = found;
    if (!oldPod) continue;
    if (!newPod) {
      if (!available(oldPod)) replaceNow.push(n.node);
      else candidates.push(n.node);
      continue;
    }
    surging++;
    if (available(newPod)) oldToDelete.push(oldPod);
  }
  const room = Math.max(0, maxSurge - surging);
  return { delete: oldToDelete, create: [...replaceNow, ...candidates.slice(0, room)] };
}

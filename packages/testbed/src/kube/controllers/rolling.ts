// How a Deployment moves from its old ReplicaSets to the new one, step for step as Kubernetes'
// deployment controller (rolling.go, recreate.go): the new ReplicaSet grows while the total stays
// within replicas + maxSurge; old ones shrink, unhealthy replicas first, while at least
// replicas - maxUnavailable stay available. Each call makes one step; the next sync the next.

import type { Deployment } from "./deployment.js";
import type { ReplicaSet } from "./replicaset.js";
import { scaledValue } from "./workload.js";

export type Fenceposts =
  | { type: "Recreate" }
  | { type: "RollingUpdate"; maxSurge: number; maxUnavailable: number };

type Scale = (rs: ReplicaSet, replicas: number) => Promise<void>;

/** maxSurge rounds up, maxUnavailable down; both 0 would stall, so maxUnavailable becomes 1 (k8s ResolveFenceposts). */
export function fenceposts(d: Deployment): Fenceposts {
  const strategy = d.spec?.strategy ?? {};
  if (strategy.type === "Recreate") return { type: "Recreate" };
  const where = `Deployment ${d.metadata.namespace}/${d.metadata.name} spec.strategy.rollingUpdate`;
  const want = d.spec?.replicas ?? 1;
  const ru = strategy.rollingUpdate ?? {};
  const maxSurge = scaledValue(ru.maxSurge ?? "25%", want, true, `${where}.maxSurge`);
  let maxUnavailable = scaledValue(ru.maxUnavailable ?? "25%", want, false, `${where}.maxUnavailable`);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { type: "RollingUpdate", maxSurge, maxUnavailable };
}

const replicasOf = (rs: ReplicaSet) => rs.spec?.replicas ?? 0;
const availableOf = (rs: ReplicaSet) =>
  Number((rs.status as { availableReplicas?: number } | undefined)?.availableReplicas ?? 0);
const oldestFirst = (rss: ReplicaSet[]) =>
  [...rss].sort((a, b) =>
    String(a.metadata.creationTimestamp ?? "").localeCompare(String(b.metadata.creationTimestamp ?? "")),
  );

export async function rolling(
  d: Deployment,
  newRS: ReplicaSet,
  old: ReplicaSet[],
  f: Extract<Fenceposts, { type: "RollingUpdate" }>,
  scale: Scale,
): Promise<void> {
  const want = d.spec?.replicas ?? 1;
  const all = [newRS, ...old];
  const total = () => all.reduce((n, rs) => n + replicasOf(rs), 0);
  // Scale up the new ReplicaSet within replicas + maxSurge.
  if (replicasOf(newRS) > want) {
    await scale(newRS, want);
    return;
  }
  if (replicasOf(newRS) < want) {
    const room = want + f.maxSurge - total();
    if (room > 0) {
      await scale(newRS, replicasOf(newRS) + Math.min(room, want - replicasOf(newRS)));
      return;
    }
  }
  // Scale down old ones while replicas - maxUnavailable stay available.
  if (old.every((rs) => replicasOf(rs) === 0)) return;
  const minAvailable = want - f.maxUnavailable;
  const newUnavailable = replicasOf(newRS) - availableOf(newRS);
  const maxScaledDown = total() - minAvailable - newUnavailable;
  if (maxScaledDown <= 0) return;
  // Unhealthy old replicas first: removing them costs no availability.
  let cleaned = 0;
  for (const rs of oldestFirst(old)) {
    if (cleaned >= maxScaledDown) break;
    const unhealthy = replicasOf(rs) - availableOf(rs);
    if (unhealthy <= 0) continue;
    const n = Math.min(maxScaledDown - cleaned, unhealthy);
    await scale(rs, replicasOf(rs) - n);
    cleaned += n;
  }
  const availableNow = all.reduce((n, rs) => n + Math.min(availableOf(rs), replicasOf(rs)), 0);
  let budget = Math.min(availableNow - minAvailable, maxScaledDown - cleaned);
  for (const rs of oldestFirst(old)) {
    if (budget <= 0) break;
    const n = Math.min(replicasOf(rs), budget);
    if (n <= 0) continue;
    await scale(rs, replicasOf(rs) - n);
    budget -= n;
  }
}

/** Recreate: every old replica gone (pods included) before the new ReplicaSet grows. */
export async function recreate(
  d: Deployment,
  newRS: ReplicaSet,
  old: ReplicaSet[],
  oldPods: number,
  scale: Scale,
): Promise<void> {
  for (const rs of old) if (replicasOf(rs) > 0) await scale(rs, 0);
  if (oldPods > 0) return;
  await scale(newRS, d.spec?.replicas ?? 1);
}

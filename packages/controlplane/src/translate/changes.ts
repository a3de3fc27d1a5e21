// What one input change touches. The translator (index.ts) keeps each pod's, service's and
// policy's output from the previous translation and recomputes only the items a change can reach;
// this module decides which those are, from the objects that differ between two snapshots.
//
// The reach of each kind follows what the per-item translations read:
//   - a Pod: its own workload (Services and policies never read pods);
//   - a Service in namespace X: itself, and every workload in X (the pod-to-service join, and the
//     named target ports resolved against each pod);
//   - an AuthorizationPolicy in X: itself, and every workload in X (which policies select it);
//     in the root namespace its selector reaches pods everywhere: everything;
//   - a Namespace X: every workload and Service in X (ambient enrolment, network and waypoint
//     labels, a waypoint's allowedRoutes selector);
//   - a ServiceEntry in X: itself, and every workload in X (its workloadSelector picks Pods and
//     WorkloadEntries there, which then list its hosts);
//   - a WorkloadEntry: its own workload (it is joined to Services and ServiceEntries like a Pod);
//   - a Node: the workloads scheduled on it (locality);
//   - a PeerAuthentication or a Gateway: everything (mesh-wide modes, waypoint attachment is
//     resolved across namespaces). Both are rare edits, so exactness beats cleverness there.
//   - VirtualService, DestinationRule, RequestAuthentication: only the waypoint configuration,
//     which is rebuilt from the snapshot every time (it is the objects themselves).
// Being wider than needed only costs time; being narrower would be a wrong push, which the
// property test (incremental.test.ts) compares against a fresh full translation.

import { type KubeObject, namespaceOf } from "@ambient/kube";

export interface ChangeScope {
  /** Recompute everything: first translation, or a change whose reach is mesh-wide. */
  all: boolean;
  /** Object keys that were added, removed or changed. */
  keys: Set<string>;
  /** Namespaces whose workloads are all recomputed. */
  podNamespaces: Set<string>;
  /** Namespaces whose Services are all recomputed. */
  serviceNamespaces: Set<string>;
  /** Nodes whose workloads are recomputed. */
  nodes: Set<string>;
}

const EVERYTHING: ChangeScope = {
  all: true,
  keys: new Set(),
  podNamespaces: new Set(),
  serviceNamespaces: new Set(),
  nodes: new Set(),
};

/**
 * The scope of the change from `before` to `after` (both keyed by objectKey). An object whose
 * reference changed but whose content did not (a folder file re-read, an allocator's copy) is
 * not a change.
 */
export function changeScope(
  before: ReadonlyMap<string, KubeObject> | undefined,
  after: ReadonlyMap<string, KubeObject>,
  rootNamespace: string,
): ChangeScope {
  if (!before) return EVERYTHING;
  const scope: ChangeScope = {
    all: false,
    keys: new Set(),
    podNamespaces: new Set(),
    serviceNamespaces: new Set(),
    nodes: new Set(),
  };
  const touch = (obj: KubeObject): void => {
    if (reach(obj, scope, rootNamespace)) scope.all = true;
  };
  for (const [key, obj] of after) {
    const old = before.get(key);
    if (old === obj || (old !== undefined && sameValue(old, obj))) continue;
    scope.keys.add(key);
    touch(obj);
    if (old) touch(old);
  }
  for (const [key, old] of before) {
    if (after.has(key)) continue;
    scope.keys.add(key);
    touch(old);
  }
  return scope;
}

/** Adds what a changed object reaches to `scope`; true when that is everything. */
function reach(obj: KubeObject, scope: ChangeScope, rootNamespace: string): boolean {
  const ns = namespaceOf(obj);
  switch (obj.kind) {
    case "Pod":
    case "WorkloadEntry":
      return false; // its own key is enough
    case "Service":
    case "ServiceEntry":
      scope.podNamespaces.add(ns);
      return false;
    case "AuthorizationPolicy":
      if (ns === rootNamespace) return true;
      scope.podNamespaces.add(ns);
      return false;
    case "Namespace":
      scope.podNamespaces.add(obj.metadata.name);
      scope.serviceNamespaces.add(obj.metadata.name);
      return false;
    case "Node":
      scope.nodes.add(obj.metadata.name);
      return false;
    case "PeerAuthentication":
    case "Gateway":
      return true;
    default:
      return false;
  }
}

/** Structural equality of two JSON-shaped values (what manifests and the API give). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false;
    if (!sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

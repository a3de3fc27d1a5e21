// Chooses the endpoint of a service a new connection goes to: healthy endpoints only, narrowed by
// the service's routing preference (Kubernetes trafficDistribution), then round robin per service.
// Pure over the endpoints it is given; ProxyState owns the indexes and calls in here.

import type { LoadBalancing, LoadBalancingScope, Workload } from "@ambient/core";
import type { Endpoint } from "./workload.js";

export interface PickOptions {
  /** The client's workload: its network, locality, node and cluster are what "close" means. */
  sourceWorkload?: Workload;
  /** The client's node, when its workload is unknown (or to override an empty `node`). */
  sourceNode?: string;
}

/**
 * Round-robin positions per service key. A service's candidate set changes with the source and
 * with health, so the position is a counter taken modulo the current set, which still spreads
 * connections evenly over whatever set a source sees.
 */
export class RoundRobin {
  private readonly next = new Map<string, number>();

  take(key: string, count: number): number {
    const n = this.next.get(key) ?? 0;
    // Wrap well below 2^53 so the counter never loses precision on a long-lived proxy.
    this.next.set(key, (n + 1) % 1_000_000_007);
    return n % count;
  }

  forget(key: string): void {
    this.next.delete(key);
  }
}

/** Endpoints a connection may use: healthy, and reachable at some address. */
export function usable(endpoints: readonly Endpoint[]): Endpoint[] {
  return endpoints.filter(
    (e) => e.workload.status === "HEALTHY" && (e.workload.addresses.length > 0 || e.workload.hostname !== ""),
  );
}

/**
 * The endpoints `loadBalancing` allows for this source, as Istio's ztunnel ranks them: an
 * endpoint's rank is how many of the preferred scopes, in order, it shares with the source before
 * the first it does not. FAILOVER keeps the best rank present (closest first, farther ones only
 * when no closer one is left); STRICT keeps only endpoints that share every scope.
 */
export function applyRoutingPreference(
  endpoints: readonly Endpoint[],
  loadBalancing: LoadBalancing | undefined,
  source: PickOptions,
): readonly Endpoint[] {
  // PASSTHROUGH services are not balanced by ztunnel; a waypoint that does pick among their
  // endpoints ignores the preferences, as ztunnel's PASSTHROUGH puts every endpoint in one bucket.
  if (!loadBalancing || loadBalancing.mode === "UNSPECIFIED_MODE" || loadBalancing.mode === "PASSTHROUGH")
    return endpoints;
  const scopes = loadBalancing.routingPreference;
  if (scopes.length === 0) return endpoints;

  let best = -1;
  let chosen: Endpoint[] = [];
  for (const endpoint of endpoints) {
    let rank = 0;
    for (const scope of scopes) {
      if (!sameScope(scope, source, endpoint.workload)) break;
      rank++;
    }
    if (loadBalancing.mode === "STRICT" && rank < scopes.length) continue;
    if (rank > best) {
      best = rank;
      chosen = [endpoint];
    } else if (rank === best) {
      chosen.push(endpoint);
    }
  }
  return chosen;
}

/** Picks from `endpoints` (already usable and preference-filtered) round robin under `key`. */
export function pickRoundRobin(
  rr: RoundRobin,
  key: string,
  endpoints: readonly Endpoint[],
): Endpoint | undefined {
  if (endpoints.length === 0) return undefined;
  return endpoints[rr.take(key, endpoints.length)];
}

/**
 * Whether the source and a workload share `scope`. What the source does not tell (no workload,
 * only a node) counts as shared: it cannot make one endpoint closer than another, and treating it
 * as a mismatch would turn every STRICT service into "no endpoint".
 */
function sameScope(scope: LoadBalancingScope, source: PickOptions, target: Workload): boolean {
  const src = source.sourceWorkload;
  switch (scope) {
    case "NODE": {
      const node = src?.node || source.sourceNode;
      return node === undefined || node === target.node;
    }
    case "NETWORK":
      return !src || src.network === target.network;
    case "CLUSTER":
      return !src || src.clusterId === target.clusterId;
    // A workload without locality is in region "" zone "" subzone "", as in ztunnel.
    case "REGION":
      return !src || (src.locality?.region ?? "") === (target.locality?.region ?? "");
    case "ZONE":
      return !src || (src.locality?.zone ?? "") === (target.locality?.zone ?? "");
    case "SUBZONE":
      return !src || (src.locality?.subzone ?? "") === (target.locality?.subzone ?? "");
    default:
      // UNSPECIFIED_SCOPE is refused by xDS validation; never prefer on it.
      return false;
  }
}

// Turns one translation result into xDS resources in the ResourceStore. The store diffs by
// content hash, so unchanged objects cost nothing on the wire and one reload is one push batch.

import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  addressResourceName,
  authorizationResourceName,
  encodeAddress,
  encodeAuthorization,
  encodeL7Resource,
  L7_RESOURCE_TYPE_URL,
  type L7Resource,
  l7ResourceName,
  type ResourceStore,
  SpiffeId,
} from "@ambient/core";
import { type KubeObject, namespaceOf } from "@ambient/kube";
import type { TranslateResult, WaypointConfig } from "../translate/index.js";

export interface PublishSummary {
  workloads: number;
  services: number;
  authorizations: number;
  /** Objects for waypoints: VirtualServices, DestinationRules, L7 policies, waypoint Gateways. */
  l7Resources: number;
}

export function publish(
  store: ResourceStore,
  result: TranslateResult,
  objects: readonly KubeObject[] = [],
): PublishSummary {
  const addresses = new Map<string, Uint8Array>();
  for (const workload of result.workloads) {
    const address = { workload };
    addresses.set(addressResourceName(address), encodeAddress(address));
  }
  for (const service of result.services) {
    const address = { service };
    addresses.set(addressResourceName(address), encodeAddress(address));
  }
  const authorizations = new Map<string, Uint8Array>();
  for (const auth of result.authorizations) {
    authorizations.set(authorizationResourceName(auth), encodeAuthorization(auth));
  }
  const l7 = new Map<string, Uint8Array>();
  for (const resource of [...l7Resources(result.waypointConfig), ...podLabels(result, objects)]) {
    l7.set(l7ResourceName(resource), encodeL7Resource(resource));
  }
  store.replaceAll(ADDRESS_TYPE_URL, addresses);
  store.replaceAll(AUTHORIZATION_TYPE_URL, authorizations);
  // A type of its own: Delta ADS subscriptions are per type, so ztunnels (which subscribe to
  // Address and Authorization only) never receive or hold these.
  store.replaceAll(L7_RESOURCE_TYPE_URL, l7);
  return {
    workloads: result.workloads.length,
    services: result.services.length,
    authorizations: result.authorizations.length,
    l7Resources: l7.size,
  };
}

/** Every object a waypoint applies, as written: kind, version, metadata the waypoint reads, spec. */
export function l7Resources(config: WaypointConfig): L7Resource[] {
  const objects: KubeObject[] = [
    ...config.virtualServices,
    ...config.destinationRules,
    ...config.authorizationPolicies,
    ...config.requestAuthentications,
    ...config.gateways,
  ];
  return objects.map((obj) => ({
    kind: obj.kind,
    apiVersion: obj.apiVersion,
    namespace: namespaceOf(obj),
    name: obj.metadata.name,
    spec: obj.spec,
    labels: obj.metadata.labels ?? {},
    annotations: obj.metadata.annotations ?? {},
  }));
}

/**
 * The labels of every pod that is a workload: DestinationRule subsets select endpoints by pod
 * labels, which Istio's Workload message does not carry. Waypoints alone subscribe to this type.
 */
function podLabels(result: TranslateResult, objects: readonly KubeObject[]): L7Resource[] {
  const workloads = new Set(result.workloads.map((w) => `${w.namespace}/${w.name}`));
  const out: L7Resource[] = [];
  for (const o of objects) {
    if (o.kind !== "Pod" || o.apiVersion !== "v1") continue;
    const ns = namespaceOf(o);
    if (!workloads.has(`${ns}/${o.metadata.name}`)) continue;
    out.push({
      kind: "Pod",
      apiVersion: "v1",
      namespace: ns,
      name: o.metadata.name,
      spec: {},
      labels: o.metadata.labels ?? {},
      annotations: {},
    });
  }
  return out;
}

/** node name → SPIFFE IDs of the pods scheduled there: what that node's ztunnel may ask the CA for. */
export function nodeIdentityIndex(result: TranslateResult): Map<string, Set<string>> {
  const index = new Map<string, Set<string>>();
  for (const w of result.workloads) {
    if (!w.node) continue;
    let set = index.get(w.node);
    if (!set) {
      set = new Set();
      index.set(w.node, set);
    }
    set.add(SpiffeId.format(w));
  }
  return index;
}

// Turns one translation result into xDS resources in the ResourceStore. The store diffs by
// content hash, so unchanged objects cost nothing on the wire and one reload is one push batch.
// Encoding is memoized per object: the Translator hands back the very same Workload, Service and
// Authorization objects for what a change did not reach, and sources keep unchanged Kubernetes
// objects, so an edit encodes (and the store hashes) only what changed. Outputs are never mutated
// after translation, which is what makes an object-keyed memo safe.

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
    addresses.set(
      workload.uid,
      memo(encodedAddresses, workload, () => encodeAddress({ workload })),
    );
  }
  for (const service of result.services) {
    const address = { service };
    addresses.set(
      addressResourceName(address),
      memo(encodedAddresses, service, () => encodeAddress(address)),
    );
  }
  const authorizations = new Map<string, Uint8Array>();
  for (const auth of result.authorizations) {
    authorizations.set(
      authorizationResourceName(auth),
      memo(encodedAuthorizations, auth, () => encodeAuthorization(auth)),
    );
  }
  const l7 = new Map<string, Uint8Array>();
  for (const obj of waypointObjects(result.waypointConfig)) {
    const resource = l7Resource(obj);
    l7.set(
      l7ResourceName(resource),
      memo(encodedL7, obj, () => encodeL7Resource(resource)),
    );
  }
  for (const pod of workloadPods(result, objects)) {
    const resource = podLabels(pod);
    l7.set(
      l7ResourceName(resource),
      memo(encodedPodLabels, pod, () => encodeL7Resource(resource)),
    );
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

// Encoded bytes by the object they were encoded from (see the header).
const encodedAddresses = new WeakMap<object, Uint8Array>();
const encodedAuthorizations = new WeakMap<object, Uint8Array>();
const encodedL7 = new WeakMap<object, Uint8Array>();
const encodedPodLabels = new WeakMap<object, Uint8Array>();

function memo(cache: WeakMap<object, Uint8Array>, key: object, encode: () => Uint8Array): Uint8Array {
  let bytes = cache.get(key);
  if (!bytes) {
    bytes = encode();
    cache.set(key, bytes);
  }
  return bytes;
}

/** Every object a waypoint applies. */
function waypointObjects(config: WaypointConfig): KubeObject[] {
  return [
    ...config.virtualServices,
    ...config.destinationRules,
    ...config.authorizationPolicies,
    ...config.requestAuthentications,
    ...config.gateways,
  ];
}

/** An object as a waypoint applies it, as written: kind, version, metadata it reads, spec. */
function l7Resource(obj: KubeObject): L7Resource {
  return {
    kind: obj.kind,
    apiVersion: obj.apiVersion,
    namespace: namespaceOf(obj),
    name: obj.metadata.name,
    spec: obj.spec,
    labels: obj.metadata.labels ?? {},
    annotations: obj.metadata.annotations ?? {},
  };
}

/**
 * The pods that are workloads: DestinationRule subsets select endpoints by pod labels, which
 * Istio's Workload message does not carry, so waypoints (alone) subscribe to each one's labels.
 */
function workloadPods(result: TranslateResult, objects: readonly KubeObject[]): KubeObject[] {
  const workloads = new Set(result.workloads.map((w) => `${w.namespace}/${w.name}`));
  return objects.filter(
    (o) => o.kind === "Pod" && o.apiVersion === "v1" && workloads.has(`${namespaceOf(o)}/${o.metadata.name}`),
  );
}

function podLabels(pod: KubeObject): L7Resource {
  return {
    kind: "Pod",
    apiVersion: "v1",
    namespace: namespaceOf(pod),
    name: pod.metadata.name,
    spec: {},
    labels: pod.metadata.labels ?? {},
    annotations: {},
  };
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

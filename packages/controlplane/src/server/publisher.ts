// Turns translation results into xDS resources in the ResourceStore, one push batch per type.
// Publishing follows object identity: the Translator hands back the very same Workload, Service
// and Authorization objects for what a change did not reach, and sources keep unchanged
// Kubernetes objects, so an object published last time is still published as it was, and only
// new objects are named, encoded and handed to the store (which hashes them and drops the ones
// whose bytes did not change). An edit of one pod costs one encode, not ten thousand. This relies
// on outputs never being mutated after translation, which nothing does.

import {
  ADDRESS_TYPE_URL,
  type Address,
  AUTHORIZATION_TYPE_URL,
  type Authorization,
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
  type Workload,
  type Service as XdsService,
} from "@ambient/core";
import { type KubeObject, namespaceOf, type Secret } from "@ambient/kube";
import type { TranslateResult, WaypointConfig } from "../translate/index.js";

export interface PublishSummary {
  workloads: number;
  services: number;
  authorizations: number;
  /** Objects for waypoints: VirtualServices, DestinationRules, L7 policies, waypoint Gateways, pod labels. */
  l7Resources: number;
}

interface Named {
  name: string;
  encode(): Uint8Array;
}

/** One type URL's resources, as the objects they were made from (see the header). */
class TypePublisher<T extends object> {
  /** Each object published last time → its resource name. */
  private published = new Map<T, string>();

  constructor(
    private readonly store: ResourceStore,
    private readonly typeUrl: string,
    private readonly named: (item: T) => Named,
  ) {}

  /**
   * Encodes what is new in `items`; the returned commit makes them the complete set of this type in
   * the store. Split so that an encoding failure in any type changes nothing in any type.
   */
  prepare(items: Iterable<T>): () => void {
    const next = new Map<T, string>();
    const upserts = new Map<string, Uint8Array>();
    for (const item of items) {
      const name = this.published.get(item);
      if (name !== undefined) {
        next.set(item, name);
        continue;
      }
      const resource = this.named(item);
      next.set(item, resource.name);
      upserts.set(resource.name, resource.encode());
    }
    const removes: string[] = [];
    for (const [item, name] of this.published) {
      if (!next.has(item) && !upserts.has(name)) removes.push(name);
    }
    return () => {
      this.store.applyBatch(this.typeUrl, { upserts, removes });
      this.published = next;
    };
  }
}

export class Publisher {
  private readonly addresses: TypePublisher<Address>;
  private readonly authorizations: TypePublisher<Authorization>;
  private readonly l7: TypePublisher<KubeObject>;
  /** Address wrappers are made once per Workload or Service, so their identity is stable too. */
  private readonly wrapped = new WeakMap<Workload | XdsService, Address>();

  constructor(private readonly store: ResourceStore) {
    this.addresses = new TypePublisher(store, ADDRESS_TYPE_URL, (address) => ({
      name: addressResourceName(address),
      encode: () => encodeAddress(address),
    }));
    this.authorizations = new TypePublisher(store, AUTHORIZATION_TYPE_URL, (auth) => ({
      name: authorizationResourceName(auth),
      encode: () => encodeAuthorization(auth),
    }));
    // A type of its own: Delta ADS subscriptions are per type, so ztunnels (which subscribe to
    // Address and Authorization only) never receive or hold these.
    this.l7 = new TypePublisher(store, L7_RESOURCE_TYPE_URL, (obj) => {
      const resource = obj.kind === "Pod" ? podLabels(obj) : l7Resource(obj);
      return { name: l7ResourceName(resource), encode: () => encodeL7Resource(resource) };
    });
  }

  publish(result: TranslateResult): PublishSummary {
    const commits = [
      this.addresses.prepare(this.addressesOf(result)),
      this.authorizations.prepare(result.authorizations),
      this.l7.prepare([...waypointObjects(result.waypointConfig), ...result.workloadPods]),
    ];
    for (const commit of commits) commit();
    return {
      workloads: result.workloads.length,
      services: result.services.length,
      authorizations: result.authorizations.length,
      l7Resources: this.store.resources(L7_RESOURCE_TYPE_URL).size,
    };
  }

  private *addressesOf(result: TranslateResult): Iterable<Address> {
    for (const workload of result.workloads) yield this.wrap(workload, () => ({ workload }));
    for (const service of result.services) yield this.wrap(service, () => ({ service }));
  }

  private wrap(output: Workload | XdsService, make: () => Address): Address {
    let address = this.wrapped.get(output);
    if (!address) {
      address = make();
      this.wrapped.set(output, address);
    }
    return address;
  }
}

/** Every object a waypoint applies. */
function waypointObjects(config: WaypointConfig): KubeObject[] {
  return [
    ...config.virtualServices,
    ...config.destinationRules,
    ...config.authorizationPolicies,
    ...config.requestAuthentications,
    ...config.gateways,
    ...config.ingress.gateways,
    ...config.ingress.policies,
    ...config.ingress.secrets,
  ];
}

/** An object as a waypoint applies it, as written: kind, version, metadata it reads, spec. */
function l7Resource(obj: KubeObject): L7Resource {
  return {
    kind: obj.kind,
    apiVersion: obj.apiVersion,
    namespace: namespaceOf(obj),
    name: obj.metadata.name,
    spec: obj.kind === "Secret" ? secretSpec(obj as Secret) : obj.spec,
    labels: obj.metadata.labels ?? {},
    annotations: obj.metadata.annotations ?? {},
  };
}

/**
 * A Secret has no spec: its type and data (stringData folded in as base64, as the API server
 * stores it) are what a gateway reads. Only Secrets an ingress gateway names get here, and in
 * Kubernetes mode only streams of the Secret's namespace receive them (xds-auth.ts).
 */
function secretSpec(secret: Secret): { type?: string; data: Record<string, string> } {
  const data: Record<string, string> = { ...secret.data };
  for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] = Buffer.from(v).toString("base64");
  return { ...(secret.type ? { type: secret.type } : {}), data };
}

/**
 * A workload pod's labels: DestinationRule subsets select endpoints by pod labels, which Istio's
 * Workload message does not carry, so waypoints (alone) subscribe to these.
 */
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

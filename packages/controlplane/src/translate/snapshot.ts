// One translation's input, deduplicated by object key, sorted, and grouped by kind and namespace.
// Sorting once here is what makes every output list deterministic; grouping by namespace is what
// keeps the pod-to-service and pod-to-policy joins from scanning the whole mesh.

import {
  type AuthorizationPolicy,
  type DestinationRule,
  type Gateway,
  type GrpcRoute,
  type HttpRoute,
  type IstioGateway,
  isAuthorizationPolicy,
  isDestinationRule,
  isGateway,
  isGrpcRoute,
  isHttpRoute,
  isIstioGateway,
  isNamespace,
  isNode,
  isPeerAuthentication,
  isPod,
  isRequestAuthentication,
  isSecret,
  isService,
  isServiceEntry,
  isVirtualService,
  isWorkloadEntry,
  type KubeObject,
  type Namespace,
  type Node,
  objectKey,
  type PeerAuthentication,
  type Pod,
  type RequestAuthentication,
  type Secret,
  type Service,
  type ServiceEntry,
  type VirtualService,
  type WorkloadEntry,
} from "@ambient/kube";
import { compareStrings, type TranslateContext } from "./context.js";

export interface Snapshot {
  /** Every object in force by objectKey (duplicates resolved): what the next translation diffs against. */
  byKey: Map<string, KubeObject>;
  namespaces: Map<string, Namespace>;
  nodes: Map<string, Node>;
  pods: Pod[];
  services: Service[];
  serviceEntries: ServiceEntry[];
  workloadEntries: WorkloadEntry[];
  authorizationPolicies: AuthorizationPolicy[];
  peerAuthentications: PeerAuthentication[];
  requestAuthentications: RequestAuthentication[];
  virtualServices: VirtualService[];
  destinationRules: DestinationRule[];
  httpRoutes: HttpRoute[];
  grpcRoutes: GrpcRoute[];
  /** Every Gateway API Gateway; waypoints.ts picks the istio-waypoint ones, ingress.ts the istio ones. */
  gateways: Gateway[];
  /** Istio's (networking.istio.io) Gateways: ingress servers (ingress.ts). */
  istioGateways: IstioGateway[];
  /** Secrets, by `<namespace>/<name>`: only those an ingress gateway names are published. */
  secrets: Map<string, Secret>;
}

// objectKey per object, remembered: sources hand the same (unchanged) objects to every
// translation, and a large mesh's keys are otherwise rebuilt several times per edit.
const KEYS = new WeakMap<KubeObject, string>();

export function keyOf(obj: KubeObject): string {
  let key = KEYS.get(obj);
  if (key === undefined) {
    key = objectKey(obj);
    KEYS.set(obj, key);
  }
  return key;
}

export function buildSnapshot(objects: Iterable<KubeObject>, ctx: TranslateContext): Snapshot {
  const byKey = new Map<string, KubeObject>();
  let ordered = true;
  let last = "";
  for (const obj of objects) {
    const key = keyOf(obj);
    if (ordered && compareStrings(last, key) > 0) ordered = false;
    last = key;
    // The same object in two versions (v1 and v1beta1) is one object, as in the API server.
    if (byKey.has(key)) ctx.warn(obj, "defined more than once; the last definition is used");
    byKey.set(key, obj);
  }
  // Sources already give their objects in key order; sorting is for the callers that do not.
  const sorted = ordered
    ? byKey.values()
    : [...byKey.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([, obj]) => obj);

  const snapshot: Snapshot = {
    byKey,
    namespaces: new Map(),
    nodes: new Map(),
    pods: [],
    services: [],
    serviceEntries: [],
    workloadEntries: [],
    authorizationPolicies: [],
    peerAuthentications: [],
    requestAuthentications: [],
    virtualServices: [],
    destinationRules: [],
    gateways: [],
    istioGateways: [],
    secrets: new Map(),
    httpRoutes: [],
    grpcRoutes: [],
  };
  for (const obj of sorted) {
    // Checked one by one (not else-if): Namespace and Node are plain KubeObjects to the compiler,
    // so a failed guard would narrow the rest of a chain to `never`.
    if (isPod(obj)) snapshot.pods.push(obj);
    if (isService(obj)) snapshot.services.push(obj);
    if (isServiceEntry(obj)) snapshot.serviceEntries.push(obj);
    if (isWorkloadEntry(obj)) snapshot.workloadEntries.push(obj);
    if (isNamespace(obj)) snapshot.namespaces.set(obj.metadata.name, obj);
    if (isNode(obj)) snapshot.nodes.set(obj.metadata.name, obj);
    if (isAuthorizationPolicy(obj)) snapshot.authorizationPolicies.push(obj);
    if (isPeerAuthentication(obj)) snapshot.peerAuthentications.push(obj);
    if (isRequestAuthentication(obj)) snapshot.requestAuthentications.push(obj);
    if (isVirtualService(obj)) snapshot.virtualServices.push(obj);
    if (isDestinationRule(obj)) snapshot.destinationRules.push(obj);
    if (isGateway(obj)) snapshot.gateways.push(obj);
    if (isIstioGateway(obj)) snapshot.istioGateways.push(obj);
    if (isSecret(obj))
      snapshot.secrets.set(`${obj.metadata.namespace ?? "default"}/${obj.metadata.name}`, obj);
    if (isHttpRoute(obj)) snapshot.httpRoutes.push(obj);
    if (isGrpcRoute(obj)) snapshot.grpcRoutes.push(obj);
  }
  return snapshot;
}

// The kinds the control plane accepts, with their API groups and versions, and the identity of an
// object (`objectKey`). Every other module asks "what is this object?" here, so adding a kind or
// a version is a one-line change.

import type {
  AuthorizationPolicy,
  DestinationRule,
  Gateway,
  GrpcRoute,
  HttpRoute,
  IstioGateway,
  KubeObject,
  Namespace,
  Node,
  PeerAuthentication,
  Pod,
  RequestAuthentication,
  Secret,
  Service,
  ServiceEntry,
  TcpRoute,
  TlsRoute,
  VirtualService,
  WorkloadEntry,
} from "./objects.js";

/** The group name used in keys for Kubernetes' core API group, whose real name is "". */
export const CORE_GROUP = "core";
export const DEFAULT_NAMESPACE = "default";

export interface KindInfo {
  /** "" for the core group, as in `apiVersion: v1`. */
  group: string;
  kind: string;
  /** The first is the version we ask the API server for. */
  versions: readonly string[];
  namespaced: boolean;
  /** The resource name in API paths (`/api/v1/namespaces/x/pods`). */
  plural: string;
}

const ISTIO_VERSIONS = ["v1", "v1beta1"] as const;
const NETWORKING_VERSIONS = ["v1", "v1beta1", "v1alpha3"] as const;

export const SUPPORTED_KINDS: readonly KindInfo[] = [
  { group: "", kind: "Namespace", versions: ["v1"], namespaced: false, plural: "namespaces" },
  { group: "", kind: "Node", versions: ["v1"], namespaced: false, plural: "nodes" },
  { group: "", kind: "Pod", versions: ["v1"], namespaced: true, plural: "pods" },
  { group: "", kind: "Service", versions: ["v1"], namespaced: true, plural: "services" },
  { group: "", kind: "ServiceAccount", versions: ["v1"], namespaced: true, plural: "serviceaccounts" },
  // Only the kubernetes.io/tls Secrets an ingress gateway names are used (translate/ingress.ts).
  { group: "", kind: "Secret", versions: ["v1"], namespaced: true, plural: "secrets" },
  {
    group: "gateway.networking.k8s.io",
    kind: "Gateway",
    versions: ["v1", "v1beta1"],
    namespaced: true,
    plural: "gateways",
  },
  {
    group: "gateway.networking.k8s.io",
    kind: "HTTPRoute",
    versions: ["v1", "v1beta1"],
    namespaced: true,
    plural: "httproutes",
  },
  {
    group: "gateway.networking.k8s.io",
    kind: "GRPCRoute",
    versions: ["v1"],
    namespaced: true,
    plural: "grpcroutes",
  },
  {
    group: "gateway.networking.k8s.io",
    kind: "TLSRoute",
    versions: ["v1alpha2"],
    namespaced: true,
    plural: "tlsroutes",
  },
  {
    group: "gateway.networking.k8s.io",
    kind: "TCPRoute",
    versions: ["v1alpha2"],
    namespaced: true,
    plural: "tcproutes",
  },
  {
    group: "security.istio.io",
    kind: "AuthorizationPolicy",
    versions: ISTIO_VERSIONS,
    namespaced: true,
    plural: "authorizationpolicies",
  },
  {
    group: "security.istio.io",
    kind: "PeerAuthentication",
    versions: ISTIO_VERSIONS,
    namespaced: true,
    plural: "peerauthentications",
  },
  {
    group: "security.istio.io",
    kind: "RequestAuthentication",
    versions: ISTIO_VERSIONS,
    namespaced: true,
    plural: "requestauthentications",
  },
  {
    group: "networking.istio.io",
    kind: "VirtualService",
    versions: NETWORKING_VERSIONS,
    namespaced: true,
    plural: "virtualservices",
  },
  {
    group: "networking.istio.io",
    kind: "DestinationRule",
    versions: NETWORKING_VERSIONS,
    namespaced: true,
    plural: "destinationrules",
  },
  {
    group: "networking.istio.io",
    kind: "ServiceEntry",
    versions: NETWORKING_VERSIONS,
    namespaced: true,
    plural: "serviceentries",
  },
  {
    // Istio's own Gateway (ingress servers for pods its selector matches), not the Gateway API's.
    group: "networking.istio.io",
    kind: "Gateway",
    versions: NETWORKING_VERSIONS,
    namespaced: true,
    plural: "gateways",
  },
  {
    group: "networking.istio.io",
    kind: "WorkloadEntry",
    versions: NETWORKING_VERSIONS,
    namespaced: true,
    plural: "workloadentries",
  },
];

/** group → kind → entry: looked up without building a string (hot, see groupOf). */
const BY_GROUP_KIND = new Map<string, Map<string, KindInfo>>();
for (const k of SUPPORTED_KINDS) {
  let kinds = BY_GROUP_KIND.get(k.group);
  if (!kinds) {
    kinds = new Map();
    BY_GROUP_KIND.set(k.group, kinds);
  }
  kinds.set(k.kind, k);
}

// Every object key, namespace and kind check parses an apiVersion: tens of thousands per
// translation of a large mesh, over a handful of distinct values. Bounded, since unvalidated input
// may carry any string.
const GROUPS = new Map<string, string>();
const MAX_GROUPS = 1024;

function groupOf(apiVersion: string): string {
  let group = GROUPS.get(apiVersion);
  if (group === undefined) {
    group = parseApiVersion(apiVersion).group;
    if (GROUPS.size < MAX_GROUPS) GROUPS.set(apiVersion, group);
  }
  return group;
}

/** Splits `group/version` (or the core group's bare `v1`). */
export function parseApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf("/");
  return slash < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The registry entry for an apiVersion/kind pair, ignoring the version. */
export function kindInfo(apiVersion: unknown, kind: unknown): KindInfo | undefined {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return undefined;
  return BY_GROUP_KIND.get(groupOf(apiVersion))?.get(kind);
}

/** "Pod (v1), AuthorizationPolicy (security.istio.io/v1, security.istio.io/v1beta1), ..." */
export function describeSupportedKinds(): string {
  return SUPPORTED_KINDS.map(
    (k) => `${k.kind} (${k.versions.map((v) => (k.group ? `${k.group}/${v}` : v)).join(", ")})`,
  ).join(", ");
}

/**
 * The namespace an object lives in: "" for cluster-scoped kinds, `metadata.namespace` or
 * "default" otherwise (kubectl applies manifests without a namespace to "default" too).
 */
export function namespaceOf(obj: Pick<KubeObject, "apiVersion" | "kind" | "metadata">): string {
  const info = kindInfo(obj.apiVersion, obj.kind);
  if (info && !info.namespaced) return "";
  const ns = obj.metadata?.namespace;
  return typeof ns === "string" && ns !== "" ? ns : DEFAULT_NAMESPACE;
}

/**
 * `<group>/<Kind>/<namespace>/<name>`, the identity of an object across versions: an
 * AuthorizationPolicy written as v1 and as v1beta1 is one object, as in the API server. The core
 * group is spelled "core" (Istio's own convention in status ancestors) so keys never start with
 * a slash. Works on unvalidated input as long as kind and metadata.name are strings.
 */
export function objectKey(obj: Pick<KubeObject, "apiVersion" | "kind" | "metadata">): string {
  const group = typeof obj.apiVersion === "string" ? groupOf(obj.apiVersion) : "";
  return `${group || CORE_GROUP}/${obj.kind}/${namespaceOf(obj)}/${obj.metadata.name}`;
}

function is(obj: KubeObject, group: string, kind: string): boolean {
  return obj.kind === kind && typeof obj.apiVersion === "string" && groupOf(obj.apiVersion) === group;
}

export const isNamespace = (o: KubeObject): o is Namespace => is(o, "", "Namespace");
export const isNode = (o: KubeObject): o is Node => is(o, "", "Node");
export const isPod = (o: KubeObject): o is Pod => is(o, "", "Pod");
export const isService = (o: KubeObject): o is Service => is(o, "", "Service");
export const isGateway = (o: KubeObject): o is Gateway => is(o, "gateway.networking.k8s.io", "Gateway");
export const isHttpRoute = (o: KubeObject): o is HttpRoute => is(o, "gateway.networking.k8s.io", "HTTPRoute");
export const isGrpcRoute = (o: KubeObject): o is GrpcRoute => is(o, "gateway.networking.k8s.io", "GRPCRoute");
export const isAuthorizationPolicy = (o: KubeObject): o is AuthorizationPolicy =>
  is(o, "security.istio.io", "AuthorizationPolicy");
export const isPeerAuthentication = (o: KubeObject): o is PeerAuthentication =>
  is(o, "security.istio.io", "PeerAuthentication");
export const isRequestAuthentication = (o: KubeObject): o is RequestAuthentication =>
  is(o, "security.istio.io", "RequestAuthentication");
export const isVirtualService = (o: KubeObject): o is VirtualService =>
  is(o, "networking.istio.io", "VirtualService");
export const isDestinationRule = (o: KubeObject): o is DestinationRule =>
  is(o, "networking.istio.io", "DestinationRule");
export const isServiceEntry = (o: KubeObject): o is ServiceEntry =>
  is(o, "networking.istio.io", "ServiceEntry");
export const isTlsRoute = (o: KubeObject): o is TlsRoute => is(o, "gateway.networking.k8s.io", "TLSRoute");
export const isTcpRoute = (o: KubeObject): o is TcpRoute => is(o, "gateway.networking.k8s.io", "TCPRoute");
export const isIstioGateway = (o: KubeObject): o is IstioGateway => is(o, "networking.istio.io", "Gateway");
export const isSecret = (o: KubeObject): o is Secret => is(o, "", "Secret");
export const isWorkloadEntry = (o: KubeObject): o is WorkloadEntry =>
  is(o, "networking.istio.io", "WorkloadEntry");

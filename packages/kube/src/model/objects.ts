// The Kubernetes objects the control plane understands, as plain parsed YAML/JSON. Only the fields
// we read are typed; everything else passes through untouched so that waypoint config keeps the
// user's object exactly as written. Validation (../validate) is what makes these shapes true.

export interface OwnerReference {
  apiVersion?: string;
  kind: string;
  name: string;
  uid?: string;
  controller?: boolean;
}

export interface ObjectMeta {
  name: string;
  /** Absent on cluster-scoped kinds; on namespaced kinds absent means "default". */
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  ownerReferences?: OwnerReference[];
  /** RFC 3339. Istio breaks ties between PeerAuthentications by age; local manifests rarely set it. */
  creationTimestamp?: string;
  [field: string]: unknown;
}

export interface KubeObject<Spec = unknown, Status = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: Status;
  [field: string]: unknown;
}

// ---- core v1 ----

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface Container {
  name?: string;
  ports?: ContainerPort[];
  [field: string]: unknown;
}

export interface PodSpec {
  nodeName?: string;
  hostNetwork?: boolean;
  serviceAccountName?: string;
  /** Deprecated alias of serviceAccountName that old manifests still carry. */
  serviceAccount?: string;
  containers?: Container[];
  [field: string]: unknown;
}

export interface PodCondition {
  type: string;
  status: string;
}

export interface PodStatus {
  phase?: string;
  podIP?: string;
  podIPs?: { ip: string }[];
  conditions?: PodCondition[];
  [field: string]: unknown;
}

export type Pod = KubeObject<PodSpec, PodStatus>;

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
  appProtocol?: string;
}

export interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  selector?: Record<string, string>;
  ports?: ServicePort[];
  trafficDistribution?: string;
  [field: string]: unknown;
}

export type Service = KubeObject<ServiceSpec>;

export interface NodeAddress {
  type: string;
  address: string;
}

export type Node = KubeObject<unknown, { addresses?: NodeAddress[]; [field: string]: unknown }>;
export type Namespace = KubeObject;

// ---- Istio ----

export interface WorkloadSelector {
  matchLabels?: Record<string, string>;
}

export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface Source {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

export interface Operation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface Condition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthorizationRule {
  from?: { source?: Source }[];
  to?: { operation?: Operation }[];
  when?: Condition[];
}

export type AuthorizationPolicyAction = "ALLOW" | "DENY" | "AUDIT" | "CUSTOM";

export interface AuthorizationPolicySpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  action?: AuthorizationPolicyAction;
  provider?: { name?: string };
  rules?: AuthorizationRule[];
}

export type AuthorizationPolicy = KubeObject<AuthorizationPolicySpec>;

export type MtlsMode = "UNSET" | "DISABLE" | "PERMISSIVE" | "STRICT";

export interface PeerAuthenticationSpec {
  selector?: WorkloadSelector;
  mtls?: { mode?: MtlsMode };
  /** Keys are port numbers; YAML gives them to us as strings. */
  portLevelMtls?: Record<string, { mode?: MtlsMode }>;
}

export type PeerAuthentication = KubeObject<PeerAuthenticationSpec>;

export interface JwtRule {
  issuer?: string;
  jwks?: string;
  jwksUri?: string;
  [field: string]: unknown;
}

export interface RequestAuthenticationSpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  jwtRules?: JwtRule[];
}

export type RequestAuthentication = KubeObject<RequestAuthenticationSpec>;

// VirtualService and DestinationRule are handed to the waypoint as written; validation walks them
// as unknown JSON, so no spec types are declared here.
export type VirtualService = KubeObject<Record<string, unknown>>;
export type DestinationRule = KubeObject<Record<string, unknown>>;

// ServiceEntry and WorkloadEntry: services outside the cluster's registry (external hosts, VMs),
// turned into workload-API Services and Workloads (controlplane translate/service-entries.ts).

export type ServiceEntryResolution = "NONE" | "STATIC" | "DNS" | "DNS_ROUND_ROBIN";

export interface ServiceEntryPort {
  number: number;
  name?: string;
  protocol?: string;
  targetPort?: number;
}

/** A WorkloadEntry's spec, and each inline endpoint of a ServiceEntry. */
export interface WorkloadEntrySpec {
  /** An IP, or a hostname for DNS resolution. */
  address?: string;
  /** ServiceEntry port name → the port this endpoint serves it on. */
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface ServiceEntrySpec {
  hosts?: string[];
  addresses?: string[];
  ports?: ServiceEntryPort[];
  location?: "MESH_EXTERNAL" | "MESH_INTERNAL";
  resolution?: ServiceEntryResolution;
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  exportTo?: string[];
  subjectAltNames?: string[];
}

export type ServiceEntry = KubeObject<ServiceEntrySpec>;

// ---- Ingress (Istio's Gateway and the TLS Secrets gateways serve) ----

export interface IstioServerTls {
  mode?: "PASSTHROUGH" | "SIMPLE" | "MUTUAL" | "AUTO_PASSTHROUGH" | "ISTIO_MUTUAL" | "OPTIONAL_MUTUAL";
  credentialName?: string;
  httpsRedirect?: boolean;
  [field: string]: unknown;
}

export interface IstioServer {
  port: { number: number; protocol: string; name?: string; targetPort?: number };
  hosts: string[];
  tls?: IstioServerTls;
  name?: string;
  bind?: string;
}

export interface IstioGatewaySpec {
  selector?: Record<string, string>;
  servers?: IstioServer[];
}

export type IstioGateway = KubeObject<IstioGatewaySpec>;

/** A Secret: `data` base64 as stored (kubernetes.io/tls: tls.crt, tls.key, optionally ca.crt). */
export interface Secret extends KubeObject<never> {
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
export type WorkloadEntry = KubeObject<WorkloadEntrySpec>;

// ---- Gateway API ----

export interface Listener {
  name: string;
  port: number;
  protocol: string;
  [field: string]: unknown;
}

export interface GatewaySpec {
  gatewayClassName: string;
  listeners?: Listener[];
  [field: string]: unknown;
}

export type Gateway = KubeObject<GatewaySpec>;

// HTTPRoute and GRPCRoute (GAMMA): routes a waypoint applies to the Service named in a parentRef.
// Only the fields the control plane reads are typed; the rest is checked by the schema.

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  filters?: RouteFilter[];
}

export interface HttpHeaderMatch {
  type?: "Exact" | "RegularExpression";
  name: string;
  value: string;
}

export interface HttpHeaderModifier {
  set?: { name: string; value: string }[];
  add?: { name: string; value: string }[];
  remove?: string[];
}

export interface HttpPathModifier {
  type: "ReplaceFullPath" | "ReplacePrefixMatch";
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export interface RouteFilter {
  type: string;
  requestHeaderModifier?: HttpHeaderModifier;
  responseHeaderModifier?: HttpHeaderModifier;
  requestRedirect?: {
    scheme?: string;
    hostname?: string;
    path?: HttpPathModifier;
    port?: number;
    statusCode?: number;
  };
  urlRewrite?: { hostname?: string; path?: HttpPathModifier };
  requestMirror?: {
    backendRef: BackendRef;
    percent?: number;
    fraction?: { numerator: number; denominator?: number };
  };
  [field: string]: unknown;
}

export interface HttpRouteMatch {
  path?: { type?: "Exact" | "PathPrefix" | "RegularExpression"; value?: string };
  headers?: HttpHeaderMatch[];
  queryParams?: HttpHeaderMatch[];
  method?: string;
}

export interface HttpRouteRule {
  name?: string;
  matches?: HttpRouteMatch[];
  filters?: RouteFilter[];
  backendRefs?: BackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  retry?: { codes?: number[]; attempts?: number; backoff?: string };
}

export interface HttpRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: HttpRouteRule[];
}

export interface GrpcRouteMatch {
  method?: { type?: "Exact" | "RegularExpression"; service?: string; method?: string };
  headers?: HttpHeaderMatch[];
}

export interface GrpcRouteRule {
  name?: string;
  matches?: GrpcRouteMatch[];
  filters?: RouteFilter[];
  backendRefs?: BackendRef[];
}

export interface GrpcRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: GrpcRouteRule[];
}

export type HttpRoute = KubeObject<HttpRouteSpec>;

/** TLSRoute and TCPRoute (v1alpha2): routes on an ingress Gateway's TLS-passthrough and TCP listeners. */
export interface L4RouteSpec {
  parentRefs?: ParentReference[];
  /** TLSRoute only: the SNI names it takes. */
  hostnames?: string[];
  rules?: { name?: string; backendRefs?: BackendRef[] }[];
}

export type TlsRoute = KubeObject<L4RouteSpec>;
export type TcpRoute = KubeObject<L4RouteSpec>;
export type GrpcRoute = KubeObject<GrpcRouteSpec>;

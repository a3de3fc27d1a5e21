// Plain TypeScript shapes of Istio's workload xDS messages (istio.workload / istio.security).
// Field names are the protobufjs camelCase of the .proto fields in packages/core/proto; enums are
// carried by name. Translation produces these; the codec turns them into wire bytes and back.

export const ADDRESS_TYPE_URL = "type.googleapis.com/istio.workload.Address";
export const AUTHORIZATION_TYPE_URL = "type.googleapis.com/istio.security.Authorization";

export interface NetworkAddress {
  network: string;
  /** 4 bytes (IPv4) or 16 bytes (IPv6). */
  address: Uint8Array;
}

export interface NamespacedHostname {
  namespace: string;
  hostname: string;
}

/** oneof destination { hostname = 1; address = 2 }, hbone_mtls_port = 3. */
export interface GatewayAddress {
  hostname?: NamespacedHostname;
  address?: NetworkAddress;
  hboneMtlsPort: number;
}

export type AppProtocol = "UNKNOWN" | "HTTP11" | "HTTP2" | "GRPC";

export interface Port {
  servicePort: number;
  targetPort: number;
  appProtocol?: AppProtocol;
}

export interface PortList {
  ports: Port[];
}

export type TunnelProtocol = "NONE" | "HBONE";
export type WorkloadType = "DEPLOYMENT" | "CRONJOB" | "POD" | "JOB";
export type WorkloadStatus = "HEALTHY" | "UNHEALTHY";

export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

export interface Workload {
  /** `<cluster>//Pod/<ns>/<name>`: also the xDS resource name. */
  uid: string;
  name: string;
  namespace: string;
  addresses: Uint8Array[];
  network: string;
  tunnelProtocol: TunnelProtocol;
  trustDomain: string;
  serviceAccount: string;
  waypoint?: GatewayAddress;
  node: string;
  canonicalName: string;
  canonicalRevision: string;
  workloadType: WorkloadType;
  workloadName: string;
  /** `<ns>/<name>` of WORKLOAD_SELECTOR policies that select this workload. */
  authorizationPolicies: string[];
  status: WorkloadStatus;
  clusterId: string;
  hostname: string;
  /** `<ns>/<hostname>` of each service selecting the workload → its ports with resolved targets. */
  services: Record<string, PortList>;
  locality?: Locality;
}

export type LoadBalancingScope =
  | "UNSPECIFIED_SCOPE"
  | "REGION"
  | "ZONE"
  | "SUBZONE"
  | "NODE"
  | "CLUSTER"
  | "NETWORK";
/**
 * PASSTHROUGH (Istio's ServiceEntry `resolution: NONE`): no endpoint is picked, the connection goes
 * to the address the client dialed, or to the service's waypoint when it has one.
 */
export type LoadBalancingMode = "UNSPECIFIED_MODE" | "STRICT" | "FAILOVER" | "PASSTHROUGH";

export interface LoadBalancing {
  routingPreference: LoadBalancingScope[];
  mode: LoadBalancingMode;
}

export interface Service {
  name: string;
  namespace: string;
  /** `<name>.<ns>.svc.cluster.local` */
  hostname: string;
  addresses: NetworkAddress[];
  ports: Port[];
  subjectAltNames: string[];
  waypoint?: GatewayAddress;
  loadBalancing?: LoadBalancing;
}

/** istio.workload.Address: oneof type { workload = 1; service = 2 }. */
export type Address =
  | { workload: Workload; service?: undefined }
  | { service: Service; workload?: undefined };

// ---- istio.security ----

export type AuthorizationScope = "GLOBAL" | "NAMESPACE" | "WORKLOAD_SELECTOR";
export type AuthorizationAction = "ALLOW" | "DENY";

/** oneof { exact = 1; prefix = 2; suffix = 3; presence = 4 (Empty) } */
export type StringMatch =
  | { exact: string }
  | { prefix: string }
  | { suffix: string }
  // biome-ignore lint/complexity/noBannedTypes: protobuf Empty
  | { presence: {} };

export interface AddressMatch {
  address: Uint8Array;
  /** Prefix length in bits. */
  length: number;
}

export interface Match {
  namespaces: StringMatch[];
  notNamespaces: StringMatch[];
  principals: StringMatch[];
  notPrincipals: StringMatch[];
  sourceIps: AddressMatch[];
  notSourceIps: AddressMatch[];
  destinationIps: AddressMatch[];
  notDestinationIps: AddressMatch[];
  destinationPorts: number[];
  notDestinationPorts: number[];
}

/** Matches inside a clause are ORed. */
export interface Clause {
  matches: Match[];
}

/** Clauses inside a rule are ANDed. */
export interface Rule {
  clauses: Clause[];
}

export interface Authorization {
  /** Resource name is `<namespace>/<name>`. */
  name: string;
  namespace: string;
  scope: AuthorizationScope;
  action: AuthorizationAction;
  /** Rules are ORed. */
  rules: Rule[];
  dryRun: boolean;
}

export function emptyMatch(): Match {
  return {
    namespaces: [],
    notNamespaces: [],
    principals: [],
    notPrincipals: [],
    sourceIps: [],
    notSourceIps: [],
    destinationIps: [],
    notDestinationIps: [],
    destinationPorts: [],
    notDestinationPorts: [],
  };
}

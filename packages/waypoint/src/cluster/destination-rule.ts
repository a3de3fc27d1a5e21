// DestinationRule objects as the waypoint receives them (validated, plain parsed YAML) and Istio's
// choice among them for one destination host: the namespaces it looks in and in which order, how
// short names and wildcards resolve, and how several rules for the same host consolidate.

export interface ConsistentHashSpec {
  httpHeaderName?: string;
  httpCookie?: {
    name: string;
    path?: string;
    ttl?: string;
    attributes?: { name: string; value?: string }[];
  };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  /** Deprecated spelling of `ringHash.minimumRingSize`. */
  minimumRingSize?: number;
}

export type SimpleLbSpec =
  | "UNSPECIFIED"
  | "LEAST_CONN"
  | "RANDOM"
  | "PASSTHROUGH"
  | "ROUND_ROBIN"
  | "LEAST_REQUEST";

export interface LoadBalancerSpec {
  simple?: SimpleLbSpec;
  consistentHash?: ConsistentHashSpec;
  localityLbSetting?: unknown;
  warmup?: unknown;
  warmupDurationSecs?: string;
}

export interface ConnectionPoolSpec {
  tcp?: {
    maxConnections?: number;
    connectTimeout?: string;
    tcpKeepalive?: { probes?: number; time?: string; interval?: string };
    maxConnectionDuration?: string;
    idleTimeout?: string;
  };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeout?: string;
    h2UpgradePolicy?: "DEFAULT" | "DO_NOT_UPGRADE" | "UPGRADE";
    useClientProtocol?: boolean;
    maxConcurrentStreams?: number;
  };
}

export interface OutlierDetectionSpec {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  consecutiveLocalOriginFailures?: number;
  splitExternalLocalOriginErrors?: boolean;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

/** ClientTLSSettings: how the waypoint speaks TLS to the destination (TLS origination). */
export interface ClientTlsSpec {
  mode?: "DISABLE" | "SIMPLE" | "MUTUAL" | "ISTIO_MUTUAL";
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean;
}

export interface PortTrafficPolicySpec {
  port?: { number?: number };
  loadBalancer?: LoadBalancerSpec;
  connectionPool?: ConnectionPoolSpec;
  outlierDetection?: OutlierDetectionSpec;
  tls?: ClientTlsSpec;
}

export interface TrafficPolicySpec extends Omit<PortTrafficPolicySpec, "port"> {
  portLevelSettings?: PortTrafficPolicySpec[];
  retryBudget?: { percent?: number; minRetryConcurrency?: number };
  tunnel?: unknown;
  proxyProtocol?: unknown;
}

export interface SubsetSpec {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicySpec;
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicySpec;
  subsets?: SubsetSpec[];
  exportTo?: string[];
  workloadSelector?: { matchLabels?: Record<string, string> };
}

export interface DrObject {
  metadata: { name: string; namespace?: string; creationTimestamp?: string };
  spec?: DestinationRuleSpec;
}

export interface DrRef {
  namespace: string;
  name: string;
}

/** One DestinationRule for a host, or several in one namespace consolidated as Istio does. */
export interface SelectedRule {
  spec: DestinationRuleSpec;
  /** The objects merged into `spec`, oldest first. */
  from: DrRef[];
}

export interface DrLookupOptions {
  /**
   * The namespace of the proxy doing the lookup (the waypoint's). Istio looks there first.
   * Defaults to the destination's namespace, where a waypoint usually runs.
   */
  proxyNamespace?: string;
  /** The destination service's namespace; read from `<svc>.<ns>.svc.<suffix>` when absent. */
  namespace?: string;
  /** Istio's config root namespace (meshConfig.rootNamespace). */
  rootNamespace?: string;
  /** The cluster's DNS suffix that short names get. */
  domainSuffix?: string;
}

const DEFAULT_ROOT_NAMESPACE = "istio-system";
const DEFAULT_DOMAIN_SUFFIX = "cluster.local";
// Istio's default `defaultDestinationRuleExportTo` is every namespace.
const DEFAULT_EXPORT_TO = ["*"];

/** Istio's ResolveShortnameToFQDN: only a name without dots is short; `*` and IPs stay as written. */
export function resolveRuleHost(
  host: string,
  namespace: string,
  domainSuffix = DEFAULT_DOMAIN_SUFFIX,
): string {
  const h = host.toLowerCase();
  if (h === "*" || h.includes(".") || h.includes(":")) return h;
  return `${h}.${namespace}.svc.${domainSuffix}`;
}

/** The namespace in a Kubernetes service FQDN, `<svc>.<ns>.svc.<suffix>`. */
export function namespaceOfHost(fqdn: string): string | undefined {
  const labels = fqdn.split(".");
  return labels.length >= 4 && labels[2] === "svc" ? labels[1] : undefined;
}

/**
 * The DestinationRule that applies to `host` (an FQDN), following Istio's lookup path: the proxy's
 * namespace, then the service's namespace, then the root namespace, each time the most specific host
 * (exact, then the longest matching wildcard). Rules in other namespaces never apply.
 */
export function selectDestinationRule(
  drs: readonly DrObject[],
  host: string,
  opts: DrLookupOptions = {},
): SelectedRule | undefined {
  const target = host.toLowerCase();
  const domainSuffix = opts.domainSuffix ?? DEFAULT_DOMAIN_SUFFIX;
  const serviceNs = opts.namespace ?? namespaceOfHost(target);
  const proxyNs = opts.proxyNamespace ?? serviceNs;
  const rootNs = opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;

  // Rules with a workloadSelector configure the sidecars of the selected workloads, not a waypoint.
  const usable = drs.filter((dr) => dr.spec && !dr.spec.workloadSelector);
  const inNs = (ns: string) => usable.filter((dr) => namespaceOf(dr) === ns);

  const steps: DrObject[][] = [];
  // A rule in the proxy's own namespace applies whatever its exportTo, unless exported nowhere.
  if (proxyNs !== undefined) steps.push(inNs(proxyNs).filter((dr) => !exportTo(dr).includes("~")));
  for (const ns of [serviceNs, rootNs]) {
    if (ns === undefined || ns === proxyNs) continue;
    steps.push(inNs(ns).filter((dr) => visibleTo(dr, proxyNs)));
  }
  for (const candidates of steps) {
    const group = mostSpecific(candidates, target, domainSuffix);
    if (group) return consolidate(group);
  }
  return undefined;
}

function namespaceOf(dr: DrObject): string {
  return dr.metadata.namespace ?? "default";
}

function exportTo(dr: DrObject): string[] {
  const list = dr.spec?.exportTo;
  return list && list.length > 0 ? list : DEFAULT_EXPORT_TO;
}

function visibleTo(dr: DrObject, proxyNs: string | undefined): boolean {
  const list = exportTo(dr);
  if (list.includes("~")) return false;
  if (list.includes("*")) return true;
  if (proxyNs === undefined) return false;
  return list.some((ns) => ns === proxyNs || (ns === "." && namespaceOf(dr) === proxyNs));
}

function hostMatches(ruleHost: string, target: string): boolean {
  if (ruleHost === target || ruleHost === "*") return true;
  return ruleHost.startsWith("*.") && target.endsWith(ruleHost.slice(1));
}

/** The rules for the most specific matching host: exact beats any wildcard, a longer wildcard a shorter. */
function mostSpecific(candidates: DrObject[], target: string, domainSuffix: string): DrObject[] | undefined {
  let best: string | undefined;
  let group: DrObject[] = [];
  for (const dr of candidates) {
    const ruleHost = resolveRuleHost(dr.spec!.host, namespaceOf(dr), domainSuffix);
    if (!hostMatches(ruleHost, target)) continue;
    if (best === undefined || moreSpecific(ruleHost, best)) {
      best = ruleHost;
      group = [dr];
    } else if (ruleHost === best) {
      group.push(dr);
    }
  }
  return best === undefined ? undefined : group;
}

function moreSpecific(a: string, b: string): boolean {
  const aWild = a.startsWith("*");
  const bWild = b.startsWith("*");
  if (aWild !== bWild) return !aWild;
  return a.length > b.length;
}

/**
 * Istio merges same-host rules of one namespace, oldest first: the first traffic policy wins and
 * subsets are appended unless a subset of that name already exists.
 */
function consolidate(group: DrObject[]): SelectedRule {
  const ordered = [...group].sort(byAge);
  const first = ordered[0]!;
  const spec: DestinationRuleSpec = { ...first.spec!, subsets: [...(first.spec!.subsets ?? [])] };
  const names = new Set(spec.subsets!.map((s) => s.name));
  for (const dr of ordered.slice(1)) {
    for (const subset of dr.spec!.subsets ?? []) {
      if (names.has(subset.name)) continue;
      names.add(subset.name);
      spec.subsets!.push(subset);
    }
    if (!spec.trafficPolicy && dr.spec!.trafficPolicy) spec.trafficPolicy = dr.spec!.trafficPolicy;
  }
  return { spec, from: ordered.map((dr) => ({ namespace: namespaceOf(dr), name: dr.metadata.name })) };
}

// Istio orders configs by creation time, then name: a rule without a timestamp sorts as oldest.
function byAge(a: DrObject, b: DrObject): number {
  const ta = a.metadata.creationTimestamp ? Date.parse(a.metadata.creationTimestamp) : 0;
  const tb = b.metadata.creationTimestamp ? Date.parse(b.metadata.creationTimestamp) : 0;
  if (ta !== tb) return ta - tb;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

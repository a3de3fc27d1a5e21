// The effective policy of one cluster (host, port, subset): which DestinationRule applies, how its
// top-level, port-level and subset settings merge (Istio's MergeSubsetTrafficPolicy), and the
// defaults Istio gives Envoy for everything the rule leaves out.

import { parseDuration } from "@ambient/core";
import {
  type ClientTlsSpec,
  type ConnectionPoolSpec,
  type DrLookupOptions,
  type DrObject,
  type DrRef,
  type LoadBalancerSpec,
  type OutlierDetectionSpec,
  selectDestinationRule,
  type TrafficPolicySpec,
} from "./destination-rule.js";

export type SimpleLbType = "LEAST_REQUEST" | "ROUND_ROBIN" | "RANDOM" | "PASSTHROUGH";

export type HashKey =
  | { kind: "header"; name: string }
  | {
      kind: "cookie";
      name: string;
      path?: string;
      /** Absent: never generate the cookie. 0: generate a session cookie. */
      ttlMs?: number;
      attributes: { name: string; value?: string }[];
    }
  | { kind: "sourceIp" }
  | { kind: "queryParameter"; name: string };

interface LbCommon {
  /**
   * Envoy's healthy_panic_threshold: below this % of non-ejected endpoints the balancer uses all of
   * them. Istio sets it from outlierDetection.minHealthPercent (0, i.e. never, by default).
   */
  panicThresholdPercent: number;
}

export type LbPolicy =
  | (LbCommon & { type: SimpleLbType })
  | (LbCommon & {
      type: "CONSISTENT_HASH";
      /** Absent when the rule names no key: every pick is then random, as in Envoy. */
      hashKey?: HashKey;
      algorithm: "RING_HASH" | "MAGLEV";
      minimumRingSize: number;
      tableSize: number;
    });

export interface ConnectionPoolLimits {
  maxConnections: number;
  connectTimeoutMs: number;
  /** Infinity: connections live until idle or closed. */
  maxConnectionDurationMs: number;
  /** Idle timeout of TCP-proxied connections. Infinity: disabled. */
  tcpIdleTimeoutMs: number;
  tcpKeepalive?: { probes?: number; timeMs?: number; intervalMs?: number };
  http1MaxPendingRequests: number;
  http2MaxRequests: number;
  /** Infinity: keep-alive without limit. 1 disables keep-alive. */
  maxRequestsPerConnection: number;
  /** Concurrent retries across the cluster; ignored when a retry budget is set (as in Envoy). */
  maxRetries: number;
  retryBudget?: { percent: number; minRetryConcurrency: number };
  /** Idle timeout of pooled upstream HTTP connections. Infinity: disabled. */
  idleTimeoutMs: number;
  maxConcurrentStreams: number;
  h2UpgradePolicy: "DEFAULT" | "DO_NOT_UPGRADE" | "UPGRADE";
  useClientProtocol: boolean;
}

export interface OutlierPolicy {
  /** 0 disables this detector. */
  consecutive5xxErrors: number;
  /** 0 disables this detector. */
  consecutiveGatewayErrors: number;
  splitExternalLocalOriginErrors: boolean;
  /** Only counted when splitExternalLocalOriginErrors; 0 disables. */
  consecutiveLocalOriginFailures: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionPercent: number;
  minHealthPercent: number;
}

/**
 * TLS the waypoint originates toward the destination (DestinationRule `tls.mode` SIMPLE or
 * MUTUAL): inside the HBONE tunnel for a mesh endpoint, directly on TCP otherwise (the egress
 * pattern: plain HTTP from the app, HTTPS to the external service). File paths are read when a
 * connection opens, as Envoy reads its SDS files.
 */
export interface TlsOrigination {
  mode: "SIMPLE" | "MUTUAL";
  /** SNI and the name the certificate must carry; absent: the destination host. */
  sni?: string;
  /** When set, the certificate must carry one of these (DNS, URI or IP) instead of the SNI name. */
  subjectAltNames: string[];
  caCertificates?: string;
  clientCertificate?: string;
  privateKey?: string;
  /** A Kubernetes Secret: not read by the waypoint yet, so such a cluster refuses to connect. */
  credentialName?: string;
  insecureSkipVerify: boolean;
}

export interface ClusterPolicy {
  lb: LbPolicy;
  connectionPool: ConnectionPoolLimits;
  outlier?: OutlierPolicy;
  tls?: TlsOrigination;
}

export interface ResolvedCluster {
  policy: ClusterPolicy;
  /** The subset's labels, when a subset was asked for and exists. */
  subsetLabels?: Record<string, string>;
  /** The route names a subset no rule defines: Istio has no such cluster (503 NC). */
  error?: "unknown-subset";
  /** The DestinationRule(s) the policy came from, for config dumps. */
  rule?: DrRef[];
}

// Istio: mesh connectTimeout. Envoy: upstream HTTP idle_timeout and tcp_proxy idle_timeout.
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
// Envoy's outlier_detection defaults, which Istio inherits for fields the rule leaves out.
const DEFAULT_CONSECUTIVE_ERRORS = 5;
const DEFAULT_INTERVAL_MS = 10_000;
const DEFAULT_BASE_EJECTION_MS = 30_000;
const DEFAULT_MAX_EJECTION_MS = 300_000;
const DEFAULT_MAX_EJECTION_PERCENT = 10;
// Envoy ring_hash minimum_ring_size (Istio passes 1024 explicitly) and Maglev's default table size.
const DEFAULT_MIN_RING_SIZE = 1024;
const DEFAULT_MAGLEV_TABLE_SIZE = 65_537;
// Istio API docs for retryBudget.
const DEFAULT_RETRY_BUDGET_PERCENT = 20;
const DEFAULT_MIN_RETRY_CONCURRENCY = 3;

/** Istio's cluster name, `outbound|<port>|<subset>|<host>`: the key for per-cluster state and stats. */
export function clusterName(host: string, port: number, subset?: string): string {
  return `outbound|${port}|${subset ?? ""}|${host}`;
}

/**
 * The policy for traffic to `host` (FQDN) on `port`, optionally a subset. Precedence follows Istio:
 * top level < matching port-level entry < subset < the subset's matching port-level entry. What
 * overrides is a whole block (loadBalancer, connectionPool, outlierDetection), never single fields,
 * and a matching port-level entry replaces all blocks: the ones it omits fall back to defaults.
 */
export function resolveClusterPolicy(
  drs: readonly DrObject[],
  host: string,
  port: number,
  subset?: string,
  opts: DrLookupOptions = {},
): ResolvedCluster {
  const rule = selectDestinationRule(drs, host, opts);
  const base = forPort(rule?.spec.trafficPolicy, port).blocks;
  if (subset === undefined) return { policy: toClusterPolicy(base), rule: rule?.from };

  const found = rule?.spec.subsets?.find((s) => s.name === subset);
  if (!found) return { policy: toClusterPolicy(base), error: "unknown-subset", rule: rule?.from };
  const blocks = found.trafficPolicy ? overlaySubset(base, forPort(found.trafficPolicy, port)) : base;
  return { policy: toClusterPolicy(blocks), subsetLabels: { ...(found.labels ?? {}) }, rule: rule?.from };
}

interface PolicyBlocks {
  loadBalancer?: LoadBalancerSpec;
  connectionPool?: ConnectionPoolSpec;
  outlierDetection?: OutlierDetectionSpec;
  tls?: ClientTlsSpec;
  retryBudget?: TrafficPolicySpec["retryBudget"];
}

/** Istio's GetPortLevelTrafficPolicy: a matching port entry stands in for the whole policy. */
function forPort(
  policy: TrafficPolicySpec | undefined,
  port: number,
): { blocks: PolicyBlocks; portLevel: boolean } {
  if (!policy) return { blocks: {}, portLevel: false };
  const entry = policy.portLevelSettings?.find((p) => p.port?.number === port);
  if (!entry) return { blocks: policy, portLevel: false };
  // PortTrafficPolicy has no retryBudget, so a port entry drops the top-level one (as Istio does).
  return {
    blocks: {
      loadBalancer: entry.loadBalancer,
      connectionPool: entry.connectionPool,
      outlierDetection: entry.outlierDetection,
      tls: entry.tls,
    },
    portLevel: true,
  };
}

/**
 * Istio's mergeTrafficPolicy: a block the subset sets replaces the destination's, and a matching
 * port entry in the subset replaces them all.
 */
function overlaySubset(base: PolicyBlocks, own: { blocks: PolicyBlocks; portLevel: boolean }): PolicyBlocks {
  const pick = <K extends "loadBalancer" | "connectionPool" | "outlierDetection" | "tls">(
    key: K,
  ): PolicyBlocks[K] => (own.portLevel || own.blocks[key] !== undefined ? own.blocks[key] : base[key]);
  return {
    loadBalancer: pick("loadBalancer"),
    connectionPool: pick("connectionPool"),
    outlierDetection: pick("outlierDetection"),
    tls: pick("tls"),
    retryBudget: own.blocks.retryBudget ?? base.retryBudget,
  };
}

function toClusterPolicy(blocks: PolicyBlocks): ClusterPolicy {
  const outlier = blocks.outlierDetection ? outlierPolicy(blocks.outlierDetection) : undefined;
  const tls = tlsOrigination(blocks.tls);
  return {
    lb: lbPolicy(blocks.loadBalancer, outlier?.minHealthPercent ?? 0),
    connectionPool: connectionPoolLimits(blocks.connectionPool, blocks.retryBudget),
    ...(outlier ? { outlier } : {}),
    ...(tls ? { tls } : {}),
  };
}

/**
 * SIMPLE and MUTUAL originate TLS. DISABLE is plain; ISTIO_MUTUAL is what HBONE already gives a
 * mesh endpoint (Istio's own mTLS), so the waypoint adds nothing for it.
 */
function tlsOrigination(spec: ClientTlsSpec | undefined): TlsOrigination | undefined {
  if (spec?.mode !== "SIMPLE" && spec?.mode !== "MUTUAL") return undefined;
  return {
    mode: spec.mode,
    ...(spec.sni ? { sni: spec.sni } : {}),
    subjectAltNames: [...(spec.subjectAltNames ?? [])],
    ...(spec.caCertificates ? { caCertificates: spec.caCertificates } : {}),
    ...(spec.clientCertificate ? { clientCertificate: spec.clientCertificate } : {}),
    ...(spec.privateKey ? { privateKey: spec.privateKey } : {}),
    ...(spec.credentialName ? { credentialName: spec.credentialName } : {}),
    insecureSkipVerify: spec.insecureSkipVerify === true,
  };
}

function lbPolicy(spec: LoadBalancerSpec | undefined, panicThresholdPercent: number): LbPolicy {
  const hash = spec?.consistentHash;
  if (hash) {
    return {
      type: "CONSISTENT_HASH",
      hashKey: hashKey(hash),
      algorithm: hash.maglev ? "MAGLEV" : "RING_HASH",
      minimumRingSize: hash.ringHash?.minimumRingSize || hash.minimumRingSize || DEFAULT_MIN_RING_SIZE,
      tableSize: hash.maglev?.tableSize || DEFAULT_MAGLEV_TABLE_SIZE,
      panicThresholdPercent,
    };
  }
  switch (spec?.simple) {
    case "ROUND_ROBIN":
    case "RANDOM":
    case "PASSTHROUGH":
      return { type: spec.simple, panicThresholdPercent };
    default:
      // LEAST_CONN is LEAST_REQUEST's deprecated name; UNSPECIFIED and absent get Istio's default.
      return { type: "LEAST_REQUEST", panicThresholdPercent };
  }
}

function hashKey(spec: NonNullable<LoadBalancerSpec["consistentHash"]>): HashKey | undefined {
  if (spec.httpHeaderName) return { kind: "header", name: spec.httpHeaderName.toLowerCase() };
  if (spec.httpCookie) {
    const ttlMs = spec.httpCookie.ttl === undefined ? undefined : parseDuration(spec.httpCookie.ttl);
    return {
      kind: "cookie",
      name: spec.httpCookie.name,
      ...(spec.httpCookie.path ? { path: spec.httpCookie.path } : {}),
      ...(ttlMs !== undefined ? { ttlMs } : {}),
      attributes: spec.httpCookie.attributes ?? [],
    };
  }
  if (spec.useSourceIp) return { kind: "sourceIp" };
  if (spec.httpQueryParameterName) return { kind: "queryParameter", name: spec.httpQueryParameterName };
  return undefined;
}

function connectionPoolLimits(
  spec: ConnectionPoolSpec | undefined,
  budget: TrafficPolicySpec["retryBudget"],
): ConnectionPoolLimits {
  const tcp = spec?.tcp ?? {};
  const http = spec?.http ?? {};
  // Istio cannot tell 0 from unset, so 0 means "default" (unlimited) for every count.
  const count = (v: number | undefined) => (v !== undefined && v > 0 ? v : Number.POSITIVE_INFINITY);
  const tcpIdle = timeout(tcp.idleTimeout, DEFAULT_IDLE_TIMEOUT_MS);
  const keepalive = tcp.tcpKeepalive;
  return {
    maxConnections: count(tcp.maxConnections),
    connectTimeoutMs: positive(ms(tcp.connectTimeout), DEFAULT_CONNECT_TIMEOUT_MS),
    maxConnectionDurationMs: timeout(tcp.maxConnectionDuration, Number.POSITIVE_INFINITY),
    tcpIdleTimeoutMs: tcpIdle,
    ...(keepalive
      ? {
          tcpKeepalive: {
            ...(keepalive.probes ? { probes: keepalive.probes } : {}),
            ...(ms(keepalive.time) !== undefined ? { timeMs: ms(keepalive.time)! } : {}),
            ...(ms(keepalive.interval) !== undefined ? { intervalMs: ms(keepalive.interval)! } : {}),
          },
        }
      : {}),
    http1MaxPendingRequests: count(http.http1MaxPendingRequests),
    http2MaxRequests: count(http.http2MaxRequests),
    maxRequestsPerConnection: count(http.maxRequestsPerConnection),
    maxRetries: count(http.maxRetries),
    ...(budget
      ? {
          retryBudget: {
            percent: budget.percent ?? DEFAULT_RETRY_BUDGET_PERCENT,
            minRetryConcurrency: budget.minRetryConcurrency || DEFAULT_MIN_RETRY_CONCURRENCY,
          },
        }
      : {}),
    // Istio: the HTTP idle timeout, else the TCP one, else Envoy's hour.
    idleTimeoutMs:
      http.idleTimeout !== undefined ? timeout(http.idleTimeout, DEFAULT_IDLE_TIMEOUT_MS) : tcpIdle,
    maxConcurrentStreams: count(http.maxConcurrentStreams),
    h2UpgradePolicy: http.h2UpgradePolicy ?? "DEFAULT",
    useClientProtocol: http.useClientProtocol ?? false,
  };
}

function outlierPolicy(spec: OutlierDetectionSpec): OutlierPolicy {
  const baseEjectionTimeMs = positive(ms(spec.baseEjectionTime), DEFAULT_BASE_EJECTION_MS);
  const split = spec.splitExternalLocalOriginErrors ?? false;
  return {
    // Unset: Envoy's 5, enforced. Explicit 0: Istio sets enforcement to 0, i.e. off.
    consecutive5xxErrors: spec.consecutive5xxErrors ?? DEFAULT_CONSECUTIVE_ERRORS,
    // Unset: Envoy counts to 5 but enforces 0%, so it never ejects.
    consecutiveGatewayErrors: spec.consecutiveGatewayErrors ?? 0,
    splitExternalLocalOriginErrors: split,
    consecutiveLocalOriginFailures: split
      ? spec.consecutiveLocalOriginFailures || DEFAULT_CONSECUTIVE_ERRORS
      : 0,
    intervalMs: positive(ms(spec.interval), DEFAULT_INTERVAL_MS),
    baseEjectionTimeMs,
    // Envoy: max_ejection_time defaults to 300 s or base_ejection_time, whichever is larger.
    maxEjectionTimeMs: Math.max(DEFAULT_MAX_EJECTION_MS, baseEjectionTimeMs),
    // Istio only passes a positive value; 0 leaves Envoy's 10%.
    maxEjectionPercent: spec.maxEjectionPercent
      ? Math.min(100, spec.maxEjectionPercent)
      : DEFAULT_MAX_EJECTION_PERCENT,
    minHealthPercent: spec.minHealthPercent ?? 0,
  };
}

function ms(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseDuration(text);
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && value > 0 ? value : fallback;
}

/** A timeout where 0 means disabled (Envoy's convention for idle and duration limits). */
function timeout(text: string | undefined, fallback: number): number {
  const value = ms(text);
  if (value === undefined) return fallback;
  return value === 0 ? Number.POSITIVE_INFINITY : value;
}

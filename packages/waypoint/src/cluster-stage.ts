// The "pick an endpoint" stage with DestinationRules applied: the service's endpoints, narrowed to
// the subset's labels, balanced per the cluster's policy, skipping outlier-ejected hosts, and
// admitted by the cluster's circuit breaker (overflow → 503 UO). A PASSTHROUGH service has no
// endpoints: its original destination is admitted the same way. State (balancers, breakers,
// outlier detectors) lives per cluster across recompiles, as Envoy keeps it across config pushes.

import { INVALID_BACKEND_HOST_SUFFIX, type Service, type Workload } from "@ambient/core";
import type { ProxyState } from "@ambient/dataplane";
import {
  CircuitBreakers,
  type ConnectionPoolLimits,
  clusterName,
  clusterNotFound,
  createBalancer,
  type DrObject,
  type EndpointInfo,
  invalidBackend,
  noHealthyUpstream,
  OutlierDetector,
  resolveClusterPolicy,
  type TlsOrigination,
  unknownDestination,
  upstreamOverflow,
} from "./cluster/index.js";
import { originalDestination, serviceFor } from "./default-stages.js";
import type { L7Request } from "./model/request.js";
import type { EndpointPick, Stages } from "./proxy/stages.js";
import type { UpstreamTls } from "./proxy/tls-origination.js";
import { endpointHost } from "./proxy/upstream.js";

type PickTarget = Parameters<Stages["pick"]>[1];
type PickResult = ReturnType<Stages["pick"]>;
type Outcome = Parameters<EndpointPick["done"]>[0];

interface ClusterState {
  balancer: ReturnType<typeof createBalancer>;
  outlier?: OutlierDetector;
  policyKey: string;
}

export class ClusterStage {
  private readonly breakers = new CircuitBreakers();
  private readonly clusters = new Map<string, ClusterState>();
  private readonly active = new Map<string, number>();
  private drs: DrObject[] = [];
  private labels = new Map<string, Record<string, string>>();

  constructor(
    private readonly state: ProxyState,
    private readonly now: () => number = Date.now,
  ) {}

  update(drs: DrObject[], podLabels: Map<string, Record<string, string>>): void {
    this.drs = drs;
    this.labels = podLabels;
  }

  pick: Stages["pick"] = (req, target) => {
    if (target.host.endsWith(INVALID_BACKEND_HOST_SUFFIX))
      return { ok: false, error: invalidBackend(target.host) };
    const service = serviceFor(this.state, req, target.host);
    if (!service) {
      const w = this.state.workloadByIp(req.destination.ip);
      if (!w) return { ok: false, error: unknownDestination(target.host) };
      return { ok: true, endpoint: { workload: w, port: target.port, done: () => {} } };
    }
    // The service's namespace, stated: a ServiceEntry's host (api.example.com) does not carry it.
    const resolved = resolveClusterPolicy(this.drs, service.hostname, target.port, target.subset, {
      namespace: service.namespace,
    });
    const name = clusterName(service.hostname, target.port, target.subset);
    if (resolved.error === "unknown-subset") return { ok: false, error: clusterNotFound(name) };
    const pool = resolved.policy.connectionPool;
    const tls = upstreamTls(resolved.policy.tls, service.hostname);
    const passthrough = originalDestination(service, req);
    // No endpoints to balance or eject; the cluster's connection pool applies all the same.
    if (passthrough) return this.admit(name, pool, target, service, { ...passthrough, ...tls });
    const cluster = this.cluster(name, resolved.policy);
    const all = this.state.endpointsFor(service, target.port);
    const byUid = new Map<string, { workload: Workload; targetPort: number }>();
    const infos: EndpointInfo[] = [];
    for (const ep of all) {
      const labels = this.labels.get(`${ep.workload.namespace}/${ep.workload.name}`) ?? {};
      if (resolved.subsetLabels && !Object.entries(resolved.subsetLabels).every(([k, v]) => labels[k] === v))
        continue;
      byUid.set(ep.workload.uid, ep);
      infos.push({
        uid: ep.workload.uid,
        address: endpointHost(ep.workload),
        port: ep.targetPort,
        labels,
        healthy: ep.workload.status === "HEALTHY",
      });
    }
    cluster.outlier?.setHosts(infos.map((i) => i.uid));
    // Hosts this request already tried are skipped while others remain (Envoy's previous_hosts).
    const untried = infos.filter((i) => !target.exclude?.has(i.uid));
    const candidates = untried.length > 0 ? untried : infos;
    const picked = cluster.balancer.pick(candidates, pickContext(req), {
      activeRequests: (uid) => this.active.get(uid) ?? 0,
      isEjected: (uid) => cluster.outlier?.isEjected(uid) ?? false,
    });
    if (!picked) return { ok: false, error: noHealthyUpstream(name) };
    const ep = byUid.get(picked.endpoint.uid)!;
    const uid = ep.workload.uid;
    return this.admit(
      name,
      pool,
      target,
      service,
      { workload: ep.workload, port: ep.targetPort, ...tls },
      {
        opened: () => this.active.set(uid, (this.active.get(uid) ?? 0) + 1),
        closed: (outcome) => {
          this.active.set(uid, Math.max(0, (this.active.get(uid) ?? 1) - 1));
          cluster.outlier?.record(uid, {
            ...(outcome.status !== undefined ? { status: outcome.status } : {}),
            ...(outcome.connectFailure || outcome.reset
              ? { localOriginFailure: true, gatewayError: true }
              : {}),
          });
        },
      },
    );
  };

  snapshot(): unknown {
    return {
      breakers: this.breakers.stats(),
      outliers: Object.fromEntries([...this.clusters].map(([n, c]) => [n, c.outlier?.snapshot()])),
    };
  }

  /**
   * Admits a request or connection to `endpoint` through the cluster's circuit breaker and gives it
   * the cluster's connection pool settings; `track` counts it against a picked endpoint (least
   * request, outlier detection) from admission to `done`.
   */
  private admit(
    name: string,
    pool: ConnectionPoolLimits,
    target: PickTarget,
    service: Service,
    endpoint: Pick<EndpointPick, "workload" | "address" | "port" | "tls">,
    track?: { opened(): void; closed(outcome: Outcome): void },
  ): PickResult {
    const breaker = this.breakers.get(name, pool);
    // http2MaxRequests is Envoy's max_requests: HTTP requests in flight to the cluster, any
    // protocol (an opaque TCP connection is no request).
    const request = target.opaque ? undefined : breaker.tryAcquire("request");
    if (!target.opaque && !request) return { ok: false, error: upstreamOverflow(name, "request") };
    // HBONE gives each request its own stream, so a request in flight is a connection in Envoy's
    // HTTP/1.1 terms; beyond maxConnections it would wait as pending, beyond that it overflows.
    // Opaque TCP has no pending queue: past maxConnections it overflows at once, as tcp_proxy does.
    const slot = target.opaque
      ? breaker.tryAcquire("connection")
      : (breaker.tryAcquire("connection") ?? breaker.tryAcquire("pending"));
    if (!slot) {
      request?.();
      return { ok: false, error: upstreamOverflow(name, target.opaque ? "connection" : "pending") };
    }
    const release = () => {
      slot();
      request?.();
    };
    track?.opened();
    return {
      ok: true,
      service,
      endpoint: {
        ...endpoint,
        connectTimeoutMs: pool.connectTimeoutMs,
        ...(pool.tcpKeepalive ? { keepalive: pool.tcpKeepalive } : {}),
        connections: {
          maxRequestsPerConnection: pool.maxRequestsPerConnection,
          idleTimeoutMs: pool.idleTimeoutMs,
          maxConnectionDurationMs: pool.maxConnectionDurationMs,
          ...(Number.isFinite(pool.maxConcurrentStreams)
            ? { maxConcurrentStreams: pool.maxConcurrentStreams }
            : {}),
        },
        opaque: {
          idleTimeoutMs: pool.tcpIdleTimeoutMs,
          maxConnectionDurationMs: pool.maxConnectionDurationMs,
        },
        acquireRetry: () => breaker.tryAcquire("retry"),
        done: (outcome) => {
          release();
          track?.closed(outcome);
        },
      },
    };
  }

  private cluster(name: string, policy: ReturnType<typeof resolveClusterPolicy>["policy"]): ClusterState {
    const key = JSON.stringify([policy.lb, policy.outlier ?? null]);
    const existing = this.clusters.get(name);
    if (existing && existing.policyKey === key) return existing;
    const state: ClusterState = {
      balancer: createBalancer(policy.lb),
      ...(policy.outlier ? { outlier: new OutlierDetector(policy.outlier, this.now) } : {}),
      policyKey: key,
    };
    this.clusters.set(name, state);
    return state;
  }
}

function pickContext(req: L7Request) {
  return { headers: req.headers, path: req.path, sourceIp: req.source.ip };
}

/** The cluster's TLS origination, its SNI defaulting to the destination host (Istio's auto SNI). */
function upstreamTls(tls: TlsOrigination | undefined, host: string): { tls?: UpstreamTls } {
  if (!tls) return {};
  const { sni, ...rest } = tls;
  return { tls: { ...rest, servername: sni ?? host } };
}

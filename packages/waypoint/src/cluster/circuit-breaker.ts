// Envoy's per-cluster circuit breakers for DestinationRule connectionPool: counters of connections,
// pending (queued) requests, active requests and concurrent retries, each refusing past its limit.
// The engine's connection pool asks here before it connects, queues, dispatches or retries.

import type { ConnectionPoolLimits } from "./policy.js";

export type ResourceKind = "connection" | "pending" | "request" | "retry";

/** Gives the slot back. Idempotent, so every exit path of the engine can call it. */
export type Release = () => void;

export interface AcquireOptions {
  /**
   * Count the connection even past the limit. Envoy always lets a host with no connection at all
   * open one, so that requests queued for it can make progress.
   */
  force?: boolean;
}

/** What to do with a new request, decided the way Envoy's HTTP connection pool does. */
export type Admission =
  /** An idle connection is ready: dispatch on it now. */
  | { outcome: "dispatch"; request: Release }
  /**
   * Wait for a connection. Open a new one when `connection` is given; otherwise wait for a busy one
   * to free up. When it gets a connection the engine releases `pending` and calls
   * `tryAcquire("request")`, which can still overflow.
   */
  | { outcome: "queue"; pending: Release; connection?: Release }
  /** 503 with response flag UO. */
  | { outcome: "overflow"; resource: "pending" | "request" };

export interface CircuitBreakerStats {
  cluster: string;
  /** Envoy circuit_breakers.default.* thresholds; Infinity where Istio sets 2^32-1. */
  thresholds: { maxConnections: number; maxPendingRequests: number; maxRequests: number; maxRetries: number };
  active: { connections: number; pending: number; requests: number; retries: number };
  /** remaining_cx, remaining_pending, remaining_rq, remaining_retries (Istio enables track_remaining). */
  remaining: { connections: number; pending: number; requests: number; retries: number };
  /** cx_open, rq_pending_open, rq_open, rq_retry_open: 1 while the breaker is at its limit. */
  open: { connections: 0 | 1; pending: 0 | 1; requests: 0 | 1; retries: 0 | 1 };
  /**
   * upstream_cx_overflow, upstream_rq_pending_overflow (which also counts max-requests overflow,
   * as in Envoy) and upstream_rq_retry_overflow.
   */
  overflow: { connections: number; pending: number; retries: number };
}

export class CircuitBreaker {
  private limits: ConnectionPoolLimits;
  private readonly active: Record<ResourceKind, number> = { connection: 0, pending: 0, request: 0, retry: 0 };
  private readonly overflows = { connections: 0, pending: 0, retries: 0 };

  constructor(
    readonly cluster: string,
    limits: ConnectionPoolLimits,
  ) {
    this.limits = limits;
  }

  /** New limits from a DestinationRule change; in-flight counts carry over, as Envoy's do per cluster. */
  update(limits: ConnectionPoolLimits): void {
    this.limits = limits;
  }

  get maxRequestsPerConnection(): number {
    return this.limits.maxRequestsPerConnection;
  }

  get connectTimeoutMs(): number {
    return this.limits.connectTimeoutMs;
  }

  get idleTimeoutMs(): number {
    return this.limits.idleTimeoutMs;
  }

  /** The limit for one resource now: a retry budget moves with the load. */
  max(kind: ResourceKind): number {
    switch (kind) {
      case "connection":
        return this.limits.maxConnections;
      case "pending":
        return this.limits.http1MaxPendingRequests;
      // Istio's http2MaxRequests is Envoy's max_requests: active requests over any protocol.
      case "request":
        return this.limits.http2MaxRequests;
      case "retry": {
        const budget = this.limits.retryBudget;
        if (!budget) return this.limits.maxRetries;
        // Envoy: budget_percent of active plus pending requests, never below min_retry_concurrency.
        const load = this.active.request + this.active.pending;
        return Math.max(Math.floor((budget.percent / 100) * load), budget.minRetryConcurrency);
      }
    }
  }

  canAcquire(kind: ResourceKind): boolean {
    return this.active[kind] < this.max(kind);
  }

  remaining(kind: ResourceKind): number {
    return Math.max(0, this.max(kind) - this.active[kind]);
  }

  /**
   * A slot of `kind`, or undefined when the breaker is at its limit. For connection, pending and
   * request that means 503 UO; for retry it means "do not retry" (Envoy returns the response it has).
   */
  tryAcquire(kind: ResourceKind, opts: AcquireOptions = {}): Release | undefined {
    if (!this.canAcquire(kind)) {
      this.countOverflow(kind);
      if (!(kind === "connection" && opts.force)) return undefined;
    }
    this.active[kind]++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active[kind]--;
    };
  }

  /**
   * Envoy's order for a new HTTP request: an idle connection takes it at once (subject to
   * max_requests); otherwise it must fit in the pending queue first, and only then may a connection
   * be opened for it. With HTTP/1.1 and max_connections reached, requests queue up to
   * http1MaxPendingRequests and overflow beyond.
   */
  admit(opts: { idleConnection: boolean; hostConnections: number }): Admission {
    if (opts.idleConnection) {
      const request = this.tryAcquire("request");
      return request ? { outcome: "dispatch", request } : { outcome: "overflow", resource: "request" };
    }
    const pending = this.tryAcquire("pending");
    if (!pending) return { outcome: "overflow", resource: "pending" };
    const connection = this.tryAcquire("connection", { force: opts.hostConnections === 0 });
    return connection ? { outcome: "queue", pending, connection } : { outcome: "queue", pending };
  }

  stats(): CircuitBreakerStats {
    const open = (kind: ResourceKind): 0 | 1 => (this.canAcquire(kind) ? 0 : 1);
    return {
      cluster: this.cluster,
      thresholds: {
        maxConnections: this.max("connection"),
        maxPendingRequests: this.max("pending"),
        maxRequests: this.max("request"),
        maxRetries: this.max("retry"),
      },
      active: {
        connections: this.active.connection,
        pending: this.active.pending,
        requests: this.active.request,
        retries: this.active.retry,
      },
      remaining: {
        connections: this.remaining("connection"),
        pending: this.remaining("pending"),
        requests: this.remaining("request"),
        retries: this.remaining("retry"),
      },
      open: {
        connections: open("connection"),
        pending: open("pending"),
        requests: open("request"),
        retries: open("retry"),
      },
      overflow: { ...this.overflows },
    };
  }

  private countOverflow(kind: ResourceKind): void {
    if (kind === "connection") this.overflows.connections++;
    else if (kind === "retry") this.overflows.retries++;
    else this.overflows.pending++;
  }
}

/** One breaker per cluster name, created on first use and re-limited when the policy changes. */
export class CircuitBreakers {
  private readonly byCluster = new Map<string, CircuitBreaker>();

  get(cluster: string, limits: ConnectionPoolLimits): CircuitBreaker {
    const existing = this.byCluster.get(cluster);
    if (existing) {
      existing.update(limits);
      return existing;
    }
    const breaker = new CircuitBreaker(cluster, limits);
    this.byCluster.set(cluster, breaker);
    return breaker;
  }

  /** Drop breakers of clusters that no longer exist. */
  retain(clusters: Iterable<string>): void {
    const keep = new Set(clusters);
    for (const name of this.byCluster.keys()) if (!keep.has(name)) this.byCluster.delete(name);
  }

  stats(): CircuitBreakerStats[] {
    return [...this.byCluster.values()].map((b) => b.stats());
  }
}

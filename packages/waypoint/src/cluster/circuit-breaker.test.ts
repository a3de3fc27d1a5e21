import { describe, expect, it } from "vitest";
import { CircuitBreaker, CircuitBreakers } from "./circuit-breaker.js";
import type { ConnectionPoolSpec } from "./destination-rule.js";
import { resolveClusterPolicy } from "./policy.js";

const HOST = "reviews.default.svc.cluster.local";

function limits(
  connectionPool: ConnectionPoolSpec,
  retryBudget?: { percent?: number; minRetryConcurrency?: number },
) {
  const dr = {
    metadata: { name: "r", namespace: "default" },
    spec: { host: HOST, trafficPolicy: { connectionPool, ...(retryBudget ? { retryBudget } : {}) } },
  };
  return resolveClusterPolicy([dr], HOST, 9080).policy.connectionPool;
}

describe("CircuitBreaker", () => {
  it("maxConnections 1 + http1MaxPendingRequests 1: the third concurrent request overflows (UO)", () => {
    const cb = new CircuitBreaker(
      "c",
      limits({ tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } }),
    );

    // 1st: no connection yet → queued, and a connection is opened for it.
    const first = cb.admit({ idleConnection: false, hostConnections: 0 });
    expect(first.outcome).toBe("queue");
    if (first.outcome !== "queue") throw new Error("unreachable");
    expect(first.connection).toBeDefined();
    // Connected: it leaves the queue and becomes active on the connection.
    first.pending();
    const firstRequest = cb.tryAcquire("request");
    expect(firstRequest).toBeDefined();

    // 2nd: the only connection is busy and no other may be opened → waits in the queue.
    const second = cb.admit({ idleConnection: false, hostConnections: 1 });
    expect(second.outcome).toBe("queue");
    if (second.outcome !== "queue") throw new Error("unreachable");
    expect(second.connection).toBeUndefined();

    // 3rd: the queue is full.
    expect(cb.admit({ idleConnection: false, hostConnections: 1 })).toEqual({
      outcome: "overflow",
      resource: "pending",
    });
    expect(cb.stats()).toMatchObject({
      active: { connections: 1, pending: 1, requests: 1 },
      open: { connections: 1, pending: 1, requests: 0 },
      overflow: { connections: 1, pending: 1, retries: 0 },
      remaining: { connections: 0, pending: 0 },
    });

    // 1st finishes; its connection takes the queued 2nd; a 3rd attempt now queues again.
    firstRequest!();
    second.pending();
    const secondRequest = cb.tryAcquire("request");
    expect(secondRequest).toBeDefined();
    expect(cb.admit({ idleConnection: false, hostConnections: 1 }).outcome).toBe("queue");
  });

  it("releases free capacity, and releasing twice frees it once", () => {
    const cb = new CircuitBreaker("c", limits({ http: { http2MaxRequests: 2 } }));
    const a = cb.tryAcquire("request")!;
    const b = cb.tryAcquire("request")!;
    expect(cb.tryAcquire("request")).toBeUndefined();
    a();
    a();
    const c = cb.tryAcquire("request");
    expect(c).toBeDefined();
    expect(cb.tryAcquire("request")).toBeUndefined();
    b();
    c!();
    expect(cb.stats().active.requests).toBe(0);
    expect(cb.stats().overflow.pending).toBe(2);
  });

  it("an idle connection dispatches at once, subject to http2MaxRequests (max_requests)", () => {
    const cb = new CircuitBreaker("c", limits({ http: { http2MaxRequests: 1 } }));
    expect(cb.admit({ idleConnection: true, hostConnections: 1 }).outcome).toBe("dispatch");
    expect(cb.admit({ idleConnection: true, hostConnections: 2 })).toEqual({
      outcome: "overflow",
      resource: "request",
    });
  });

  it("a host without any connection may always open one, past the cluster limit", () => {
    const cb = new CircuitBreaker("c", limits({ tcp: { maxConnections: 1 } }));
    expect(cb.tryAcquire("connection")).toBeDefined();
    expect(cb.tryAcquire("connection")).toBeUndefined();
    expect(cb.tryAcquire("connection", { force: true })).toBeDefined();
    expect(cb.stats().active.connections).toBe(2);
    expect(cb.stats().overflow.connections).toBe(2);
  });

  it("limits concurrent retries with maxRetries, or with a retry budget when one is set", () => {
    const fixed = new CircuitBreaker("c", limits({ http: { maxRetries: 1 } }));
    expect(fixed.tryAcquire("retry")).toBeDefined();
    expect(fixed.tryAcquire("retry")).toBeUndefined();
    expect(fixed.stats().overflow.retries).toBe(1);

    const budget = new CircuitBreaker("c", limits({ http: { maxRetries: 1 } }, { percent: 50 }));
    // Floor of min_retry_concurrency (3) while the load is small.
    expect(budget.max("retry")).toBe(3);
    const active = Array.from({ length: 10 }, () => budget.tryAcquire("request")!);
    expect(budget.max("retry")).toBe(5);
    for (const release of active) release();
  });

  it("exposes the pool settings the engine needs, unlimited by default", () => {
    const cb = new CircuitBreaker("c", limits({ http: { maxRequestsPerConnection: 1, idleTimeout: "30s" } }));
    expect(cb.maxRequestsPerConnection).toBe(1);
    expect(cb.idleTimeoutMs).toBe(30_000);
    expect(cb.connectTimeoutMs).toBe(10_000);
    const open = new CircuitBreaker("c", limits({}));
    expect(open.stats().thresholds).toEqual({
      maxConnections: Number.POSITIVE_INFINITY,
      maxPendingRequests: Number.POSITIVE_INFINITY,
      maxRequests: Number.POSITIVE_INFINITY,
      maxRetries: Number.POSITIVE_INFINITY,
    });
    for (let i = 0; i < 1000; i++) expect(open.tryAcquire("request")).toBeDefined();
  });
});

describe("CircuitBreakers", () => {
  it("keeps one breaker per cluster and its counts across limit updates", () => {
    const all = new CircuitBreakers();
    const a = all.get("outbound|80||a", limits({ http: { http2MaxRequests: 1 } }));
    a.tryAcquire("request");
    const again = all.get("outbound|80||a", limits({ http: { http2MaxRequests: 2 } }));
    expect(again).toBe(a);
    expect(a.remaining("request")).toBe(1);
    all.get("outbound|80||b", limits({}));
    all.retain(["outbound|80||b"]);
    expect(all.stats().map((s) => s.cluster)).toEqual(["outbound|80||b"]);
  });
});

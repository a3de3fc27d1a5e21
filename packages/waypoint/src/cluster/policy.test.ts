import { describe, expect, it } from "vitest";
import type { DestinationRuleSpec, DrObject } from "./destination-rule.js";
import { selectDestinationRule } from "./destination-rule.js";
import { clusterName, resolveClusterPolicy } from "./policy.js";

const HOST = "reviews.default.svc.cluster.local";

function dr(
  name: string,
  namespace: string,
  spec: DestinationRuleSpec,
  creationTimestamp?: string,
): DrObject {
  return { metadata: { name, namespace, ...(creationTimestamp ? { creationTimestamp } : {}) }, spec };
}

// Every block set at every level, each with a distinguishable value.
const layered = dr("reviews", "default", {
  host: "reviews",
  trafficPolicy: {
    loadBalancer: { simple: "ROUND_ROBIN" },
    connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } },
    outlierDetection: { consecutive5xxErrors: 1 },
    portLevelSettings: [
      {
        port: { number: 9080 },
        loadBalancer: { simple: "RANDOM" },
        connectionPool: { tcp: { maxConnections: 2 } },
        outlierDetection: { consecutive5xxErrors: 2 },
      },
    ],
  },
  subsets: [
    {
      name: "v2",
      labels: { version: "v2" },
      trafficPolicy: {
        loadBalancer: { simple: "LEAST_CONN" },
        connectionPool: { tcp: { maxConnections: 3 } },
        outlierDetection: { consecutive5xxErrors: 3 },
        portLevelSettings: [
          {
            port: { number: 9443 },
            loadBalancer: { consistentHash: { httpHeaderName: "X-User" } },
            connectionPool: { tcp: { maxConnections: 4 } },
            outlierDetection: { consecutive5xxErrors: 4 },
          },
        ],
      },
    },
    { name: "v1", labels: { version: "v1" } },
  ],
});

describe("resolveClusterPolicy defaults", () => {
  it("gives Istio's defaults when no rule applies", () => {
    const { policy, rule, error } = resolveClusterPolicy([], HOST, 9080);
    expect(error).toBeUndefined();
    expect(rule).toBeUndefined();
    expect(policy.lb).toEqual({ type: "LEAST_REQUEST", panicThresholdPercent: 0 });
    expect(policy.outlier).toBeUndefined();
    const pool = policy.connectionPool;
    expect(pool.maxConnections).toBe(Number.POSITIVE_INFINITY);
    expect(pool.http1MaxPendingRequests).toBe(Number.POSITIVE_INFINITY);
    expect(pool.http2MaxRequests).toBe(Number.POSITIVE_INFINITY);
    expect(pool.maxRetries).toBe(Number.POSITIVE_INFINITY);
    expect(pool.maxRequestsPerConnection).toBe(Number.POSITIVE_INFINITY);
    expect(pool.connectTimeoutMs).toBe(10_000);
    expect(pool.idleTimeoutMs).toBe(3_600_000);
  });

  it("fills outlier detection with Envoy's defaults once configured", () => {
    const { policy } = resolveClusterPolicy(
      [dr("r", "default", { host: HOST, trafficPolicy: { outlierDetection: {} } })],
      HOST,
      80,
    );
    expect(policy.outlier).toEqual({
      consecutive5xxErrors: 5,
      consecutiveGatewayErrors: 0,
      splitExternalLocalOriginErrors: false,
      consecutiveLocalOriginFailures: 0,
      intervalMs: 10_000,
      baseEjectionTimeMs: 30_000,
      maxEjectionTimeMs: 300_000,
      maxEjectionPercent: 10,
      minHealthPercent: 0,
    });
  });

  it("treats 0 as unset for counts and disables idle timeouts at 0s, as Istio and Envoy do", () => {
    const spec: DestinationRuleSpec = {
      host: HOST,
      trafficPolicy: {
        connectionPool: {
          tcp: { maxConnections: 0, connectTimeout: "250ms", idleTimeout: "0s" },
          http: { maxRequestsPerConnection: 1 },
        },
        outlierDetection: { baseEjectionTime: "10m", maxEjectionPercent: 0, minHealthPercent: 50 },
      },
    };
    const { policy } = resolveClusterPolicy([dr("r", "default", spec)], HOST, 80);
    expect(policy.connectionPool.maxConnections).toBe(Number.POSITIVE_INFINITY);
    expect(policy.connectionPool.connectTimeoutMs).toBe(250);
    expect(policy.connectionPool.idleTimeoutMs).toBe(Number.POSITIVE_INFINITY);
    expect(policy.connectionPool.maxRequestsPerConnection).toBe(1);
    expect(policy.outlier?.maxEjectionTimeMs).toBe(600_000);
    expect(policy.outlier?.maxEjectionPercent).toBe(10);
    expect(policy.lb.panicThresholdPercent).toBe(50);
  });

  it("reads consistent hash keys", () => {
    const spec: DestinationRuleSpec = {
      host: HOST,
      trafficPolicy: {
        loadBalancer: {
          consistentHash: { httpCookie: { name: "session", path: "/", ttl: "1h" }, maglev: {} },
        },
      },
    };
    const { policy } = resolveClusterPolicy([dr("r", "default", spec)], HOST, 80);
    expect(policy.lb).toMatchObject({
      type: "CONSISTENT_HASH",
      algorithm: "MAGLEV",
      hashKey: { kind: "cookie", name: "session", path: "/", ttlMs: 3_600_000 },
    });
  });
});

describe("resolveClusterPolicy precedence: top level < port level < subset < subset port level", () => {
  const resolve = (port: number, subset?: string) => resolveClusterPolicy([layered], HOST, port, subset);

  it("top level on a port without port-level settings", () => {
    const { policy } = resolve(8080);
    expect(policy.lb.type).toBe("ROUND_ROBIN");
    expect(policy.connectionPool.maxConnections).toBe(1);
    expect(policy.connectionPool.http1MaxPendingRequests).toBe(1);
    expect(policy.outlier?.consecutive5xxErrors).toBe(1);
  });

  it("port level replaces every top-level block, even ones it leaves out", () => {
    const { policy } = resolve(9080);
    expect(policy.lb.type).toBe("RANDOM");
    expect(policy.connectionPool.maxConnections).toBe(2);
    // Not inherited from the top level's connectionPool.http: Istio's port-level policies do not merge.
    expect(policy.connectionPool.http1MaxPendingRequests).toBe(Number.POSITIVE_INFINITY);
    expect(policy.outlier?.consecutive5xxErrors).toBe(2);
  });

  it("a port-level entry with a block missing falls back to the default, not the top level", () => {
    const rule = dr("r", "default", {
      host: HOST,
      trafficPolicy: {
        loadBalancer: { simple: "ROUND_ROBIN" },
        outlierDetection: {},
        portLevelSettings: [{ port: { number: 80 }, connectionPool: { tcp: { maxConnections: 7 } } }],
      },
    });
    const { policy } = resolveClusterPolicy([rule], HOST, 80);
    expect(policy.lb.type).toBe("LEAST_REQUEST");
    expect(policy.outlier).toBeUndefined();
    expect(policy.connectionPool.maxConnections).toBe(7);
  });

  it("subset overrides the port level, block by block", () => {
    const { policy, subsetLabels } = resolve(9080, "v2");
    expect(subsetLabels).toEqual({ version: "v2" });
    expect(policy.lb.type).toBe("LEAST_REQUEST");
    expect(policy.connectionPool.maxConnections).toBe(3);
    expect(policy.outlier?.consecutive5xxErrors).toBe(3);
  });

  it("a subset block that is absent keeps the destination-level block", () => {
    const rule = dr("r", "default", {
      host: HOST,
      trafficPolicy: { loadBalancer: { simple: "RANDOM" }, outlierDetection: { consecutive5xxErrors: 9 } },
      subsets: [
        {
          name: "a",
          labels: { app: "a" },
          trafficPolicy: { connectionPool: { tcp: { maxConnections: 5 } } },
        },
      ],
    });
    const { policy } = resolveClusterPolicy([rule], HOST, 80, "a");
    expect(policy.lb.type).toBe("RANDOM");
    expect(policy.outlier?.consecutive5xxErrors).toBe(9);
    expect(policy.connectionPool.maxConnections).toBe(5);
  });

  it("subset port level wins over everything", () => {
    const { policy } = resolve(9443, "v2");
    expect(policy.lb).toMatchObject({ type: "CONSISTENT_HASH", hashKey: { kind: "header", name: "x-user" } });
    expect(policy.connectionPool.maxConnections).toBe(4);
    expect(policy.outlier?.consecutive5xxErrors).toBe(4);
  });

  it("a subset without a traffic policy takes the destination's (port-level) policy", () => {
    const { policy, subsetLabels } = resolve(9080, "v1");
    expect(subsetLabels).toEqual({ version: "v1" });
    expect(policy.lb.type).toBe("RANDOM");
    expect(policy.connectionPool.maxConnections).toBe(2);
  });

  it("reports an unknown subset", () => {
    const { error, subsetLabels, policy } = resolve(9080, "v9");
    expect(error).toBe("unknown-subset");
    expect(subsetLabels).toBeUndefined();
    expect(policy.lb.type).toBe("RANDOM");
    expect(resolveClusterPolicy([], HOST, 80, "v1").error).toBe("unknown-subset");
  });
});

describe("selectDestinationRule", () => {
  it("resolves short names in the rule's namespace", () => {
    const other = dr("r", "other", { host: "reviews" });
    expect(selectDestinationRule([other], HOST, { proxyNamespace: "other" })).toBeUndefined();
    expect(selectDestinationRule([dr("r", "default", { host: "reviews" })], HOST)?.from).toEqual([
      { namespace: "default", name: "r" },
    ]);
  });

  it("prefers an exact host over wildcards, and a longer wildcard over a shorter", () => {
    const rules = [
      dr("all", "default", { host: "*" }),
      dr("ns", "default", { host: "*.default.svc.cluster.local" }),
      dr("exact", "default", { host: HOST }),
    ];
    expect(selectDestinationRule(rules, HOST)?.from[0]?.name).toBe("exact");
    expect(selectDestinationRule(rules, "ratings.default.svc.cluster.local")?.from[0]?.name).toBe("ns");
    // Not a Kubernetes name: the caller says which namespace the ServiceEntry lives in.
    expect(selectDestinationRule(rules, "example.com", { namespace: "default" })?.from[0]?.name).toBe("all");
  });

  it("looks in the proxy's namespace, then the service's, then the root namespace", () => {
    const root = dr("root", "istio-system", { host: HOST });
    const svc = dr("svc", "default", { host: HOST });
    const proxy = dr("proxy", "waypoints", { host: HOST, exportTo: ["."] });
    const elsewhere = dr("elsewhere", "unrelated", { host: HOST });
    const pick = (rules: DrObject[]) =>
      selectDestinationRule(rules, HOST, { proxyNamespace: "waypoints" })?.from[0]?.name;
    expect(pick([root, svc, proxy, elsewhere])).toBe("proxy");
    expect(pick([root, svc, elsewhere])).toBe("svc");
    expect(pick([root, elsewhere])).toBe("root");
    expect(pick([elsewhere])).toBeUndefined();
    // The service namespace's rule must be exported to the proxy's namespace.
    expect(pick([dr("private", "default", { host: HOST, exportTo: ["."] }), root])).toBe("root");
  });

  it("a rule in the destination's namespace beats one in the root namespace", () => {
    const rules = [
      dr("root", "istio-system", { host: "*.svc.cluster.local" }),
      dr("svc", "default", { host: "*" }),
    ];
    expect(selectDestinationRule(rules, HOST)?.from[0]?.name).toBe("svc");
  });

  it("consolidates same-host rules of one namespace, oldest first", () => {
    const older = dr(
      "b",
      "default",
      { host: HOST, subsets: [{ name: "v1", labels: { v: "1" } }] },
      "2024-01-01T00:00:00Z",
    );
    const newer = dr(
      "a",
      "default",
      {
        host: HOST,
        trafficPolicy: { loadBalancer: { simple: "RANDOM" } },
        subsets: [
          { name: "v1", labels: { v: "other" } },
          { name: "v2", labels: { v: "2" } },
        ],
      },
      "2024-06-01T00:00:00Z",
    );
    const selected = selectDestinationRule([newer, older], HOST);
    expect(selected?.from.map((r) => r.name)).toEqual(["b", "a"]);
    expect(selected?.spec.subsets).toEqual([
      { name: "v1", labels: { v: "1" } },
      { name: "v2", labels: { v: "2" } },
    ]);
    expect(resolveClusterPolicy([newer, older], HOST, 80, "v2").policy.lb.type).toBe("RANDOM");
  });

  it("ignores rules with a workloadSelector (they configure sidecars)", () => {
    const rule = dr("r", "default", { host: HOST, workloadSelector: { matchLabels: { app: "x" } } });
    expect(selectDestinationRule([rule], HOST)).toBeUndefined();
  });
});

describe("clusterName", () => {
  it("uses Istio's outbound cluster name", () => {
    expect(clusterName(HOST, 9080, "v1")).toBe(`outbound|9080|v1|${HOST}`);
    expect(clusterName(HOST, 9080)).toBe(`outbound|9080||${HOST}`);
  });
});

describe("TLS origination (tls.mode SIMPLE, MUTUAL)", () => {
  const rule = dr("ext", "default", {
    host: HOST,
    trafficPolicy: {
      tls: { mode: "SIMPLE", caCertificates: "/etc/ca.pem", sni: "api.example.com" },
      portLevelSettings: [{ port: { number: 8080 }, loadBalancer: { simple: "RANDOM" } }],
    },
    subsets: [
      {
        name: "mtls",
        trafficPolicy: { tls: { mode: "MUTUAL", clientCertificate: "/c.pem", privateKey: "/k.pem" } },
      },
      { name: "plain", trafficPolicy: { tls: { mode: "DISABLE" } } },
      { name: "mesh", trafficPolicy: { tls: { mode: "ISTIO_MUTUAL" } } },
    ],
  });

  it("takes the top-level tls, and like every block loses it to a port-level entry", () => {
    expect(resolveClusterPolicy([rule], HOST, 443).policy.tls).toEqual({
      mode: "SIMPLE",
      sni: "api.example.com",
      caCertificates: "/etc/ca.pem",
      subjectAltNames: [],
      insecureSkipVerify: false,
    });
    expect(resolveClusterPolicy([rule], HOST, 8080).policy.tls).toBeUndefined();
  });

  it("a subset's tls replaces it; DISABLE and ISTIO_MUTUAL (HBONE's own mTLS) originate nothing", () => {
    expect(resolveClusterPolicy([rule], HOST, 443, "mtls").policy.tls).toMatchObject({
      mode: "MUTUAL",
      clientCertificate: "/c.pem",
      privateKey: "/k.pem",
    });
    expect(resolveClusterPolicy([rule], HOST, 443, "plain").policy.tls).toBeUndefined();
    expect(resolveClusterPolicy([rule], HOST, 443, "mesh").policy.tls).toBeUndefined();
  });
});

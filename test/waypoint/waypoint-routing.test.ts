// Istio's traffic-management tasks through a namespace waypoint on 127.26.x.y: header-based
// routing, a weighted canary, fault injection, timeouts, retries, circuit breaking and outlier
// detection. Outcomes as Istio documents them for its bookinfo/httpbin tasks.

import { randomBytes } from "node:crypto";
import { RETRY_BUFFER_BYTES } from "@ambient/waypoint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, startMesh, type TestMesh } from "../utils/mesh.js";
import { httpViaSocks } from "../utils/socks.js";

const CLIENT = "127.26.1.10";
const HOST = "reviews.demo.svc.cluster.local";

let t: TestMesh;
const DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: demo }
spec:
  host: reviews
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
`;
const ONE_REQUEST_PER_CONNECTION = `  trafficPolicy:
    connectionPool: { http: { maxRequestsPerConnection: 1 } }
  subsets:`;
beforeAll(async () => {
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      node("node-a", "127.26.1.1"),
      node("node-b", "127.26.2.1"),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      pod({
        name: "reviews-v1",
        namespace: "demo",
        node: "node-b",
        ip: "127.26.2.10",
        sa: "reviews",
        labels: { app: "reviews", version: "v1" },
        ports: [{ containerPort: 9080 }],
      }),
      pod({
        name: "reviews-v2",
        namespace: "demo",
        node: "node-b",
        ip: "127.26.2.11",
        sa: "reviews",
        labels: { app: "reviews", version: "v2" },
        ports: [{ containerPort: 9080 }],
      }),
      service({
        name: "reviews",
        namespace: "demo",
        vip: "127.26.100.1",
        selector: { app: "reviews" },
        ports: [{ port: 9080, targetPort: 9080, name: "http" }],
      }),
      // flaky: one endpoint whose app does not listen (connect failures), one that works.
      pod({
        name: "flaky-dead",
        namespace: "demo",
        node: "node-b",
        ip: "127.26.2.20",
        sa: "flaky",
        labels: { app: "flaky" },
      }),
      pod({
        name: "flaky-ok",
        namespace: "demo",
        node: "node-b",
        ip: "127.26.2.21",
        sa: "flaky",
        labels: { app: "flaky" },
        ports: [{ containerPort: 8000 }],
      }),
      service({
        name: "flaky",
        namespace: "demo",
        vip: "127.26.100.2",
        selector: { app: "flaky" },
        ports: [{ port: 8000, targetPort: 8000, name: "http" }],
      }),
    ),
    "10-waypoint.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: demo }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: 127.26.2.40 }]
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`,
    "20-dr.yaml": DR,
  });
}, 30_000);
afterAll(async () => t?.stop());

function get(path: string, headers: Record<string, string> = {}, host = HOST, port = 9080) {
  return httpViaSocks(CLIENT, { host, port, path, headers });
}

const vs = (http: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: demo }
spec:
  hosts: [reviews]
  http:
${http}`;

describe("request routing", () => {
  it("routes end-user: jason to v2 and everyone else to v1", async () => {
    await t.config.write(
      "30-vs.yaml",
      vs(`    - match: [{ headers: { end-user: { exact: jason } } }]
      route: [{ destination: { host: reviews, subset: v2 } }]
    - route: [{ destination: { host: reviews, subset: v1 } }]
`),
    );
    // Until the VirtualService arrives, default round robin would answer either way: wait for it.
    await eventually(async () => {
      for (let i = 0; i < 4; i++) {
        expect((await get("/", { "end-user": "jason" })).json<{ pod: string }>().pod).toBe("reviews-v2");
        expect((await get("/")).json<{ pod: string }>().pod).toBe("reviews-v1");
      }
    });
    for (let i = 0; i < 5; i++) expect((await get("/")).json<{ pod: string }>().pod).toBe("reviews-v1");
    expect((await get("/", { "end-user": "jason" })).json<{ pod: string }>().pod).toBe("reviews-v2");
  });

  it("splits 90/10 by weight", async () => {
    await t.config.write(
      "30-vs.yaml",
      vs(`    - route:
        - { destination: { host: reviews, subset: v1 }, weight: 90 }
        - { destination: { host: reviews, subset: v2 }, weight: 10 }
`),
    );
    await eventually(async () => expect((await get("/")).status).toBe(200));
    await eventually(async () => {
      const seen = { "reviews-v1": 0, "reviews-v2": 0 } as Record<string, number>;
      for (let i = 0; i < 400; i++) seen[(await get("/")).json<{ pod: string }>().pod]!++;
      // 10% of 400 = 40; 4 standard deviations is ±24.
      expect(seen["reviews-v2"]).toBeGreaterThan(16);
      expect(seen["reviews-v2"]).toBeLessThan(64);
    }, 20_000);
  }, 60_000);
});

describe("upstream connections", () => {
  it("are kept alive: consecutive requests to one endpoint reuse one connection to the app", async () => {
    await t.config.write("30-vs.yaml", vs(`    - route: [{ destination: { host: reviews, subset: v1 } }]\n`));
    // The echo app reports the peer it sees: node-b's ztunnel's socket to it, one per connection.
    const peers = await eventually(async () => {
      const seen: string[] = [];
      for (let i = 0; i < 3; i++) {
        const body = (await get(`/keepalive-${i}`)).json<{ pod: string; peer: string }>();
        expect(body.pod).toBe("reviews-v1");
        seen.push(body.peer);
      }
      return seen;
    });
    expect(new Set(peers).size).toBe(1);
  });

  it("follow the DestinationRule: maxRequestsPerConnection 1 turns keep-alive off", async () => {
    await t.config.write("20-dr.yaml", DR.replace("  subsets:", ONE_REQUEST_PER_CONNECTION));
    try {
      await t.config.write(
        "30-vs.yaml",
        vs(`    - route: [{ destination: { host: reviews, subset: v1 } }]\n`),
      );
      await eventually(async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 3; i++) seen.add((await get(`/no-keepalive-${i}`)).json<{ peer: string }>().peer);
        expect(seen.size).toBe(3);
      }, 10_000);
    } finally {
      await t.config.write("20-dr.yaml", DR);
    }
  });
});

describe("request bodies", () => {
  it("a body larger than the retry buffer streams through intact", async () => {
    await t.config.write("30-vs.yaml", vs(`    - route: [{ destination: { host: reviews, subset: v1 } }]\n`));
    const body = randomBytes(RETRY_BUFFER_BYTES * 3 + 17);
    const res = await eventually(async () => {
      const r = await httpViaSocks(CLIENT, { host: HOST, port: 9080, method: "POST", path: "/upload", body });
      expect(r.status).toBe(200);
      return r;
    });
    expect(res.json<{ pod: string; bodyBytes: number }>()).toMatchObject({
      pod: "reviews-v1",
      bodyBytes: body.length,
    });
  });
});

describe("mirroring", () => {
  it("sends a copy to the mirror with a -shadow Host, and answers from the primary", async () => {
    await t.config.write(
      "30-vs.yaml",
      vs(`    - route: [{ destination: { host: reviews, subset: v1 } }]
      mirror: { host: reviews, subset: v2 }
      mirrorPercentage: { value: 100 }
`),
    );
    // The route sends everything to v1: a request at v2 is the mirror's copy.
    const mirrored = () =>
      (t.mesh.echo("demo", "reviews-v2")?.requests ?? []).filter((r) => r.path === "/mirrored");
    await eventually(async () => {
      const before = mirrored().length;
      const res = await get("/mirrored");
      expect(res.json<{ pod: string }>().pod).toBe("reviews-v1");
      await eventually(() => expect(mirrored().length).toBeGreaterThan(before), 1_000);
    });
    expect(mirrored().at(-1)?.host).toMatch(/-shadow$/);
  });
});

describe("fault injection and timeouts", () => {
  it("delays by the fixed delay for the configured percentage", async () => {
    await t.config.write(
      "30-vs.yaml",
      vs(`    - fault: { delay: { fixedDelay: 300ms, percentage: { value: 100 } } }
      route: [{ destination: { host: reviews, subset: v1 } }]
`),
    );
    await eventually(async () => {
      const start = Date.now();
      expect((await get("/")).status).toBe(200);
      expect(Date.now() - start).toBeGreaterThanOrEqual(300);
    });
  });

  it("aborts with the configured status", async () => {
    await t.config.write(
      "30-vs.yaml",
      vs(`    - fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }
      route: [{ destination: { host: reviews, subset: v1 } }]
`),
    );
    await eventually(async () => expect((await get("/")).status).toBe(418));
  });

  it("aborts only the configured percentage of requests", async () => {
    await t.config.write(
      "30-vs.yaml",
      vs(`    - fault: { abort: { httpStatus: 503, percentage: { value: 50 } } }
      route: [{ destination: { host: reviews, subset: v1 } }]
`),
    );
    await eventually(async () => {
      let aborted = 0;
      for (let i = 0; i < 200; i++) if ((await get("/")).status === 503) aborted++;
      // 50% of 200 = 100; 4 standard deviations is ±28.
      expect(aborted).toBeGreaterThan(72);
      expect(aborted).toBeLessThan(128);
    }, 20_000);
  }, 60_000);

  it("answers 504 with flag UT when the upstream is slower than the route timeout", async () => {
    await t.config.write(
      "30-vs.yaml",
      vs(`    - timeout: 200ms
      route: [{ destination: { host: reviews, subset: v1 } }]
`),
    );
    await eventually(async () => expect((await get("/delay/1")).status).toBe(504));
    await eventually(() =>
      expect(
        logsWith(t.logs, { component: "access", path: "/delay/1", response_code: 504, response_flags: "UT" })
          .length,
      ).toBeGreaterThan(0),
    );
    expect((await get("/delay/0.01")).status).toBe(200);
    await t.config.remove("30-vs.yaml");
  });
});

describe("retries, circuit breaking, outlier detection", () => {
  it("retries a connect failure on another endpoint (default policy: 2 attempts)", async () => {
    for (let i = 0; i < 6; i++)
      expect((await get("/", {}, "flaky.demo.svc.cluster.local", 8000)).status).toBe(200);
  });

  it("overflows with 503 UO past maxConnections 1 + http1MaxPendingRequests 1", async () => {
    await t.config.write(
      "40-cb.yaml",
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-cb, namespace: demo }
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 1 }
      http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 }
  subsets:
    - { name: v1, labels: { version: v1 } }
`,
    );
    await t.config.remove("20-dr.yaml");
    await eventually(async () => {
      const results = await Promise.all(Array.from({ length: 6 }, () => get("/delay/0.3")));
      const codes = results.map((r) => r.status);
      expect(codes.filter((c) => c === 503).length).toBeGreaterThan(0);
      expect(codes.filter((c) => c === 200).length).toBeGreaterThan(0);
    });
    expect(
      logsWith(t.logs, { component: "access", response_code: 503, response_flags: "UO" }).length,
    ).toBeGreaterThan(0);
    await t.config.remove("40-cb.yaml");
  });

  it("ejects a failing endpoint and takes it back after the ejection time", async () => {
    await t.config.write(
      "50-outlier.yaml",
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: flaky, namespace: demo }
spec:
  host: flaky
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    outlierDetection: { consecutive5xxErrors: 1, interval: 100ms, baseEjectionTime: 1s, maxEjectionPercent: 100 }
`,
    );
    // Each attempt on flaky-dead shows up as a failed inbound connection at its ztunnel. Once it is
    // ejected, requests stop trying it at all.
    const dump = async () =>
      (await (await fetch("http://127.26.2.40:15000/config_dump")).json()) as {
        l7: { resources: { kind: string; name: string }[]; clusters: { outliers: Record<string, unknown> } };
      };
    // Wait until the waypoint has the DestinationRule; before that, default balancing applies.
    await eventually(async () =>
      expect(
        (await dump()).l7.resources.some((r) => r.kind === "DestinationRule" && r.name === "flaky"),
      ).toBe(true),
    );
    const deadAttempts = () =>
      logsWith(t.logs, { direction: "inbound", "dst.workload": "flaky-dead" }).length;
    await eventually(async () => {
      const before = deadAttempts();
      for (let i = 0; i < 4; i++)
        expect((await get("/", {}, "flaky.demo.svc.cluster.local", 8000)).status).toBe(200);
      expect(deadAttempts()).toBe(before);
    }, 10_000);
    expect(JSON.stringify((await dump()).l7.clusters.outliers)).toContain("flaky-dead");
    // After the ejection time it is tried again (and fails again).
    const before = deadAttempts();
    await eventually(async () => {
      expect((await get("/", {}, "flaky.demo.svc.cluster.local", 8000)).status).toBe(200);
      expect(deadAttempts()).toBeGreaterThan(before);
    }, 10_000);
    await t.config.remove("50-outlier.yaml");
  });
});

// Gateway API routes in a waypoint (GAMMA) on 127.34.x.y: HTTPRoutes and a GRPCRoute attached to
// Service reviews, applied by the namespace waypoint through the same route engine as
// VirtualServices (the control plane converts them). A canary split, a header match, a request
// header the app sees, a path redirect, a gRPC method match, and an HTTPRoute taking the host from
// a VirtualService.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docs, eventually, namespace, node, pod, service } from "../utils/index.js";
import { logsWith, startMesh, type TestMesh } from "../utils/mesh.js";
import { httpViaSocks } from "../utils/socks.js";

const CLIENT = "127.34.1.10";
const HOST = "reviews.demo.svc.cluster.local";

let t: TestMesh;

const app = (name: string, ip: string, labels: Record<string, string>) =>
  pod({
    name,
    namespace: "demo",
    node: "node-b",
    ip,
    sa: "reviews",
    labels,
    ports: [{ containerPort: 9080 }],
  });
const svc = (name: string, vip: string, selector: Record<string, string>) =>
  service({
    name,
    namespace: "demo",
    vip,
    selector,
    ports: [{ port: 9080, targetPort: 9080, name: "http" }],
  });

beforeAll(async () => {
  t = await startMesh({
    "00-mesh.yaml": docs(
      namespace("demo", { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" }),
      node("node-a", "127.34.1.1"),
      node("node-b", "127.34.2.1"),
      pod({ name: "client", namespace: "demo", node: "node-a", ip: CLIENT, sa: "client" }),
      app("reviews-v1", "127.34.2.10", { app: "reviews", version: "v1" }),
      app("reviews-v2", "127.34.2.11", { app: "reviews", version: "v2" }),
      svc("reviews", "127.34.100.1", { app: "reviews" }),
      svc("reviews-v1", "127.34.100.2", { app: "reviews", version: "v1" }),
      svc("reviews-v2", "127.34.100.3", { app: "reviews", version: "v2" }),
    ),
    "10-waypoint.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: demo }
spec:
  gatewayClassName: istio-waypoint
  addresses: [{ value: 127.34.2.40 }]
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
`,
  });
}, 30_000);
afterAll(async () => t?.stop());

function get(path: string, headers: Record<string, string> = {}) {
  return httpViaSocks(CLIENT, { host: HOST, port: 9080, path, headers });
}

const podOf = async (path = "/", headers: Record<string, string> = {}) =>
  (await get(path, headers)).json<{ pod: string }>().pod;

const route = (name: string, rules: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name}, namespace: demo }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews, port: 9080 }]
  rules:
${rules}`;

const canary = (v1: number, v2: number) =>
  route(
    "reviews-canary",
    `    - backendRefs:
        - { name: reviews-v1, port: 9080, weight: ${v1} }
        - { name: reviews-v2, port: 9080, weight: ${v2} }
`,
  );

describe("HTTPRoute in a waypoint", () => {
  it("sends everything to the one version with weight 100, then to the other", async () => {
    await t.config.write("30-route.yaml", canary(100, 0));
    await eventually(async () => {
      for (let i = 0; i < 6; i++) expect(await podOf()).toBe("reviews-v1");
    });
    await t.config.write("30-route.yaml", canary(0, 100));
    await eventually(async () => {
      for (let i = 0; i < 6; i++) expect(await podOf()).toBe("reviews-v2");
    });
    // The access log names the HTTPRoute's rule, as Istio's route name does.
    expect(
      logsWith(t.logs, { component: "access", route_name: "demo.reviews-canary.0" }).length,
    ).toBeGreaterThan(0);
  });

  it("splits 90/10 between two versions", async () => {
    await t.config.write("30-route.yaml", canary(90, 10));
    // Until the new weights arrive the old 0/100 route answers v2 only: wait for a v1.
    await eventually(async () => expect(await podOf()).toBe("reviews-v1"));
    const counts = { "reviews-v1": 0, "reviews-v2": 0 } as Record<string, number>;
    for (let i = 0; i < 200; i++) counts[await podOf()]!++;
    // Binomial(200, 0.1): mean 20, sd ~4.2; these bounds fail about once in a million runs.
    expect(counts["reviews-v2"]).toBeGreaterThanOrEqual(3);
    expect(counts["reviews-v2"]).toBeLessThanOrEqual(50);
    expect(counts["reviews-v1"]! + counts["reviews-v2"]!).toBe(200);
  });

  it("routes by header, and the app sees a header set by RequestHeaderModifier", async () => {
    await t.config.write(
      "30-route.yaml",
      route(
        "reviews-by-user",
        `    - matches: [{ headers: [{ name: end-user, value: jason }] }]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{ name: x-route, value: jason }]
            remove: [x-drop-me]
      backendRefs: [{ name: reviews-v2, port: 9080 }]
    - backendRefs: [{ name: reviews-v1, port: 9080 }]
`,
      ),
    );
    await eventually(async () => {
      for (let i = 0; i < 4; i++) {
        expect(await podOf("/", { "end-user": "jason" })).toBe("reviews-v2");
        expect(await podOf("/")).toBe("reviews-v1");
      }
    });
    const seen = (await get("/", { "end-user": "jason", "x-drop-me": "1" })).json<{
      headers: Record<string, string>;
    }>().headers;
    expect(seen["x-route"]).toBe("jason");
    expect(seen["x-drop-me"]).toBeUndefined();
  });

  it("redirects a path with RequestRedirect and rewrites a prefix with URLRewrite", async () => {
    await t.config.write(
      "30-route.yaml",
      route(
        "reviews-paths",
        `    - matches: [{ path: { type: Exact, value: /old } }]
      filters:
        - type: RequestRedirect
          requestRedirect: { path: { type: ReplaceFullPath, replaceFullPath: /new }, statusCode: 301 }
    - matches: [{ path: { type: PathPrefix, value: /api } }]
      filters:
        - type: URLRewrite
          urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /v2 } }
      backendRefs: [{ name: reviews-v1, port: 9080 }]
    - backendRefs: [{ name: reviews-v1, port: 9080 }]
`,
      ),
    );
    await eventually(async () => {
      const r = await get("/old");
      expect(r.status).toBe(301);
      expect(r.headers.location).toMatch(/\/new$/);
    });
    expect((await get("/api/items?x=1")).json<{ path: string }>().path).toBe("/v2/items?x=1");
    // PathPrefix matches whole segments: /apiary is not under /api.
    expect((await get("/apiary")).json<{ path: string }>().path).toBe("/apiary");
  });

  it("routes a gRPC method with a GRPCRoute", async () => {
    await t.config.remove("30-route.yaml");
    await t.config.write(
      "31-grpc.yaml",
      `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: reviews-grpc, namespace: demo }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews }]
  rules:
    - matches: [{ method: { service: reviews.Reviews, method: Get } }]
      backendRefs: [{ name: reviews-v2, port: 9080 }]
    - backendRefs: [{ name: reviews-v1, port: 9080 }]
`,
    );
    // The path a gRPC client sends for reviews.Reviews/Get; the waypoint routes it like any path.
    await eventually(async () => {
      expect(await podOf("/reviews.Reviews/Get", { "content-type": "application/grpc" })).toBe("reviews-v2");
      expect(await podOf("/reviews.Reviews/List", { "content-type": "application/grpc" })).toBe("reviews-v1");
    });
    await t.config.remove("31-grpc.yaml");
  });

  it("takes the host from a VirtualService for the same Service, with a warning naming both", async () => {
    await t.config.write(
      "32-vs.yaml",
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-vs, namespace: demo }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews-v1 } }] }]
`,
    );
    await eventually(async () => {
      for (let i = 0; i < 4; i++) expect(await podOf()).toBe("reviews-v1");
    });
    await t.config.write("30-route.yaml", canary(0, 100));
    await eventually(async () => {
      for (let i = 0; i < 4; i++) expect(await podOf()).toBe("reviews-v2");
    });
    expect(
      t.logs.some(
        (l) =>
          String(l.msg).includes("VirtualService demo/reviews-vs and HTTPRoute demo/reviews-canary") &&
          String(l.msg).includes("the HTTPRoute wins"),
      ),
    ).toBe(true);
  });
});

import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { type TranslateResult, translate } from "./index.js";

type Json = Record<string, unknown>;

const NS = "shop";
const ns: KubeObject = {
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name: NS, labels: { "istio.io/dataplane-mode": "ambient" } },
};
const waypoint: KubeObject = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name: "wp", namespace: NS },
  spec: { gatewayClassName: "istio-waypoint", listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }] },
};

let ip = 10;
function svc(name: string, opts: { waypoint?: boolean } = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace: NS,
      labels: opts.waypoint === false ? {} : { "istio.io/use-waypoint": "wp" },
    },
    spec: { clusterIP: `10.96.0.${ip++}`, selector: { app: name }, ports: [{ name: "http", port: 9080 }] },
  };
}

function httpRoute(name: string, spec: Json, created?: string): KubeObject {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name, namespace: NS, ...(created ? { creationTimestamp: created } : {}) },
    spec: { parentRefs: [{ group: "", kind: "Service", name: "reviews", port: 9080 }], ...spec },
  };
}

const backend = (name: string, weight?: number) => ({
  name,
  port: 9080,
  ...(weight !== undefined ? { weight } : {}),
});
const base = [
  ns,
  waypoint,
  svc("reviews"),
  svc("reviews-v1", { waypoint: false }),
  svc("reviews-v2", { waypoint: false }),
];
const HOST = "reviews.shop.svc.cluster.local";

function generated(objects: KubeObject[]) {
  const result = translate(objects);
  const vs = result.waypointConfig.virtualServices.filter((v) => Array.isArray((v.spec as Json).hosts));
  const ours = vs.find((v) => v.metadata.annotations?.["ambient.io/generated-from"]);
  return { result, vs: ours, http: ((ours?.spec as Json | undefined)?.http ?? []) as Json[] };
}

describe("HTTPRoute → VirtualService", () => {
  it("turns weighted backendRefs into a weighted route on the Service host, named after the route", () => {
    const { vs, http } = generated([
      ...base,
      httpRoute("canary", {
        rules: [{ backendRefs: [backend("reviews-v1", 90), backend("reviews-v2", 10)] }],
      }),
    ]);
    expect(vs?.metadata.name).toBe("httproute.canary@reviews");
    expect((vs!.spec as Json).hosts).toEqual([HOST]);
    expect(http).toEqual([
      {
        name: "shop.canary.0",
        match: [{ uri: { prefix: "/" }, port: 9080 }],
        route: [
          { destination: { host: "reviews-v1.shop.svc.cluster.local", port: { number: 9080 } }, weight: 90 },
          { destination: { host: "reviews-v2.shop.svc.cluster.local", port: { number: 9080 } }, weight: 10 },
        ],
      },
    ]);
  });

  it("drops zero-weight backends and answers 500 when none is left", () => {
    const { http } = generated([
      ...base,
      httpRoute("r", { rules: [{ backendRefs: [backend("reviews-v1", 0), backend("reviews-v2", 100)] }] }),
    ]);
    expect((http[0]!.route as Json[]).map((r) => (r.destination as Json).host)).toEqual([
      "reviews-v2.shop.svc.cluster.local",
    ]);
    const none = generated([
      ...base,
      httpRoute("r", { rules: [{ backendRefs: [backend("reviews-v1", 0)] }] }),
    ]);
    expect(none.http[0]!.directResponse).toEqual({ status: 500 });
  });

  it("converts path, header, query and method matches; a PathPrefix matches whole segments", () => {
    const { http } = generated([
      ...base,
      httpRoute("m", {
        parentRefs: [{ group: "", kind: "Service", name: "reviews" }],
        rules: [
          {
            matches: [
              {
                path: { type: "PathPrefix", value: "/api/" },
                headers: [{ name: "X-User", value: "jason" }],
                queryParams: [{ type: "RegularExpression", name: "v", value: "[0-9]+" }],
                method: "GET",
              },
            ],
            backendRefs: [backend("reviews-v2")],
          },
          { matches: [{ path: { type: "Exact", value: "/health" } }], backendRefs: [backend("reviews-v1")] },
          {
            matches: [{ path: { type: "RegularExpression", value: "/r/[a-z]+" } }],
            backendRefs: [backend("reviews-v1")],
          },
        ],
      }),
    ]);
    // Sorted by Gateway API precedence: exact paths first (longest first), then regex, then prefix.
    expect(http.map((h) => (h.match as Json[])[0])).toEqual([
      { uri: { exact: "/health" } },
      {
        uri: { exact: "/api" },
        headers: { "x-user": { exact: "jason" } },
        queryParams: { v: { regex: "[0-9]+" } },
        method: { exact: "GET" },
      },
      { uri: { regex: "/r/[a-z]+" } },
      {
        uri: { prefix: "/api/" },
        headers: { "x-user": { exact: "jason" } },
        queryParams: { v: { regex: "[0-9]+" } },
        method: { exact: "GET" },
      },
    ]);
  });

  it("orders rules across routes by precedence, then the older route first", () => {
    const { vs, http } = generated([
      ...base,
      httpRoute(
        "b-newer",
        { rules: [{ matches: [{ path: { value: "/" } }], backendRefs: [backend("reviews-v2")] }] },
        "2026-02-01T00:00:00Z",
      ),
      httpRoute("a-older", { rules: [{ backendRefs: [backend("reviews-v1")] }] }, "2026-01-01T00:00:00Z"),
      httpRoute("c", {
        rules: [{ matches: [{ path: { value: "/long/prefix" } }], backendRefs: [backend("reviews-v1")] }],
      }),
    ]);
    expect(vs?.metadata.name).toBe("httproute.a-older+2@reviews");
    expect(http.map((h) => h.name)).toEqual(["shop.c.0", "shop.c.0", "shop.a-older.0", "shop.b-newer.0"]);
  });

  it("maps each filter", () => {
    const { http } = generated([
      ...base,
      httpRoute("f", {
        rules: [
          {
            matches: [{ path: { type: "PathPrefix", value: "/old" } }],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: {
                  set: [{ name: "x-a", value: "1" }],
                  add: [{ name: "x-b", value: "2" }],
                  remove: ["x-c"],
                },
              },
              {
                type: "ResponseHeaderModifier",
                responseHeaderModifier: { set: [{ name: "x-r", value: "3" }] },
              },
              {
                type: "URLRewrite",
                urlRewrite: {
                  hostname: "new.example",
                  path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/new" },
                },
              },
              { type: "RequestMirror", requestMirror: { backendRef: backend("reviews-v2"), percent: 25 } },
            ],
            backendRefs: [backend("reviews-v1")],
            timeouts: { request: "10s", backendRequest: "2s" },
          },
          {
            matches: [{ path: { type: "Exact", value: "/moved" } }],
            filters: [
              {
                type: "RequestRedirect",
                requestRedirect: {
                  path: { type: "ReplaceFullPath", replaceFullPath: "/here" },
                  statusCode: 301,
                },
              },
            ],
          },
          {
            matches: [{ path: { type: "Exact", value: "/full" } }],
            filters: [
              {
                type: "URLRewrite",
                urlRewrite: { path: { type: "ReplaceFullPath", replaceFullPath: "/x" } },
              },
            ],
            backendRefs: [backend("reviews-v1")],
          },
        ],
      }),
    ]);
    const byUri = new Map(http.map((h) => [JSON.stringify(((h.match as Json[])[0] as Json).uri), h]));
    const old = byUri.get(JSON.stringify({ exact: "/old" }))!;
    expect(old.headers).toEqual({
      request: { set: { "x-a": "1" }, add: { "x-b": "2" }, remove: ["x-c"] },
      response: { set: { "x-r": "3" } },
    });
    expect(old.rewrite).toEqual({ authority: "new.example", uri: "/new" });
    expect(byUri.get(JSON.stringify({ prefix: "/old/" }))!.rewrite).toEqual({
      authority: "new.example",
      uri: "/new/",
    });
    expect(old.mirrors).toEqual([
      {
        destination: { host: "reviews-v2.shop.svc.cluster.local", port: { number: 9080 } },
        percentage: { value: 25 },
      },
    ]);
    expect(old.timeout).toBe("10s");
    expect(old.retries).toEqual({ perTryTimeout: "2s" });
    expect(byUri.get(JSON.stringify({ exact: "/moved" }))!.redirect).toEqual({
      redirectCode: 301,
      uri: "/here",
      derivePort: "FROM_REQUEST_PORT",
    });
    expect(byUri.get(JSON.stringify({ exact: "/full" }))!.rewrite).toEqual({
      uriRegexRewrite: { match: "^/.*$", rewrite: "/x" },
    });
  });

  it("maps retry, CORS, a mirror fraction and a backend's own header filter", () => {
    const { http } = generated([
      ...base,
      httpRoute("more", {
        rules: [
          {
            filters: [
              {
                type: "CORS",
                cors: {
                  allowOrigins: ["https://*.example.com", "https://app.test"],
                  allowMethods: ["GET"],
                  maxAge: 60,
                },
              },
              {
                type: "RequestMirror",
                requestMirror: {
                  backendRef: backend("reviews-v2"),
                  fraction: { numerator: 1, denominator: 4 },
                },
              },
            ],
            backendRefs: [
              {
                ...backend("reviews-v1"),
                filters: [
                  {
                    type: "RequestHeaderModifier",
                    requestHeaderModifier: { add: [{ name: "x-v", value: "1" }] },
                  },
                ],
              },
            ],
            retry: { attempts: 3, codes: [502, 503] },
          },
        ],
      }),
    ]);
    expect(http[0]!.retries).toEqual({ attempts: 3, retryOn: "connect-failure,refused-stream,502,503" });
    expect(http[0]!.corsPolicy).toEqual({
      allowOrigins: [{ regex: "https://.*\\.example\\.com" }, { exact: "https://app.test" }],
      allowMethods: ["GET"],
      maxAge: "60s",
    });
    expect((http[0]!.mirrors as Json[])[0]!.percentage).toEqual({ value: 25 });
    expect((http[0]!.route as Json[])[0]!.headers).toEqual({ request: { add: { "x-v": "1" } } });
  });

  it("turns GRPCRoute method matches into paths", () => {
    const grpc: KubeObject = {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "GRPCRoute",
      metadata: { name: "g", namespace: NS },
      spec: {
        parentRefs: [{ group: "", kind: "Service", name: "reviews" }],
        rules: [
          {
            matches: [{ method: { service: "pkg.Svc", method: "Get" } }],
            backendRefs: [backend("reviews-v2")],
          },
          {
            matches: [{ method: { service: "pkg.Svc" } }, { method: { method: "List" } }],
            backendRefs: [backend("reviews-v1")],
          },
        ],
      },
    };
    const { http } = generated([...base, grpc]);
    expect(http.map((h) => ((h.match as Json[])[0] as Json).uri)).toEqual([
      { exact: "/pkg.Svc/Get" },
      { regex: "/[^/]+/List" },
      { prefix: "/pkg.Svc/" },
    ]);
  });
});

describe("VirtualService and HTTPRoute on the same host", () => {
  it("lets the HTTPRoute win and warns naming both", () => {
    const vs: KubeObject = {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "reviews-vs", namespace: NS },
      spec: {
        hosts: ["reviews", "other.example.com"],
        http: [{ route: [{ destination: { host: "reviews-v1" } }] }],
      },
    };
    const { result } = generated([
      ...base,
      vs,
      httpRoute("canary", { rules: [{ backendRefs: [backend("reviews-v2")] }] }),
    ]);
    const user = result.waypointConfig.virtualServices.find((v) => v.metadata.name === "reviews-vs");
    expect((user!.spec as Json).hosts).toEqual(["other.example.com"]);
    expect(result.warnings).toContainEqual({
      object: "networking.istio.io/VirtualService/shop/reviews-vs",
      message: `VirtualService shop/reviews-vs and HTTPRoute shop/canary both route host ${HOST}; the HTTPRoute wins and the VirtualService is ignored for that host (Istio does not support mixing the two on one service)`,
    });
  });
});

describe("route status", () => {
  it("accepts a route on a Service with a waypoint and resolves its backends", () => {
    const { result } = generated([
      ...base,
      httpRoute("canary", { rules: [{ backendRefs: [backend("reviews-v1")] }] }),
    ]);
    expect(result.routeStatus.get("gateway.networking.k8s.io/HTTPRoute/shop/canary")).toEqual([
      {
        parentRef: { group: "", kind: "Service", name: "reviews", port: 9080 },
        accepted: { status: "True", reason: "Accepted", message: "Route was valid" },
        resolvedRefs: { status: "True", reason: "ResolvedRefs", message: "All references resolved" },
      },
    ]);
  });

  it("refuses a Service without a waypoint, and names a missing backend", () => {
    const route = httpRoute("r", {
      parentRefs: [{ group: "", kind: "Service", name: "reviews-v1" }],
      rules: [{ backendRefs: [backend("nope")] }],
    });
    const { result, vs } = generated([...base, route]);
    expect(vs).toBeUndefined();
    const [parent] = result.routeStatus.get("gateway.networking.k8s.io/HTTPRoute/shop/r")!;
    expect(parent!.accepted.status).toBe("False");
    expect(parent!.accepted.reason).toBe("NoMatchingParent");
    expect(parent!.accepted.message).toContain("the Service has no waypoint");
    expect(parent!.resolvedRefs).toEqual({
      status: "False",
      reason: "BackendNotFound",
      message: "backend Service shop/nope not found",
    });
    // Local mode has no status to write: the same is logged.
    const warnings = result.warnings.filter((w) => w.object === "gateway.networking.k8s.io/HTTPRoute/shop/r");
    expect(warnings.map((w) => w.message)).toEqual([
      expect.stringContaining("not applied to Service reviews-v1: the Service has no waypoint"),
      "backend Service shop/nope not found",
    ]);
  });

  it("applies a route attached to the waypoint Gateway to the Services it serves", () => {
    const route = httpRoute("all", {
      parentRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "wp" }],
      rules: [{ backendRefs: [backend("reviews-v1")] }],
    });
    const { vs, result } = generated([...base, route]);
    expect((vs!.spec as Json).hosts).toEqual([HOST]);
    expect(result.routeStatus.get("gateway.networking.k8s.io/HTTPRoute/shop/all")?.[0]?.accepted.status).toBe(
      "True",
    );
  });
});

describe("HTTPRoute on a class-istio (ingress) Gateway", () => {
  const ingress = (name: string, namespace: string, allowedFrom?: string): KubeObject => ({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name, namespace },
    spec: {
      gatewayClassName: "istio",
      listeners: [
        {
          name: "http",
          port: 80,
          protocol: "HTTP",
          ...(allowedFrom ? { allowedRoutes: { namespaces: { from: allowedFrom } } } : {}),
        },
        { name: "https", port: 443, protocol: "HTTPS", tls: { certificateRefs: [{ name: "cert" }] } },
      ],
    },
  });
  const onGateway = (name: string, parentRefs: Json[], extra: Json = {}, namespace = NS): KubeObject => ({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name, namespace },
    spec: {
      parentRefs,
      rules: [
        {
          matches: [{ path: { type: "PathPrefix", value: "/api" } }],
          backendRefs: [{ name: "reviews-v1", namespace: NS, port: 9080 }],
        },
      ],
      ...extra,
    },
  });
  const gatewayRef = (name: string, extra: Json = {}) => ({
    group: "gateway.networking.k8s.io",
    kind: "Gateway",
    name,
    ...extra,
  });
  const bound = (result: TranslateResult) =>
    result.waypointConfig.virtualServices.filter(
      (v) => ((v.spec as Json).gateways as string[] | undefined)?.length,
    );
  const V1 = {
    destination: { host: "reviews-v1.shop.svc.cluster.local", port: { number: 9080 } },
    weight: 1,
  };

  it("becomes a VirtualService bound to the Gateway, its rules pinned to the sectionName's port; Accepted", () => {
    const route = onGateway("store", [gatewayRef("public", { sectionName: "http" })], {
      hostnames: ["shop.example.com"],
    });
    const result = translate([...base, ingress("public", NS), route]);
    expect(bound(result)).toEqual([
      {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: {
          name: "httproute.store@gateway.public",
          namespace: NS,
          annotations: { "ambient.io/generated-from": "HTTPRoute/shop/store" },
        },
        spec: {
          hosts: ["shop.example.com"],
          gateways: ["shop/public"],
          http: [
            { name: "shop.store.0", match: [{ uri: { exact: "/api" }, port: 80 }], route: [V1] },
            { name: "shop.store.0", match: [{ uri: { prefix: "/api/" }, port: 80 }], route: [V1] },
          ],
        },
      },
    ]);
    expect(result.routeStatus.get("gateway.networking.k8s.io/HTTPRoute/shop/store")).toEqual([
      {
        parentRef: gatewayRef("public", { sectionName: "http" }),
        accepted: { status: "True", reason: "Accepted", message: "Route was valid" },
        resolvedRefs: { status: "True", reason: "ResolvedRefs", message: "All references resolved" },
      },
    ]);
    // The mesh's Service VirtualServices are untouched: this route is not a GAMMA route.
    expect(result.waypointConfig.virtualServices).toHaveLength(1);
  });

  it("without hostnames or sectionName: any host, every listener's port", () => {
    const result = translate([...base, ingress("public", NS), onGateway("any", [gatewayRef("public")])]);
    const [vs] = bound(result);
    expect((vs!.spec as Json).hosts).toEqual(["*"]);
    expect(((vs!.spec as Json).http as Json[]).map((h) => (h.match as Json[])[0]!.port)).toEqual([
      undefined,
      undefined,
    ]);
  });

  it("keeps each listener's rules when one route names two listeners of the Gateway", () => {
    const route = onGateway("both", [
      gatewayRef("public", { sectionName: "http" }),
      gatewayRef("public", { sectionName: "https" }),
    ]);
    const result = translate([...base, ingress("public", NS), route]);
    const vs = bound(result);
    expect(vs.map((v) => v.metadata.name)).toEqual(["httproute.both@gateway.public"]);
    const ports = ((vs[0]!.spec as Json).http as Json[]).map((h) => (h.match as Json[])[0]!.port);
    expect(ports.sort()).toEqual([443, 443, 80, 80]);
    expect(
      result.routeStatus.get("gateway.networking.k8s.io/HTTPRoute/shop/both")?.map((p) => p.accepted.status),
    ).toEqual(["True", "True"]);
  });

  it("refuses a route from another namespace when the listeners allow Same (the default), accepts it with All", () => {
    const ref = gatewayRef("public", { namespace: "edge", sectionName: "http" });
    const route = onGateway("foreign", [ref], {}, NS);
    const same = translate([...base, ingress("public", "edge"), route]);
    expect(bound(same)).toEqual([]);
    const [parent] = same.routeStatus.get("gateway.networking.k8s.io/HTTPRoute/shop/foreign")!;
    expect(parent!.accepted).toEqual({
      status: "False",
      reason: "NotAllowedByListeners",
      message:
        "the listeners of Gateway edge/public allow routes from their own namespace only (allowedRoutes.namespaces.from)",
    });
    expect(same.warnings).toContainEqual({
      object: "gateway.networking.k8s.io/HTTPRoute/shop/foreign",
      message: expect.stringContaining("not applied to Gateway public"),
    });

    const all = translate([...base, ingress("public", "edge", "All"), route]);
    expect(bound(all).map((v) => [v.metadata.namespace, v.metadata.name, (v.spec as Json).gateways])).toEqual(
      [[NS, "httproute.foreign@gateway.public.edge", ["edge/public"]]],
    );
    expect(
      all.routeStatus.get("gateway.networking.k8s.io/HTTPRoute/shop/foreign")?.[0]?.accepted.status,
    ).toBe("True");
  });

  it("refuses a sectionName the Gateway has no listener for", () => {
    const route = onGateway("r", [gatewayRef("public", { sectionName: "grpc" })]);
    const result = translate([...base, ingress("public", NS), route]);
    expect(bound(result)).toEqual([]);
    expect(result.routeStatus.get("gateway.networking.k8s.io/HTTPRoute/shop/r")?.[0]?.accepted).toMatchObject(
      {
        status: "False",
        reason: "NotAllowedByListeners",
        message: "Gateway shop/public has no listener grpc",
      },
    );
  });

  it("keeps a gateway-bound VirtualService naming a host a GAMMA route owns", () => {
    const gatewayVs: KubeObject = {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "edge", namespace: NS },
      spec: {
        hosts: ["reviews"],
        gateways: ["shop/public"],
        http: [{ route: [{ destination: { host: "reviews-v1" } }] }],
      },
    };
    const meshVs: KubeObject = {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "mesh-too", namespace: NS },
      spec: {
        hosts: ["reviews"],
        gateways: ["shop/public", "mesh"],
        http: [{ route: [{ destination: { host: "reviews-v1" } }] }],
      },
    };
    const result = translate([
      ...base,
      gatewayVs,
      meshVs,
      httpRoute("canary", { rules: [{ backendRefs: [backend("reviews-v2")] }] }),
    ]);
    const names = result.waypointConfig.virtualServices.map((v) => v.metadata.name);
    expect(names).toContain("edge");
    expect(result.waypointConfig.virtualServices.find((v) => v.metadata.name === "edge")).toBe(gatewayVs);
    // One that is also bound to the mesh still yields the host to the HTTPRoute.
    expect(names).not.toContain("mesh-too");
    expect(result.warnings.map((w) => w.object)).not.toContain(
      "networking.istio.io/VirtualService/shop/edge",
    );
    expect(result.warnings.map((w) => w.object)).toContain(
      "networking.istio.io/VirtualService/shop/mesh-too",
    );
  });
});

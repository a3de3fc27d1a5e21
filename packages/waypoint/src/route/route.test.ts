import { describe, expect, it } from "vitest";
import { compileRoutes } from "./compile.js";
import type { ForwardDecision, RouteDecision } from "./decision.js";
import { applyHeaderOps } from "./headers.js";
import type { HttpRoute } from "./spec.js";
import { type RequestOverrides, request, seededRandom, virtualService } from "./testing.js";

function routeWith(
  rule: HttpRoute,
  req: RequestOverrides = {},
  random: () => number = () => 0,
): RouteDecision {
  return compileRoutes([virtualService("r", { hosts: ["reviews"], http: [rule] })]).route(
    request(req),
    random,
  );
}

function forward(rule: HttpRoute, req: RequestOverrides = {}, random?: () => number): ForwardDecision {
  const d = routeWith(rule, req, random);
  if (d.kind !== "route") throw new Error(`expected a route decision, got ${d.kind}`);
  return d;
}

describe("weighted destinations", () => {
  it("splits 90/10 as w/sum(w) over 2,000 seeded picks", () => {
    const table = compileRoutes([
      virtualService("r", {
        hosts: ["reviews"],
        http: [
          {
            route: [
              { destination: { host: "reviews", subset: "v1" }, weight: 90 },
              { destination: { host: "reviews", subset: "v2" }, weight: 10 },
            ],
          },
        ],
      }),
    ]);
    const random = seededRandom(42);
    const counts = [0, 0];
    for (let i = 0; i < 2000; i++) {
      const d = table.route(request(), random);
      if (d.kind !== "route") throw new Error(d.kind);
      counts[d.weightIndex]!++;
      expect(d.destination.subset).toBe(d.weightIndex === 0 ? "v1" : "v2");
    }
    // Binomial(2000, 0.1): sd ≈ 13.4, so ±60 is beyond 4 sd.
    expect(counts[1]).toBeGreaterThan(200 - 60);
    expect(counts[1]).toBeLessThan(200 + 60);
  });

  it.each<[string, HttpRoute["route"], number, number]>([
    ["single destination without a weight", [{ destination: { host: "reviews" } }], 0.99, 0],
    ["single destination ignores its weight", [{ destination: { host: "reviews" }, weight: 5 }], 0.5, 0],
    [
      "no weights split evenly (low)",
      [{ destination: { host: "a" } }, { destination: { host: "b" } }],
      0.49,
      0,
    ],
    [
      "no weights split evenly (high)",
      [{ destination: { host: "a" } }, { destination: { host: "b" } }],
      0.5,
      1,
    ],
    [
      "weights need not sum to 100",
      [
        { destination: { host: "a" }, weight: 1 },
        { destination: { host: "b" }, weight: 3 },
      ],
      0.26,
      1,
    ],
    [
      "a zero weight is never picked",
      [
        { destination: { host: "a" }, weight: 0 },
        { destination: { host: "b" }, weight: 50 },
      ],
      0,
      1,
    ],
    [
      "an absent weight beside weighted ones is zero",
      [{ destination: { host: "a" }, weight: 100 }, { destination: { host: "b" } }],
      0.999,
      0,
    ],
  ])("%s", (_name, destinations, r, expected) => {
    expect(forward({ route: destinations }, {}, () => r).weightIndex).toBe(expected);
  });
});

describe("rewrite", () => {
  const to = [{ destination: { host: "reviews" } }];
  it.each<[string, HttpRoute, string, string]>([
    [
      "prefix swapped, rest and query kept",
      { match: [{ uri: { prefix: "/ratings" } }], rewrite: { uri: "/v1/bookRatings" }, route: to },
      "/ratings/7?x=1",
      "/v1/bookRatings/7?x=1",
    ],
    [
      "case-insensitive prefix swaps its length",
      { match: [{ uri: { prefix: "/API" }, ignoreUriCase: true }], rewrite: { uri: "/v2" }, route: to },
      "/api/x",
      "/v2/x",
    ],
    [
      "exact match replaces the whole path",
      { match: [{ uri: { exact: "/old" } }], rewrite: { uri: "/new" }, route: to },
      "/old?q=1",
      "/new?q=1",
    ],
    [
      "regex match replaces the whole path",
      { match: [{ uri: { regex: "/v[0-9]+/.*" } }], rewrite: { uri: "/latest" }, route: to },
      "/v3/a/b",
      "/latest",
    ],
    // Without a uri match Istio matches prefix "/", so only the leading slash is swapped.
    ["no uri match swaps the leading slash", { rewrite: { uri: "/base/" }, route: to }, "/x?y", "/base/x?y"],
    [
      "regex rewrite with captures",
      {
        rewrite: { uriRegexRewrite: { match: "^/service/([^/]+)(/.*)$", rewrite: "\\2/instance/\\1" } },
        route: to,
      },
      "/service/foo/v1/api?k=v",
      "/v1/api/instance/foo?k=v",
    ],
    [
      "regex rewrite replaces every match",
      { rewrite: { uriRegexRewrite: { match: "one", rewrite: "two" } }, route: to },
      "/xxx/one/yyy/one/zzz",
      "/xxx/two/yyy/two/zzz",
    ],
  ])("%s", (_name, rule, path, expected) => {
    expect(forward(rule, { path }).rewrite?.path).toBe(expected);
  });

  it("rewrite.authority beats a host header op, which beats the destination's", () => {
    const dest = (authority?: string) => ({
      destination: { host: "reviews" },
      headers: authority ? { request: { set: { host: authority } } } : undefined,
    });
    expect(
      forward({
        rewrite: { authority: "a.example" },
        headers: { request: { set: { Host: "b" } } },
        route: [dest("c")],
      }).rewrite?.authority,
    ).toBe("a.example");
    expect(
      forward({ headers: { request: { add: { host: "b" } } }, route: [dest("c")] }).rewrite?.authority,
    ).toBe("b");
    expect(forward({ route: [dest("c")] }).rewrite).toEqual({ authority: "c" });
    expect(forward({ route: [dest()] }).rewrite).toBeUndefined();
  });
});

describe("redirect", () => {
  const redirect = (r: HttpRoute["redirect"], req: RequestOverrides = {}) => {
    const d = routeWith(
      { redirect: r },
      { authority: "reviews:9080", path: "/v1/getProductRatings?id=3", ...req },
    );
    if (d.kind !== "redirect") throw new Error(d.kind);
    return `${d.status} ${d.location}`;
  };
  it.each<[string, HttpRoute["redirect"], RequestOverrides, string]>([
    [
      "uri and authority, query kept, default 301",
      { uri: "/v1/bookRatings", authority: "newratings.default.svc.cluster.local" },
      {},
      "301 http://newratings.default.svc.cluster.local/v1/bookRatings?id=3",
    ],
    ["uri keeps the request's host and port", { uri: "/new" }, {}, "301 http://reviews:9080/new?id=3"],
    [
      "a uri with its own query replaces the query",
      { uri: "/new?x=1" },
      {},
      "301 http://reviews:9080/new?x=1",
    ],
    ["redirectCode", { uri: "/new", redirectCode: 308 }, {}, "308 http://reviews:9080/new?id=3"],
    [
      "explicit port replaces the Host's",
      { port: 8443 },
      {},
      "301 http://reviews:8443/v1/getProductRatings?id=3",
    ],
    [
      "scheme https with port 443 leaves it out",
      { scheme: "https", port: 443 },
      { authority: "reviews" },
      "301 https://reviews/v1/getProductRatings?id=3",
    ],
    [
      "scheme change drops the old default port",
      { scheme: "https" },
      { authority: "reviews:80" },
      "301 https://reviews/v1/getProductRatings?id=3",
    ],
    [
      "scheme change keeps a non-default port",
      { scheme: "https" },
      {},
      "301 https://reviews:9080/v1/getProductRatings?id=3",
    ],
    [
      "derivePort FROM_REQUEST_PORT uses the dialled port",
      { derivePort: "FROM_REQUEST_PORT", authority: "other" },
      { port: 9081 },
      "301 http://other:9081/v1/getProductRatings?id=3",
    ],
    [
      "derivePort FROM_PROTOCOL_DEFAULT adds no port",
      { derivePort: "FROM_PROTOCOL_DEFAULT", authority: "other" },
      {},
      "301 http://other/v1/getProductRatings?id=3",
    ],
    [
      "port 80 over http is left out",
      { port: 80, authority: "other" },
      {},
      "301 http://other/v1/getProductRatings?id=3",
    ],
    [
      "authority alone keeps the path",
      { authority: "other:1234" },
      {},
      "301 http://other:1234/v1/getProductRatings?id=3",
    ],
  ])("%s", (_name, r, req, expected) => {
    expect(redirect(r, req)).toBe(expected);
  });
});

describe("directResponse", () => {
  it.each<[string, HttpRoute["directResponse"], { status: number; body?: string }]>([
    ["string body", { status: 503, body: { string: "unavailable" } }, { status: 503, body: "unavailable" }],
    [
      "bytes body (base64)",
      { status: 200, body: { bytes: Buffer.from('{"ok":true}').toString("base64") } },
      { status: 200, body: '{"ok":true}' },
    ],
    ["no body", { status: 204 }, { status: 204 }],
  ])("%s", (_name, directResponse, expected) => {
    const d = routeWith({ directResponse, headers: { response: { set: { "x-served-by": "waypoint" } } } });
    expect(d).toMatchObject({
      kind: "direct",
      ...expected,
      responseHeaders: { set: { "x-served-by": "waypoint" } },
    });
    if (expected.body === undefined) expect(d).not.toHaveProperty("body");
  });
});

describe("header operations", () => {
  it("applies route ops and then the chosen destination's ops", () => {
    const d = forward({
      headers: {
        request: {
          set: { "X-Env": "route", "x-route": "1" },
          add: { "x-trace": "route" },
          remove: ["x-drop", "x-keep"],
        },
        response: { remove: ["server"], set: { "x-resp": "route" } },
      },
      route: [
        {
          destination: { host: "reviews" },
          headers: {
            request: { set: { "x-env": "dest", "x-keep": "back" }, add: { "x-trace": "dest" } },
            response: { set: { "x-resp": "dest" } },
          },
        },
      ],
    });
    const upstream = applyHeaderOps(
      { "x-env": "client", "x-trace": "client", "x-drop": "1", "x-keep": "1" },
      d.requestHeaders,
    );
    expect(upstream).toEqual({
      "x-env": "dest",
      "x-route": "1",
      "x-trace": "client, route, dest",
      "x-keep": "back",
    });
    expect(applyHeaderOps({ server: "envoy", "x-resp": "app" }, d.responseHeaders)).toEqual({
      "x-resp": "dest",
    });
  });

  it("keeps each weighted destination's ops with that destination", () => {
    const rule: HttpRoute = {
      route: [
        {
          destination: { host: "reviews", subset: "v1" },
          weight: 50,
          headers: { request: { set: { "x-v": "1" } } },
        },
        {
          destination: { host: "reviews", subset: "v2" },
          weight: 50,
          headers: { request: { set: { "x-v": "2" } } },
        },
      ],
    };
    expect(forward(rule, {}, () => 0.1).requestHeaders).toEqual({ set: { "x-v": "1" } });
    expect(forward(rule, {}, () => 0.9).requestHeaders).toEqual({ set: { "x-v": "2" } });
  });
});

describe("timeouts, mirrors and policies on the decision", () => {
  it.each<[string, string | undefined, number | undefined]>([
    ["absent: no timeout", undefined, undefined],
    ["Go duration", "1.5s", 1500],
    ["compound duration", "1m30s", 90_000],
    ["zero means none", "0s", undefined],
  ])("timeout %s", (_name, timeout, expected) => {
    const rule: HttpRoute = { route: [{ destination: { host: "reviews" } }] };
    if (timeout !== undefined) rule.timeout = timeout;
    expect(forward(rule).timeoutMs).toBe(expected);
  });

  it.each<[string, Partial<HttpRoute>, number[]]>([
    [
      "mirror without a percentage mirrors everything",
      { mirror: { host: "reviews", subset: "shadow" } },
      [100],
    ],
    ["mirrorPercentage", { mirror: { host: "reviews" }, mirrorPercentage: { value: 12.5 } }, [12.5]],
    [
      "an explicit 0 turns mirroring off",
      { mirror: { host: "reviews" }, mirrorPercentage: { value: 0 } },
      [],
    ],
    ["deprecated mirrorPercent", { mirror: { host: "reviews" }, mirrorPercent: 30 }, [30]],
    [
      "mirrors list",
      { mirrors: [{ destination: { host: "a" } }, { destination: { host: "b" }, percentage: { value: 5 } }] },
      [100, 5],
    ],
  ])("%s", (_name, extra, percentages) => {
    const d = forward({ route: [{ destination: { host: "reviews" } }], ...extra });
    expect(d.mirrors.map((m) => m.percentage)).toEqual(percentages);
  });

  it("resolves mirror and destination short names in the VirtualService's namespace", () => {
    const d = forward({
      route: [{ destination: { host: "reviews", subset: "v1", port: { number: 9080 } } }],
      mirror: { host: "shadow" },
    });
    expect(d.destination).toEqual({ host: "reviews.default.svc.cluster.local", subset: "v1", port: 9080 });
    expect(d.mirrors[0]?.destination).toEqual({ host: "shadow.default.svc.cluster.local" });
  });

  it("carries the retry, fault and CORS policies", () => {
    const d = forward({
      route: [{ destination: { host: "reviews" } }],
      retries: { attempts: 3, perTryTimeout: "2s", retryOn: "gateway-error" },
      fault: { abort: { httpStatus: 500, percentage: { value: 10 } } },
      corsPolicy: { allowOrigins: [{ exact: "https://example.com" }] },
    });
    expect(d.retry).toMatchObject({ attempts: 3, perTryTimeoutMs: 2000, on: new Set(["gateway-error"]) });
    expect(d.fault).toEqual({ abort: { httpStatus: 500, percentage: 10 } });
    expect(d.cors?.allowOrigins).toHaveLength(1);
  });
});

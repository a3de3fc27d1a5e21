import type { L7Resource } from "@ambient/core";
import { describe, expect, it } from "vitest";
import type { L7Request } from "../model/request.js";
import type { Sender } from "../proxy/request/attempt.js";
import type { RouteResult } from "../proxy/stages.js";
import { type RequestOverrides, request } from "../route/testing.js";
import { compileIngressPlan, type IngressSelf } from "./plan.js";
import { appliesToGateway, gatewayH2Sender, ingressRoute } from "./stages.js";

const self: IngressSelf = { namespace: "istio-system", labels: { istio: "ingressgateway", app: "gw" } };

const plan = compileIngressPlan(
  [
    {
      kind: "Gateway",
      apiVersion: "networking.istio.io/v1",
      namespace: "istio-system",
      name: "public",
      labels: {},
      annotations: {},
      spec: {
        selector: { istio: "ingressgateway" },
        servers: [
          { port: { number: 80, protocol: "HTTP" }, hosts: ["shop.example.com", "*.api.example.com"] },
          {
            port: { number: 80, protocol: "HTTP" },
            hosts: ["secure.example.com"],
            tls: { httpsRedirect: true },
          },
          {
            port: { number: 443, protocol: "HTTPS" },
            hosts: ["shop.example.com"],
            tls: { mode: "SIMPLE", credentialName: "shop" },
          },
          {
            port: { number: 443, protocol: "HTTPS" },
            hosts: ["secure.example.com"],
            tls: { mode: "SIMPLE", credentialName: "secure" },
          },
        ],
      },
    },
  ],
  self,
);

describe("ingressRoute", () => {
  const routed: L7Request[] = [];
  const route = ingressRoute(plan, (req) => {
    routed.push(req);
    return { kind: "respond", status: 200, body: "from the route table" };
  });
  const at = (o: RequestOverrides) => {
    routed.length = 0;
    return route(request({ destination: { host: "10.0.0.1", ip: "10.0.0.1" }, ...o }));
  };

  // "routed": the route table answered (its stand-in responds 200).
  it.each<[string, RequestOverrides, "routed" | "no-route"]>([
    ["a host a server lists goes to the route table", { authority: "shop.example.com", port: 80 }, "routed"],
    ["the Host's port and case do not matter", { authority: "SHOP.example.com:80", port: 80 }, "routed"],
    ["a wildcard server host", { authority: "v1.api.example.com", port: 80 }, "routed"],
    ["a host no server on the port covers is 404", { authority: "other.example.com", port: 80 }, "no-route"],
    ["the wildcard does not cover its bare domain", { authority: "api.example.com", port: 80 }, "no-route"],
    ["a port the plan does not have", { authority: "shop.example.com", port: 8080 }, "no-route"],
    ["no Host at all", { authority: "", port: 80 }, "no-route"],
  ])("%s", (_name, o, kind) => {
    const result = at(o);
    expect(result.kind === "respond" && result.status === 200 ? "routed" : result.kind).toBe(kind);
    expect(routed.length).toBe(kind === "routed" ? 1 : 0);
  });

  const routedOrNot = (r: RouteResult) => (r.kind === "respond" && r.status === 200 ? "routed" : r.kind);

  it("an httpsRedirect server answers 301 to https with the path and query, before any route", () => {
    expect(at({ authority: "secure.example.com:80", port: 80, path: "/cart/items?id=7&x=%2F" })).toEqual({
      kind: "respond",
      status: 301,
      headers: { location: "https://secure.example.com/cart/items?id=7&x=%2F" },
    });
    expect(routed).toEqual([]);
  });

  it("on TLS the Host must belong to the server the SNI chose", () => {
    const tls = (serverName: string | undefined, authority: string) =>
      routedOrNot(at({ authority, port: 443, scheme: "https", tls: serverName ? { serverName } : {} }));
    expect(tls("shop.example.com", "shop.example.com")).toBe("routed");
    // A certificate for shop cannot front a request for secure (another server of the port).
    expect(tls("shop.example.com", "secure.example.com")).toBe("no-route");
    expect(tls("secure.example.com", "shop.example.com")).toBe("no-route");
    // No SNI: only a "*" server could have taken it, and this port has none.
    expect(tls(undefined, "shop.example.com")).toBe("no-route");
  });

  it("on TLS with an SNI and a Host of the same wildcard server, any names it covers pass", () => {
    const wild = compileIngressPlan(
      [
        {
          kind: "Gateway",
          apiVersion: "networking.istio.io/v1",
          namespace: "istio-system",
          name: "wild",
          labels: {},
          annotations: {},
          spec: {
            selector: { istio: "ingressgateway" },
            servers: [
              {
                port: { number: 443, protocol: "HTTPS" },
                hosts: ["*.example.com"],
                tls: { credentialName: "w" },
              },
            ],
          },
        },
      ],
      self,
    );
    const r = ingressRoute(wild, () => ({ kind: "respond", status: 200 }));
    const req = (authority: string) =>
      r(request({ authority, port: 443, scheme: "https", tls: { serverName: "a.example.com" } })).kind;
    expect(req("b.example.com")).toBe("respond");
    expect(req("b.other.test")).toBe("no-route");
  });
});

describe("appliesToGateway", () => {
  const policy = (namespace: string, spec: unknown): L7Resource => ({
    kind: "AuthorizationPolicy",
    apiVersion: "security.istio.io/v1",
    namespace,
    name: "p",
    spec,
    labels: {},
    annotations: {},
  });

  it.each<[string, L7Resource, boolean]>([
    ["its own namespace, no selector", policy("istio-system", {}), true],
    ["its own namespace, no spec", policy("istio-system", undefined), true],
    ["the root namespace", policy("root", { action: "DENY" }), true],
    ["another namespace", policy("shop", {}), false],
    [
      "a selector its labels match",
      policy("istio-system", { selector: { matchLabels: { istio: "ingressgateway" } } }),
      true,
    ],
    [
      "a selector with one label it lacks",
      policy("istio-system", { selector: { matchLabels: { istio: "ingressgateway", app: "other" } } }),
      false,
    ],
    [
      "a matching selector in the root namespace",
      policy("root", { selector: { matchLabels: { app: "gw" } } }),
      true,
    ],
    [
      "a matching selector in another namespace",
      policy("shop", { selector: { matchLabels: { app: "gw" } } }),
      false,
    ],
    [
      "targetRefs (PolicyStage's own rule)",
      policy("istio-system", { targetRefs: [{ kind: "Gateway", name: "x" }] }),
      false,
    ],
    ["a targetRef", policy("istio-system", { targetRef: { kind: "Gateway", name: "x" } }), false],
    ["empty targetRefs are no targetRefs", policy("istio-system", { targetRefs: [] }), true],
  ])("%s → %s", (_name, r, applies) => {
    expect(appliesToGateway(r, self, "root")).toBe(applies);
  });
});

describe("gatewayH2Sender", () => {
  it("sends gRPC over HTTP/2 and everything else over HTTP/1.1", async () => {
    const h2 = (async () => "h2") as unknown as Sender;
    const http1 = (async () => "http1") as unknown as Sender;
    const send = gatewayH2Sender(h2, http1);
    const via = (headers: Record<string, string>) =>
      send(
        {} as never,
        { headers } as never,
        {} as never,
        new AbortController().signal,
        {},
      ) as unknown as Promise<string>;
    expect(await via({ "content-type": "application/grpc+proto" })).toBe("h2");
    expect(await via({ "content-type": "application/json" })).toBe("http1");
    expect(await via({})).toBe("http1");
  });
});
